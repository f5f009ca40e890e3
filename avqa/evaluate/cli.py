"""``python -m avqa.evaluate``: score predictions files against annotation files."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from ..annotations import AnnotationError
from ..utils import atomic_write_text, sha256, user_errors
from .predictions import EvaluationError, read_predictions
from .scoring import score
from .sets import AnnotationSet, _examples, check_coverage, conflicting_rows, known_files
from .table import format_table, markdown_table

@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Score predictions on MUSIC-AVQA annotation files: the standard table (9 types, "
                    "question-weighted Audio / Visual / Audio-Visual averages, overall), printed and written as JSON "
                    "and Markdown, after checking that the predictions cover exactly the file's questions.",
        epilog="Formats: this project's test report (test mode's --results); tab-separated result lines (question "
               "id, True/False, truth index, predicted index); a JSON object key -> answer; a JSON list of objects "
               "with a key field (key, question_id, ...) and an answer field (prediction, answer, ...); a CSV with "
               "such a header, or two columns key,answer. Keys are question_ids; rows without one (MUSIC-AVQA "
               "v2.0) are keyed <video_id>/<12 hex digits> (avqa.annotations.question_key). "
               "See docs/evaluation.md.")
    p.add_argument("predictions", help="the predictions file (any of the formats below)")
    p.add_argument("--annotations", action="append", required=True, metavar="FILE",
                   help="the annotation file the predictions answer; repeat it for the parts of one test set (e.g. "
                        "MUSIC-AVQA-R's head and tail): each part gets its table, and their union one more")
    p.add_argument("--known", action="append", default=[], metavar="FILE_OR_DIR",
                   help="more annotation files (or folders of them) to name when the predictions cover another "
                        "question set; the JSON files beside each --annotations file and in its sibling folders are "
                        "always compared")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="write PREFIX.json and PREFIX.md (default: the predictions file's path without its "
                        "extension, plus .eval)")
    args = p.parse_args(argv)
    try:
        sets = [AnnotationSet.load(a) for a in args.annotations]
    except (AnnotationError, FileNotFoundError) as e:
        raise SystemExit(f"--annotations: {e}") from None
    for s in sets:
        print(f"annotations: {s.describe()}")
    try:
        preds = read_predictions(args.predictions)
        print(f"predictions: {preds.path} ({preds.form}, {len(preds.keys):,} question keys"
              + (f", {len(preds.repeated):,} given twice with the same answer" if preds.repeated else "") + ")")
        if preds.annotations_sha256 and len(sets) == 1 and preds.annotations_sha256 != sets[0].sha256:
            print(f"note: the report was made on a file with sha256 {preds.annotations_sha256[:16]}, not "
                  f"{sets[0].sha256[:16]}")
        check_coverage(preds, sets, known_files([Path(a) for a in args.annotations], args.known))
    except (EvaluationError, FileNotFoundError) as e:
        raise SystemExit(f"refused: {e}") from None
    conflicts = conflicting_rows(sets)
    if conflicts:
        print(f"note: {len(conflicts)} question key(s) occur more than once with different gold answers "
              f"(e.g. {_examples(conflicts)}); every row is scored, so at most one of each pair can be right")
    result = score(preds, sets)
    for name, table in result["tables"].items():
        print(format_table(table, f"{preds.path} on {name} ({table['Overall']['count']} questions):"))
    if result["combined"] is not None:
        print(format_table(result["combined"], f"all {len(sets)} files together "
                                               f"({result['combined']['Overall']['count']} questions):"))
    if result["unmapped_answers"]:
        shown = ", ".join(f"{t!r} ({n})" for t, n in list(result["unmapped_examples"].items())[:10])
        print(f"{result['unmapped_answers']:,} answer(s) name none of the 42 answers (or several) and count as "
              f"wrong; most frequent: {shown}")
    prefix = Path(args.out) if args.out else Path(args.predictions).with_suffix("").with_name(
        Path(args.predictions).with_suffix("").name + ".eval")
    report = {"predictions": str(preds.path), "predictions_sha256": sha256(preds.path), "format": preds.form,
              "annotations": [{"path": str(s.path), "sha256": s.sha256, "questions": len(s.keys)} for s in sets],
              **result}
    columns = {Path(n).name if len(sets) > 1 else "accuracy % (questions)": t for n, t in result["tables"].items()}
    if result["combined"] is not None:
        columns["together"] = result["combined"]
    md = (f"Predictions `{preds.path}` scored on " + ", ".join(f"`{s.path}` (sha256 `{s.sha256[:16]}`, "
                                                                f"{len(s.keys):,} questions)" for s in sets)
          + ".\n\n" + markdown_table(columns) + "\n")
    if result["unmapped_answers"]:
        md += f"\n{result['unmapped_answers']:,} answer(s) could not be mapped onto the 42 answers and count as wrong.\n"
    atomic_write_text(prefix.with_name(prefix.name + ".json"), json.dumps(report, indent=1))
    atomic_write_text(prefix.with_name(prefix.name + ".md"), md)
    print(f"written: {prefix.with_name(prefix.name + '.json')}, {prefix.with_name(prefix.name + '.md')}")
    return 0
