"""Scoring predictions against annotation files: which question each file answered right."""
from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from .normalise import FAMILY_OF, normalise
from .predictions import Predictions
from .sets import AnnotationSet
from .table import score_table

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
