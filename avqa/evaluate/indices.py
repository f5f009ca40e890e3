"""A result file's answer indices, read against the annotation file rather than trusted.

TSPM-style code writes, per question, its own verdict (True/False), the truth index and the
predicted index. The verdicts are not scored: the predicted index is mapped to an answer through the
answer vocabulary, and that answer is compared with the annotation file's gold answer. The vocabulary
is the one the user names (``--answers``: a JSON list of the answers in index order, or the train
annotation file the model's vocabulary was built from) or, by default, the one the file implies: each
truth index stands for the gold answer of the questions it is written against. Lines whose verdict
disagrees with their own indices, or whose truth index disagrees with the annotation file, are
refused by line number.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Sequence

from ..annotations import AnnotationError, Vocab, load_annotations
from .predictions import EvaluationError, Predictions, read_text
from .sets import AnnotationSet


def answer_vocabulary(path: str | Path) -> list[str]:
    """--answers: the answers in index order, from a JSON list of them or from a train annotation file."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"--answers {path}: {'is a folder' if path.is_dir() else 'not found'}; give a JSON list "
                              f"of the answers in index order, or the train annotation file the model was built on")
    try:
        obj = json.loads(read_text(path, "--answers"))
    except json.JSONDecodeError as e:
        raise EvaluationError(f"--answers {path}: not valid JSON ({e})") from None
    if isinstance(obj, list) and obj and all(isinstance(a, str) for a in obj):
        return list(obj)
    try:
        return list(Vocab.from_samples(load_annotations(path)).answers)
    except (AnnotationError, KeyError, TypeError) as e:
        raise EvaluationError(f"--answers {path} is neither a JSON list of answers nor an annotation file ({e})") from None


def _implied(lines, golds: dict[str, set[str]]) -> dict[int, str]:
    """Index -> answer as the file uses it: each truth index's most frequent gold answer, one index per answer."""
    votes: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for _, key, _, truth in lines:
        if len(golds[key]) == 1:
            votes[truth][next(iter(golds[key]))] += 1
    best: dict[str, tuple[int, int]] = {}  # answer -> (lines, index)
    for index, counts in votes.items():
        answer, n = counts.most_common(1)[0]
        if answer not in best or n > best[answer][0]:
            best[answer] = (n, index)
    return {index: answer for answer, (_, index) in best.items()}


def _listing(items: list[str]) -> str:
    return "; ".join(items[:10]) + (f"; ... ({len(items)} in all)" if len(items) > 10 else "")


def resolve_indices(preds: Predictions, sets: Sequence[AnnotationSet], vocabulary: Sequence[str] | None = None,
                    vocabulary_name: str = "") -> None:
    """Fill ``preds.answers`` from a result file's predicted indices, or refuse naming contradicting lines."""
    if not preds.lines:
        return
    own = [f"line {n} (question {k}: {v}, truth {t}, predicted {preds.predicted[k]})"
           for n, k, v, t in preds.lines if v != (t == preds.predicted[k])]
    if own:
        raise EvaluationError(f"{preds.path}: {len(own)} line(s) give a True/False verdict that their own truth and "
                              f"predicted indices contradict: {_listing(own)}. The file is damaged or was edited: write "
                              f"it again from the model's predictions")
    golds: dict[str, set[str]] = collections.defaultdict(set)
    for s in sets:
        for k, a in zip(s.keys, s.answers):
            golds[k].add(a)
    if vocabulary is None:
        index_answer, source = _implied(preds.lines, golds), "the index the file's other lines give that answer"
    else:
        index_answer, source = dict(enumerate(vocabulary)), f"the answers of {vocabulary_name}"
    wrong = [f"line {n} (question {k}: truth index {t} is {index_answer.get(t, 'no answer')!r}, the annotation's "
             f"answer is {' or '.join(map(repr, sorted(golds[k])))})"
             for n, k, _, t in preds.lines if index_answer.get(t) not in golds[k]]
    if wrong:
        names = " + ".join(str(s.path) for s in sets)
        raise EvaluationError(f"{preds.path}: {len(wrong)} line(s) give a truth index that contradicts the gold answer "
                              f"of {names} (read through {source}): {_listing(wrong)}. Score the file on the annotation "
                              f"file it was made on, or name the model's answer vocabulary with --answers")
    preds.answers = {k: index_answer.get(p) for k, p in preds.predicted.items()}
