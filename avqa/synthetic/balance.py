"""The per-split pass of the synthetic generator that keeps the question text from giving its answer away:
no template's most common answer above a share of its questions (avqa.synthetic.questions asks them)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def balance(rows: list[dict], rng: np.random.Generator, max_share: float = 0.55) -> list[dict]:
    """Drop questions so that no template's most common answer exceeds ``max_share``.

    The rows that are kept keep their order. Templates with very few questions are balanced too,
    as long as at least two answers occur.
    """
    by_template: dict[str, list[int]] = defaultdict(list)
    for k, r in enumerate(rows):
        by_template[r["question_content"]].append(k)
    dropped: set[int] = set()
    for idxs in by_template.values():
        by_answer: dict[str, list[int]] = defaultdict(list)
        for k in idxs:
            by_answer[rows[k]["anser"]].append(k)
        if len(by_answer) < 2:
            continue
        while True:
            sizes = {a: len(v) for a, v in by_answer.items()}
            total = sum(sizes.values())
            top = max(sizes, key=lambda a: (sizes[a], a))
            if sizes[top] <= max_share * total:
                break
            rest = total - sizes[top]
            keep = int(np.floor(max_share * rest / (1 - max_share)))
            keep = max(keep, 1)
            if keep >= sizes[top]:
                break
            victims = rng.choice(by_answer[top], sizes[top] - keep, replace=False)
            dropped.update(int(v) for v in victims)
            by_answer[top] = [k for k in by_answer[top] if k not in dropped]
    return [r for k, r in enumerate(rows) if k not in dropped]
