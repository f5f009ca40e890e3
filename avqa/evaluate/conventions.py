"""The conventions that turn a free-text answer into right or wrong, side by side (docs/evaluation.md).

- ``ours``: this project's normaliser (:func:`avqa.evaluate.normalise`), given the kind of answer the
  question asks for; an answer that names none of that kind (or several answers without it) is unmapped.
- ``exact``: surrounding spaces and one trailing full stop dropped, upper-cased, then compared with the
  gold answer upper-cased ("Yes." is YES; "acoustic guitar" is not ACOUSTIC_GUITAR); unmapped when
  the result is none of the 42 answers.
- ``substring``: right when the gold answer, lower-cased, occurs anywhere in the lower-cased answer
  ("There are two." is right for two; "I don't know" is right for no); unmapped when no answer of the
  42 occurs in it.

Every convention counts an unmapped answer as wrong. Answers that are one of the 42 exactly (this
project's test reports, TSPM's result files once mapped through their vocabulary) score the same
under all three, except where one answer is part of another under ``substring``.
"""
from __future__ import annotations

import collections
import re
from typing import Callable

from ..annotations import ANSWERS
from .normalise import FAMILY_OF, normalise

CONVENTIONS = {"ours": "this project's normaliser", "exact": "exact match, upper-cased, a trailing '.' dropped",
               "substring": "the gold answer inside the lower-cased answer"}
_UPPER = frozenset(a.upper() for a in ANSWERS)
_LOWER = tuple(sorted(ANSWERS))
_TRAILING_STOP = re.compile(r"\s*\.\s*$")


def _ours(text: str, gold: str) -> tuple[bool, bool]:
    if text == gold:
        return True, True
    mapped = normalise(text, FAMILY_OF[gold])
    return mapped == gold, mapped is not None


def _exact(text: str, gold: str) -> tuple[bool, bool]:
    said = _TRAILING_STOP.sub("", text.strip()).strip().upper()
    return said == gold.upper(), said in _UPPER


def _substring(text: str, gold: str) -> tuple[bool, bool]:
    said = text.lower()
    if gold.lower() in said:
        return True, True
    return False, any(a in said for a in _LOWER)


JUDGES: dict[str, Callable[[str, str], tuple[bool, bool]]] = {"ours": _ours, "exact": _exact, "substring": _substring}
assert set(JUDGES) == set(CONVENTIONS)


def judge_answers(texts: list[str], golds: list[str], convention: str) -> tuple[list[bool], collections.Counter]:
    """Whether each answer is right under ``convention``, and the answers it could not map (with counts)."""
    rule = JUDGES[convention]
    cache: dict[tuple[str, str], tuple[bool, bool]] = {}
    right, unmapped = [], collections.Counter()
    for text, gold in zip(texts, golds):
        verdict = cache.get((text, gold))
        if verdict is None:
            verdict = cache[(text, gold)] = rule(text, gold)
        right.append(verdict[0])
        if not verdict[1]:
            unmapped[text] += 1
    return right, unmapped
