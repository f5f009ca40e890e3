"""``python -m avqa.evaluate``: score one predictions file, or compare several on the same questions."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..annotations import AnnotationError
from ..protocols import PROTOCOLS
from ..utils import EXIT_CODES, at_least, check_writable, user_errors
from .conventions import CONVENTIONS
from .indices import answer_vocabulary, resolve_indices
from .predictions import EvaluationError, Predictions, read_predictions
from .report import write_by_video_report, write_comparison, write_single
from .sets import AnnotationSet, check_coverage, conflict_note, known_files

FORMATS = ("Formats: this project's test report (test mode's --results); tab-separated result lines (question id, "
           "True/False, truth index, predicted index), scored by mapping the predicted index through the answer "
           "vocabulary (--answers, or the one the file's truth indices imply) after checking the truth indices and "
           "verdicts against the annotation file; a JSON object key -> answer; a JSON list of objects with a key "
           "field (key, question_id, ...) and an answer field (prediction, answer, ...); a CSV with such a header, or "
           "two columns key,answer. Keys are question_ids; rows without one (MUSIC-AVQA v2.0) are keyed "
           "<video_id>/<12 hex digits> (avqa.annotations.question_key). See docs/evaluation.md. ")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m avqa.evaluate",
        description="Score predictions on MUSIC-AVQA annotation files: the standard table (9 types, question-weighted "
                    "Audio / Visual / Audio-Visual averages, overall), printed and written as JSON and Markdown, after "
                    "checking that the predictions cover exactly the file's questions. Given several predictions "
                    "files, compare each with the first, question by question: the tables side by side, a paired "
                    "bootstrap 95% interval of each difference and McNemar's exact test per row.",
        epilog=FORMATS + EXIT_CODES)
    p.add_argument("predictions", nargs="+", help="the predictions file (any of the formats below); several: compare "
                                                  "each with the first (A) on the same questions")
    p.add_argument("--annotations", action="append", required=True, metavar="FILE",
                   help="the annotation file the predictions answer; repeat it for the parts of one test set (e.g. "
                        "MUSIC-AVQA-R's head and tail): each part gets its table, and their union one more")
    p.add_argument("--known", action="append", default=[], metavar="FILE_OR_DIR",
                   help="more annotation files (or folders of them) to name when the predictions cover another "
                        "question set; the JSON files beside each --annotations file and in its sibling folders are "
                        "always compared")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="write PREFIX.json and PREFIX.md (default: the (first) predictions file's path without its "
                        "extension, plus .eval, or .compare for several files)")
    p.add_argument("--convention", choices=[*CONVENTIONS, "all"], default="ours",
                   help="how a free-text answer is judged: ours (this project's normaliser, the default), exact "
                        "(upper-cased exact match, a trailing '.' dropped), substring (the gold answer inside the "
                        "lower-cased answer), or all three side by side")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="official",
                   help="which validation split selected the model, recorded with every table: official (the "
                        "release's split by question, the default) or video-disjoint (python -m avqa.protocols)")
    p.add_argument("--answers", default=None, metavar="FILE",
                   help="a result file's answer vocabulary: a JSON list of the answers in index order, or the train "
                        "annotation file the model's vocabulary was built from (default: the one its truth indices "
                        "imply)")
    p.add_argument("--resamples", type=at_least(100), default=10_000, metavar="N",
                   help="bootstrap resamples of a comparison (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed (default: %(default)s)")
    p.add_argument("--by_video", default=None, metavar="CSV",
                   help="also write accuracy per video to CSV, the videos most often answered wrong first")
    return p


def load_sets(paths: Sequence[str]) -> list[AnnotationSet]:
    """The --annotations files, each once; a folder, a missing or a malformed file is refused."""
    for a in paths:
        if Path(a).is_dir():
            example = next(iter(sorted(Path(a).glob("*.json"))), Path(a) / "avqa-test.json")
            raise SystemExit(f"--annotations {a} is a folder: give the annotation file itself, e.g. --annotations "
                             f"{example}")
    try:
        sets = [AnnotationSet.load(a) for a in paths]
    except (AnnotationError, FileNotFoundError) as e:
        raise SystemExit(f"--annotations: {e}") from None
    seen: dict[str, AnnotationSet] = {}
    for s in sets:
        if s.sha256 in seen:
            raise SystemExit(f"--annotations {s.path} is given twice (the same file as {seen[s.sha256].path}, sha256 "
                             f"{s.sha256[:16]}): give each part of the test set once, or its questions count twice")
        seen[s.sha256] = s
    return sets


def load_predictions(path: str, sets: Sequence[AnnotationSet], args: argparse.Namespace,
                     vocabulary: list[str] | None) -> Predictions:
    """Read one predictions file and check it against the annotation files, or stop saying why."""
    try:
        preds = read_predictions(path)
        print(f"predictions: {preds.path} ({preds.form}, {len(preds.keys):,} question keys"
              + (f", {len(preds.repeated):,} given twice with the same answer" if preds.repeated else "") + ")")
        if preds.annotations_sha256 and len(sets) == 1 and preds.annotations_sha256 != sets[0].sha256:
            print(f"note: the report was made on a file with sha256 {preds.annotations_sha256[:16]}, not "
                  f"{sets[0].sha256[:16]}")
        check_coverage(preds, sets, known_files([s.path for s in sets], [*args.known]))
        resolve_indices(preds, sets, vocabulary, f"--answers {args.answers}")
    except (EvaluationError, FileNotFoundError) as e:
        raise SystemExit(f"refused: {e}") from None
    return preds


def default_prefix(predictions: str, suffix: str) -> Path:
    stem = Path(predictions).with_suffix("")
    return stem.with_name(stem.name + suffix)


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    compare = len(args.predictions) > 1
    prefix = Path(args.out) if args.out else default_prefix(args.predictions[0], ".compare" if compare else ".eval")
    check_writable(prefix.parent, "--out" if args.out else "the report's folder (choose another with --out)")
    if args.by_video:
        if Path(args.by_video).is_dir():
            raise SystemExit(f"--by_video {args.by_video} is a folder: give a file name, e.g. --by_video "
                             f"{Path(args.by_video) / 'by_video.csv'}")
        check_writable(Path(args.by_video).parent, "--by_video")
    sets = load_sets(args.annotations)
    for s in sets:
        print(f"annotations: {s.describe()}")
    try:
        vocabulary = answer_vocabulary(args.answers) if args.answers else None
    except EvaluationError as e:
        raise SystemExit(str(e)) from None
    note = conflict_note(sets)
    if note:
        print(f"note: {note}")
    preds = [load_predictions(p, sets, args, vocabulary) for p in args.predictions]
    print(f"protocol: {args.protocol} ({PROTOCOLS[args.protocol]})")
    conventions = list(CONVENTIONS) if args.convention == "all" else [args.convention]
    if compare:
        correct = write_comparison(preds, sets, args, conventions, prefix)
    else:
        correct = write_single(preds[0], sets, args, conventions, prefix)
    if args.by_video:
        write_by_video_report(args.by_video, sets, preds, correct)
    return 0
