"""Score any model's answers on MUSIC-AVQA test files with one protocol: the standard table.

    python -m avqa.evaluate PREDICTIONS --annotations data/music_avqa/json_update/avqa-test.json
    python -m avqa.evaluate preds.csv --annotations head.json --annotations tail.json   # parts of one set

The table is the one of the paper and of every successor: accuracy on the nine question types, the
Audio, Visual and Audio-Visual averages weighted by question count (all questions of the group
pooled, not the mean of the type accuracies) and the overall accuracy. Test mode of the training
scripts prints it through the same functions (:func:`score_table`, :func:`format_table`).

Before any number, the protocol is checked: the annotation file's name, sha256 and question count
are printed, and predictions that cover another question set are refused with how many questions
are missing and extra, and which known annotation file they do match (the original ``json`` test
set holds 9,185 rows, the corrected ``json_update`` one 9,129). Questions are named by
:func:`avqa.annotations.question_key` (the ``question_id``; a stable hash for v2.0 rows without
one).

Predictions may be: this project's test report (``--results`` of test mode); a tab-separated
result file as TSPM-style code writes it (question id, True/False, truth index, predicted index);
or a JSON object, JSON list or CSV file that maps a question key to an answer string. Answer
strings go through :func:`normalise`, which maps free text ("Yes.", "There are two.", "the left
one") onto the 42 answers; answers it cannot map count as wrong and are reported with examples.
The protocol is described in docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .annotations import (ANSWERS, INSTRUMENTS, NUMBERS, QUESTION_TYPES, AnnotationError, load_annotations,
                          question_key, type_index)
from .utils import atomic_write_text, relative_hint, sha256, user_errors

# ----------------------------------------------------------------------------- the table

TABLE_ROWS = [("Audio Counting", [0]), ("Audio Comparative", [1]), ("Audio Avg", [0, 1]),
              ("Visual Counting", [2]), ("Visual Location", [3]), ("Visual Avg", [2, 3]),
              ("AV Existential", [4]), ("AV Location", [5]), ("AV Counting", [6]), ("AV Comparative", [7]),
              ("AV Temporal", [8]), ("AV Avg", [4, 5, 6, 7, 8]), ("Overall", list(range(9)))]
assert [QUESTION_TYPES[i] for i in (4, 5, 6)] == [("Audio-Visual", "Existential"), ("Audio-Visual", "Location"),
                                                   ("Audio-Visual", "Counting")]


def percent(correct: int, total: int) -> float | None:
    """100 * correct / total rounded to 2 decimals, the fraction taken in single precision.

    Single precision is what test mode computes (a float tensor's mean); at a tie in the third
    decimal it can round the other way from the exact fraction, so this one function serves both.
    """
    if not total:
        return None
    return round(100.0 * float(np.float32(correct) / np.float32(total)), 2)


def score_table(correct: Sequence[bool] | np.ndarray, types: Sequence[int] | np.ndarray) -> dict[str, dict]:
    """Accuracy per question type, group (pooled over its questions) and overall, in the paper's order.

    ``correct[i]`` says whether question i was answered right, ``types[i]`` is its index in
    QUESTION_TYPES.
    """
    correct = np.asarray(correct, dtype=bool)
    types = np.asarray(types)
    right = np.bincount(types[correct], minlength=len(QUESTION_TYPES))
    total = np.bincount(types, minlength=len(QUESTION_TYPES))
    table = {}
    for name, idxs in TABLE_ROWS:
        k, n = int(right[idxs].sum()), int(total[idxs].sum())
        table[name] = {"accuracy": percent(k, n), "count": n}
    return table


def format_table(table: dict[str, dict], title: str = "") -> str:
    lines = [title] if title else []
    for name, row in table.items():
        acc = f"{row['accuracy']:6.2f} %" if row["accuracy"] is not None else "     - "
        lines.append(f"  {name:<18} {acc}  ({row['count']} questions)")
    return "\n".join(lines)


# TSPM's text outputs (its main_test.py): the .acc table's line names, groups separated by a blank line
RELEASE_ACC_NAMES = [("Audio Counting", "Audio Count"), ("Audio Comparative", "Audio Compt"), ("Audio Avg", "Audio Averg"),
                     None, ("Visual Counting", "Visual Count"), ("Visual Location", "Visual Local"),
                     ("Visual Avg", "Visual Averg"), None, ("AV Existential", "Audio-Visual Exist"),
                     ("AV Counting", "Audio-Visual Count"), ("AV Location", "Audio-Visual Local"),
                     ("AV Comparative", "Audio-Visual Compt"), ("AV Temporal", "Audio-Visual Templ"),
                     ("AV Avg", "Audio-Visual Averg")]


def release_acc_text(table: dict[str, dict], title: str = "TSPM") -> str:
    """``table`` in the layout of TSPM's ``results/<checkpoint>.acc`` ("n/a" for a type without questions)."""
    def acc(name: str) -> str:
        value = table[name]["accuracy"]
        return "n/a" if value is None else f"{value:.2f} %"
    lines = ["", f"--------------- {title} acc --------------- ", "", ""]
    lines += ["" if row is None else f"{row[1]} Acc: {acc(row[0])}" for row in RELEASE_ACC_NAMES]
    lines += ["", f"---->Overall Accuracy: {acc('Overall')} ", ""]
    return "\n".join(lines)


def result_line(question_id: object, correct: bool, truth: int, predicted: int) -> str:
    """One line of TSPM's ``<checkpoint>.result``: question id, True/False, truth and predicted answer index,
    separated by space-tab-space (read back by :func:`read_predictions`)."""
    return f"{question_id} \t {bool(correct)} \t {int(truth)} \t {int(predicted)}"


def markdown_table(tables: dict[str, dict[str, dict]]) -> str:
    """One column per named table: accuracy in %, question count in brackets."""
    names = list(tables)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for row in next(iter(tables.values())):
        cells = []
        for n in names:
            r = tables[n][row]
            cells.append("-" if r["accuracy"] is None else f"{r['accuracy']:.2f} ({r['count']:,})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the free-text normaliser

FAMILIES: dict[str, frozenset[str]] = {
    "yes/no": frozenset({"yes", "no"}),
    "number": frozenset(NUMBERS),
    "place": frozenset({"left", "right", "middle", "simultaneously"}),
    "scene": frozenset({"indoor", "outdoor"}),
    "instrument": frozenset(INSTRUMENTS),
}
FAMILY_OF = {a: f for f, answers in FAMILIES.items() for a in answers}
assert set(FAMILY_OF) == ANSWERS


def _phrases() -> dict[tuple[str, ...], str]:
    """Word sequences (lower case, split on anything but letters, digits and '+') and their answer."""
    table: dict[str, str] = {}
    for i, w in enumerate(NUMBERS[:11]):
        table[w] = table[str(i)] = w
    for w in ("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
              "nineteen", "twenty", "dozen", "dozens", "more than ten", "more than 10", "over ten", "over 10",
              "above ten", "above 10", "greater than ten", "greater than 10", "10+", "ten plus", "lots of"):
        table[w] = "more than ten"
    table.update({w: "zero" for w in ("none", "nothing", "no one", "nobody", "zero instruments")})
    for w in ("yes", "yeah", "yep", "yup", "true", "correct", "affirmative", "indeed", "of course", "sure"):
        table[w] = "yes"
    for w in ("no", "nope", "not", "false", "incorrect", "isn t", "aren t", "doesn t", "don t", "didn t",
              "wasn t", "weren t", "neither", "never"):
        table[w] = "no"
    for side in ("left", "right"):
        for w in (side, f"{side}most", f"{side}est", f"{side} hand", f"{side} side"):
            table[w] = side
    for w in ("middle", "center", "centre", "central", "in between", "between"):
        table[w] = "middle"
    for w in ("indoor", "indoors", "inside", "in a room", "in the room", "interior"):
        table[w] = "indoor"
    for w in ("outdoor", "outdoors", "outside", "in the open", "open air", "exterior"):
        table[w] = "outdoor"
    for w in ("simultaneously", "simultaneous", "at the same time", "same time", "together", "at once"):
        table[w] = "simultaneously"
    for name in INSTRUMENTS:
        spoken = name.replace("_", " ")
        for w in (spoken, spoken + "s", spoken + "es"):
            table[w] = name
    table.update({"guitar": "acoustic_guitar", "guitars": "acoustic_guitar", "bass": "electric_bass",
                  "bass guitar": "electric_bass", "basses": "electric_bass", "drums": "drum", "drum kit": "drum",
                  "drum set": "drum", "conga": "congas", "conga drums": "congas", "bagpipes": "bagpipe",
                  "sax": "saxophone", "uke": "ukulele", "fiddle": "violin"})
    for w in ("first one", "last one", "other one", "the one", "this one", "that one", "which one", "each one",
              "ones"):
        table[w] = ""  # "one" as a pronoun, not a count
    return {tuple(_words(k)): v for k, v in table.items()}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+|\d+\+?", text.lower().replace("_", " "))


_PHRASES = _phrases()
_LONGEST = max(len(k) for k in _PHRASES)
# cues that only make sense against an expected kind of answer ("no" for a count is zero)
_FAMILY_CUES = {"number": {("no",): "zero", ("not", "any"): "zero", ("a", "single"): "one", ("only", "one"): "one",
                           ("single",): "one"},
                "yes/no": {("that", "is", "right"): "yes", ("that", "s", "right"): "yes", ("right",): ""}}


def _mentions(words: list[str], family: str | None) -> list[str]:
    """Answers named in the text, left to right, each phrase matched as long as it goes."""
    cues = _FAMILY_CUES.get(family, {})
    out, i = [], 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            key = tuple(words[i:i + n])
            hit = cues[key] if key in cues else _PHRASES.get(key)
            if hit is None and n == 1 and words[i].isdigit() and int(words[i]) > 10:
                hit = "more than ten"
            if hit is not None:
                if hit:
                    out.append(hit)
                i += n
                if FAMILY_OF.get(hit) == "place" and i < len(words) and words[i] in ("one", "ones"):
                    i += 1  # "the leftmost one": a pronoun, not a count
                break
        else:
            i += 1
    return out


def normalise(text: str, family: str | None = None) -> str | None:
    """The one of the 42 answers a free-text answer means, or None when it names none (or several).

    Rules, in order:
    1. Lower case, underscores and hyphens read as spaces, punctuation dropped: "Acoustic Guitar.",
       "acoustic-guitar" and "acoustic_guitar" are all acoustic_guitar.
    2. The text is read left to right for answer phrases, the longest phrase first: number words and
       digits (0-10; any number above ten, "more than ten", "over 10", "a dozen" are "more than ten"),
       yes/no and their usual forms ("yeah", "not", "isn't"), left/right/middle ("leftmost", "center"),
       indoor/outdoor ("outside"), simultaneously ("at the same time"), instrument names with or
       without underscores, plural or singular, and a few common names ("guitar" is acoustic_guitar,
       "bass" electric_bass, "sax" saxophone). "One" after a position or in "the one", "this one" is a
       pronoun, not a count: "the leftmost one" is left.
    3. With ``family`` (the kind of answer the question asks for: a key of FAMILIES, which
       avqa.evaluate takes from the question's gold answer), only that family's answers count and the
       first one named wins ("Yes, the piano is louder" to a yes/no question is yes; for a count,
       "no" and "none" are zero). Without it the text must name exactly one answer, or begin with
       yes or no.
    Negation inside a phrase is not understood: "not the left one" is left.
    """
    plain = " ".join(_words(text))
    if plain in ANSWERS or plain.replace(" ", "_") in INSTRUMENTS:  # one of the 42, whatever the question
        return plain if plain in ANSWERS else plain.replace(" ", "_")
    found = _mentions(plain.split(), family)
    if family is not None:
        found = [a for a in found if FAMILY_OF[a] == family]
        return found[0] if found else None
    distinct = list(dict.fromkeys(found))
    if len(distinct) == 1:
        return distinct[0]
    if distinct and distinct[0] in FAMILIES["yes/no"] and plain.split()[0] in ("yes", "no", "yeah", "nope", "yep"):
        return distinct[0]
    return None


# ----------------------------------------------------------------------------- reading predictions


class EvaluationError(ValueError):
    """Predictions that cannot be scored against the annotation file(s), with the reason and the fix."""


@dataclass
class Predictions:
    """What a predictions file says per question key: an answer string, or only whether it was right."""

    path: Path
    form: str
    answers: dict[str, str] = field(default_factory=dict)
    correct: dict[str, bool] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # keys given more than once with the same answer
    annotations_sha256: str | None = None

    @property
    def keys(self) -> set[str]:
        return set(self.answers or self.correct)


KEY_FIELDS = ("key", "question_key", "question_id", "qid", "id")
ANSWER_FIELDS = ("prediction", "answer", "pred", "predicted_answer", "pred_answer", "output", "response")


def _key(value) -> str:
    """A key as question_key writes it: 47859, 47859.0 and "47859" are one key."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _collect(path: Path, form: str, pairs: Iterable[tuple[object, object]], kind: str) -> Predictions:
    out = Predictions(path, form)
    target = out.answers if kind == "answer" else out.correct
    conflicts = []
    for raw_key, value in pairs:
        key = _key(raw_key)
        if key in target:
            if target[key] != value:
                conflicts.append(f"{key} ({target[key]!r} and {value!r})")
            else:
                out.repeated.append(key)
            continue
        target[key] = value
    if conflicts:
        raise EvaluationError(f"{path}: {len(conflicts)} question key(s) appear more than once with different "
                              f"answers: {', '.join(conflicts[:10])}{' ...' if len(conflicts) > 10 else ''}. "
                              f"Give one answer per question.")
    return out


def _pick(row: dict, names: Sequence[str], what: str, path: Path, where: str):
    for n in names:
        if n in row:
            return row[n]
    raise EvaluationError(f"{path}: {where} has no {what} field (one of {', '.join(names)}); it has "
                          f"{', '.join(map(str, row)) or 'no fields'}")


def read_predictions(path: str | Path) -> Predictions:
    """Read any supported predictions file; the form is told by the content, not the file name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found{relative_hint(path)}")
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if stripped[:1] in "[{":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise EvaluationError(f"{path}: not valid JSON: {e}") from None
        if isinstance(obj, dict) and isinstance(obj.get("predictions"), list):  # this project's test report
            rows = obj["predictions"]
            pairs = [(_pick(r, KEY_FIELDS, "question key", path, f"prediction {i}"),
                      _pick(r, ANSWER_FIELDS, "answer", path, f"prediction {i}")) for i, r in enumerate(rows)]
            out = _collect(path, "test report", pairs, "answer")
            out.annotations_sha256 = obj.get("annotations_sha256")
            return out
        if isinstance(obj, dict):
            bad = [k for k, v in obj.items() if not isinstance(v, str)]
            if bad:
                raise EvaluationError(f"{path}: a JSON object of predictions maps each question key to an answer "
                                      f"string; key {bad[0]!r} maps to {obj[bad[0]]!r}")
            return _collect(path, "JSON object", obj.items(), "answer")
        if isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
            pairs = [(_pick(r, KEY_FIELDS, "question key", path, f"item {i}"),
                      _pick(r, ANSWER_FIELDS, "answer", path, f"item {i}")) for i, r in enumerate(obj)]
            return _collect(path, "JSON list", pairs, "answer")
        raise EvaluationError(f"{path}: JSON predictions must be an object (key -> answer), a list of objects "
                              f"with a key and an answer field, or this project's test report")
    first = stripped.splitlines()[0] if stripped else ""
    if "\t" in first:
        return _read_result_file(path, text)
    return _read_csv(path, text)


def _read_result_file(path: Path, text: str) -> Predictions:
    """Tab-separated lines: question id, True/False, truth index, predicted index (TSPM-style code)."""
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) < 2 or cols[1].lower() not in ("true", "false", "1", "0"):
            raise EvaluationError(f"{path}, line {n}: a tab-separated result line is 'question id <TAB> True|False "
                                  f"<TAB> truth index <TAB> predicted index'; got {line.strip()!r}")
        pairs.append((cols[0], cols[1].lower() in ("true", "1")))
    return _collect(path, "tab-separated result file", pairs, "correct")


def _read_csv(path: Path, text: str) -> Predictions:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]
    if not rows:
        raise EvaluationError(f"{path}: empty predictions file")
    head = [c.strip().lower() for c in rows[0]]
    k = next((head.index(f) for f in KEY_FIELDS if f in head), None)
    a = next((head.index(f) for f in ANSWER_FIELDS if f in head), None)
    if k is not None and a is not None:
        body = rows[1:]
    elif len(head) == 2:  # no header: key, answer
        k, a, body = 0, 1, rows
    else:
        raise EvaluationError(f"{path}: a CSV of predictions needs a header naming a key column (one of "
                              f"{', '.join(KEY_FIELDS)}) and an answer column (one of {', '.join(ANSWER_FIELDS)}), "
                              f"or exactly two columns (key, answer); its first line is {','.join(rows[0])!r}")
    short = [i for i, r in enumerate(body) if len(r) <= max(k, a)]
    if short:
        raise EvaluationError(f"{path}: line {short[0] + 1 + (body is not rows)} has fewer columns than the header")
    return _collect(path, "CSV", ((r[k], r[a]) for r in body), "answer")


# ----------------------------------------------------------------------------- annotation sets


@dataclass
class AnnotationSet:
    """One annotation file as the scorer needs it: keys, types and answers per row."""

    path: Path
    sha256: str
    keys: list[str]
    types: np.ndarray
    answers: list[str]

    @classmethod
    def load(cls, path: str | Path) -> "AnnotationSet":
        samples = load_annotations(path)
        return cls(Path(path), sha256(path), [question_key(s) for s in samples],
                   np.array([type_index(s) for s in samples], dtype=np.int64),
                   [s["anser"] for s in samples])

    def describe(self) -> str:
        distinct = len(set(self.keys))
        repeats = f", {len(self.keys) - distinct:,} rows repeat a question key" if distinct != len(self.keys) else ""
        return f"{self.path} (sha256 {self.sha256[:16]}, {len(self.keys):,} questions{repeats})"


def known_files(annotation_paths: Sequence[Path], extra: Sequence[str]) -> list[Path]:
    """Annotation files to compare a mismatched question set with: --known, and the JSON files beside the
    given ones and in their sibling folders (json/ beside json_update/)."""
    found: dict[Path, None] = {}
    for k in extra:
        p = Path(k)
        for f in (sorted(p.rglob("*.json")) if p.is_dir() else [p]):
            found.setdefault(f.resolve())
    for a in annotation_paths:
        for f in sorted(a.parent.glob("*.json")) + sorted(a.parent.parent.glob("*/*.json")):
            found.setdefault(f.resolve())
    given = {a.resolve() for a in annotation_paths}
    return [f for f in found if f not in given]


def _key_set(path: Path) -> set[str] | None:
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
        return {question_key(s) for s in samples}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SyntaxError):
        return None  # not an annotation file


def _examples(keys: Iterable[str], n: int = 5) -> str:
    keys = sorted(keys, key=lambda k: (len(k), k))
    return ", ".join(keys[:n]) + (" ..." if len(keys) > n else "")


def check_coverage(preds: Predictions, sets: Sequence[AnnotationSet], known: Sequence[Path]) -> None:
    """Refuse predictions whose question keys are not exactly those of the annotation file(s)."""
    wanted = {k for s in sets for k in s.keys}
    have = preds.keys
    missing, extra = wanted - have, have - wanted
    if not missing and not extra:
        return
    names = " + ".join(str(s.path) for s in sets)
    lines = [f"{preds.path}: {len(have):,} question keys, but {names} holds {len(wanted):,} "
             f"({sum(len(s.keys) for s in sets):,} rows): {len(missing):,} missing"
             + (f" (e.g. {_examples(missing)})" if missing else "")
             + f", {len(extra):,} not in it" + (f" (e.g. {_examples(extra)})" if extra else "") + "."]
    best = None
    for path in known:
        ks = _key_set(path)
        if not ks:
            continue
        if ks == have:
            rows = len(json.loads(path.read_text(encoding="utf-8")))
            lines.append(f"These {len(have):,} questions are exactly those of {path} ({rows:,} rows), not of "
                         f"{names}: score them against that file, or predict the questions of {names}.")
            break
        overlap = len(ks & have) / len(ks | have)
        if best is None or overlap > best[0]:
            best = (overlap, path, len(have - ks), len(ks - have))
    else:
        if best is not None and best[0] > 0.5:
            lines.append(f"The closest known annotation file is {best[1]} ({best[2]:,} of the predictions' keys are "
                         f"not in it, it has {best[3]:,} they lack).")
        lines.append("Predict every question of the annotation file (the scorer never drops or fills in questions).")
    raise EvaluationError(" ".join(lines))


# ----------------------------------------------------------------------------- scoring


def score(preds: Predictions, sets: Sequence[AnnotationSet]) -> dict:
    """The table per annotation file and for all of them together, and the answers normalise could not map."""
    cache: dict[tuple[str, str], str | None] = {}
    unmapped: collections.Counter[str] = collections.Counter()
    results, all_correct, all_types = {}, [], []
    for s in sets:
        if preds.correct:
            correct = np.fromiter((preds.correct[k] for k in s.keys), dtype=bool, count=len(s.keys))
        else:
            correct = np.zeros(len(s.keys), dtype=bool)
            for i, (k, gold) in enumerate(zip(s.keys, s.answers)):
                text = preds.answers[k]
                if text == gold:
                    correct[i] = True
                    continue
                fam = FAMILY_OF[gold]
                mapped = cache.get((text, fam), "")
                if mapped == "":
                    mapped = cache[(text, fam)] = normalise(text, fam)
                if mapped is None:
                    unmapped[text] += 1
                correct[i] = mapped == gold
        results[str(s.path)] = score_table(correct, s.types)
        all_correct.append(correct)
        all_types.append(s.types)
    combined = score_table(np.concatenate(all_correct), np.concatenate(all_types)) if len(sets) > 1 else None
    return {"tables": results, "combined": combined, "unmapped_answers": sum(unmapped.values()),
            "unmapped_examples": dict(unmapped.most_common(20))}


def conflicting_rows(sets: Sequence[AnnotationSet]) -> list[str]:
    """Keys a file holds more than once with different gold answers (the original json test set has 55)."""
    out = []
    for s in sets:
        golds: dict[str, set[str]] = collections.defaultdict(set)
        for k, a in zip(s.keys, s.answers):
            golds[k].add(a)
        out += [k for k, g in golds.items() if len(g) > 1]
    return out


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


if __name__ == "__main__":
    sys.exit(main())
