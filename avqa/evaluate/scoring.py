"""Scoring predictions against annotation files: which question each file answered right, and the tables."""
from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from .conventions import judge_answers
from .indices import resolve_indices
from .predictions import Predictions
from .sets import AnnotationSet
from .table import score_table


def judge(preds: Predictions, sets: Sequence[AnnotationSet], convention: str = "ours"
          ) -> tuple[list[np.ndarray], collections.Counter]:
    """Per annotation file, whether each row was answered right; and the answers that could not be mapped.

    Predicted answer indices (a result file) were mapped to answers through their vocabulary and are
    compared exactly, whatever the convention; an index without an answer is unmapped. Indices not
    resolved yet are resolved through the vocabulary the file implies (or refused).
    """
    if preds.lines and not preds.answers:
        resolve_indices(preds, sets)  # the vocabulary the file implies
    unmapped: collections.Counter[str] = collections.Counter()
    out = []
    for s in sets:
        said = [preds.answers[k] for k in s.keys]
        if preds.lines:
            right = [a == g for a, g in zip(said, s.answers)]
            unmapped.update(f"predicted index {preds.predicted[k]}" for k, a in zip(s.keys, said) if a is None)
        else:
            right, missed = judge_answers(said, s.answers, convention)
            unmapped.update(missed)
        out.append(np.array(right, dtype=bool))
    return out, unmapped


def tables(sets: Sequence[AnnotationSet], correct: Sequence[np.ndarray], unmapped: collections.Counter) -> dict:
    """The table per annotation file, for all of them together, and the answers that could not be mapped."""
    results = {str(s.path): score_table(c, s.types) for s, c in zip(sets, correct)}
    combined = score_table(np.concatenate(correct), np.concatenate([s.types for s in sets])) if len(sets) > 1 else None
    return {"tables": results, "combined": combined, "unmapped_answers": sum(unmapped.values()),
            "unmapped_examples": dict(unmapped.most_common(20))}


def score(preds: Predictions, sets: Sequence[AnnotationSet], convention: str = "ours") -> dict:
    """The table per annotation file and for all of them together, and the answers ``convention`` could not map."""
    return tables(sets, *judge(preds, sets, convention))
