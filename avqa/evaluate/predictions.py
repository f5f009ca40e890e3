"""Reading a predictions file of any supported form: what it says per question key."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..utils import relative_hint

class EvaluationError(ValueError):
    """Predictions that cannot be scored against the annotation file(s), with the reason and the fix."""


@dataclass
class Predictions:
    """What a predictions file says per question key: an answer string, or (a result file) the predicted
    answer index, the truth index and the file's own verdict, line by line."""

    path: Path
    form: str
    answers: dict[str, str | None] = field(default_factory=dict)  # a result file's: filled by resolve_indices
    correct: dict[str, bool] = field(default_factory=dict)  # a result file's own verdicts (not what is scored)
    repeated: list[str] = field(default_factory=list)  # keys given more than once with the same answer
    annotations_sha256: str | None = None
    predicted: dict[str, int] = field(default_factory=dict)  # a result file: the predicted answer index per key
    lines: list[tuple[int, str, bool, int]] = field(default_factory=list)  # a result file: (line, key, verdict, truth)

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


def read_text(path: Path, what: str) -> str:
    """A text file as UTF-8 (a byte-order mark dropped); another encoding is refused with the fix."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EvaluationError(f"{what} {path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
                              f"save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path} > {path.stem}.utf8"
                              f"{path.suffix}") from None


def read_predictions(path: str | Path) -> Predictions:
    """Read any supported predictions file; the form is told by the content, not the file name."""
    path = Path(path)
    if path.is_dir():
        raise EvaluationError(f"the predictions file {path} is a folder: name the predictions file itself "
                              f"(e.g. {path / 'predictions.json'})")
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found{relative_hint(path)}")
    text = read_text(path, "the predictions file")
    stripped = text.lstrip()
    if not stripped:
        raise EvaluationError(f"the predictions file {path} is empty: write the model's answers into it first "
                              f"(the forms are listed in --help)")
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
    """Tab-separated lines: question id, True/False, truth index, predicted index (TSPM-style code).

    The verdicts and truth indices are kept to be checked against the annotation file
    (:func:`avqa.evaluate.indices.resolve_indices`); only the predicted index is scored."""
    out = Predictions(path, "tab-separated result file")
    conflicts = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) < 4 or cols[1].lower() not in ("true", "false", "1", "0") or not all(
                c.lstrip("-").isdigit() for c in cols[2:4]):
            raise EvaluationError(f"{path}, line {n}: a tab-separated result line is 'question id <TAB> True|False "
                                  f"<TAB> truth index <TAB> predicted index'; got {line.strip()!r}")
        key, verdict, truth, pred = _key(cols[0]), cols[1].lower() in ("true", "1"), int(cols[2]), int(cols[3])
        out.lines.append((n, key, verdict, truth))
        if key in out.predicted:
            if out.predicted[key] != pred:
                conflicts.append(f"{key} (indices {out.predicted[key]} and {pred})")
            else:
                out.repeated.append(key)
            continue
        out.predicted[key] = pred
        out.correct[key] = verdict
    if conflicts:
        raise EvaluationError(f"{path}: {len(conflicts)} question key(s) appear more than once with different "
                              f"predicted answers: {', '.join(conflicts[:10])}{' ...' if len(conflicts) > 10 else ''}. "
                              f"Give one answer per question.")
    return out


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
