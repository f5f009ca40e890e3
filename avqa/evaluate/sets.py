"""Annotation files as the scorer reads them, and the protocol checks of predictions against them."""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..annotations import REQUIRED_KEYS, load_annotations, question_key, type_index
from ..utils import sha256
from .predictions import EvaluationError, Predictions

@dataclass
class AnnotationSet:
    """One annotation file as the scorer needs it: keys, types, answers and videos per row."""

    path: Path
    sha256: str
    keys: list[str]
    types: np.ndarray
    answers: list[str]
    videos: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "AnnotationSet":
        samples = load_annotations(path, max_tokens=None)  # scoring reads no question words
        return cls(Path(path), sha256(path), [question_key(s) for s in samples],
                   np.array([type_index(s) for s in samples], dtype=np.int64),
                   [s["anser"] for s in samples], [str(s["video_id"]) for s in samples])

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
    """The question keys of an annotation file; None for any other file (a predictions file among them)."""
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(samples, list) or not all(isinstance(s, dict) and all(f in s for f in REQUIRED_KEYS)
                                                    for s in samples):
            return None
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
        if path.resolve() == preds.path.resolve():
            continue
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


def conflicting_rows(sets: Sequence[AnnotationSet]) -> list[str]:
    """Keys a file holds more than once with different gold answers (the original json test set has 55)."""
    out = []
    for s in sets:
        golds: dict[str, set[str]] = collections.defaultdict(set)
        for k, a in zip(s.keys, s.answers):
            golds[k].add(a)
        out += [k for k, g in golds.items() if len(g) > 1]
    return out


def conflict_note(sets: Sequence[AnnotationSet]) -> str | None:
    """What the run says, once, about keys a file holds twice with different gold answers: each one, how
    they are counted, and the corrected file (json_update's test file drops and corrects the 55 of json's)."""
    parts = []
    for s in sets:
        golds: dict[str, list[str]] = collections.defaultdict(list)
        for k, a in zip(s.keys, s.answers):
            golds[k].append(a)
        pairs = {k: g for k, g in golds.items() if len(set(g)) > 1}
        if not pairs:
            continue
        listed = ", ".join(f"{k} ({' / '.join(g)})" for k, g in pairs.items())
        rows = sum(len(g) for g in pairs.values())
        corrected = s.path.parent.parent / "json_update" / s.path.name
        if corrected.is_file() and corrected.resolve() != s.path.resolve():
            where = f"{corrected} drops and corrects them: score on it"
        elif s.path.parent.name == "json":
            where = ("json_update's file of the same name drops and corrects them (python -m avqa.download fetches "
                     "it): score on it")
        else:
            where = "Give each question one gold answer to score it as one question"
        parts.append(f"{s.path} holds {len(pairs)} question key(s) more than once with different gold answers: "
                     f"{listed}. Every row is scored ({rows} rows), so at most one row of each can be right. {where}.")
    return "\n".join(parts) or None
