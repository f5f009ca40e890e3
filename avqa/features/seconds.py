"""Which seconds of a clip each model reads, and so which seconds the extractors compute: AVST's segments,
grounding's first seconds, and the second each of TSPM's token frames shows."""
from __future__ import annotations

import numpy as np


def segment_seconds(total_seconds: int, segments: int = 10) -> np.ndarray:
    """The seconds a model sees: every (T // segments)-th second, e.g. [::6] for T = 60."""
    stride = max(1, total_seconds // segments)
    return np.arange(0, total_seconds, stride)[:segments]


GROUNDING_SECONDS = 10  # grounding pre-training reads the first 10 seconds of each video


def used_seconds(total_seconds: int, segments: int = 10) -> list[int]:
    """Every second a model here reads: AVST's (every T // segments-th) and grounding's (the first 10).

    18 of 60 for the real data; AVST's negatives are then drawn from these seconds too.
    """
    return sorted(set(segment_seconds(total_seconds, segments).tolist())
                  | set(range(min(GROUNDING_SECONDS, total_seconds))))


def token_seconds(T: int, F: int) -> np.ndarray:
    """The second (0-based) each of F token frames shows in a clip of T seconds.

    F == T: one frame per second. F < T: the release's token extractor samples
    ``linspace(0, T - 2, F)`` (truncated to integers) of the clip's one-per-second frames.
    """
    if T < 1 or F < 1:
        raise ValueError(f"token_seconds needs T >= 1 and F >= 1, got T={T}, F={F}")
    if F > T:
        raise ValueError(f"{F} token frames for a clip of {T} seconds: a clip has at most one token frame "
                         f"per second; extract at most {T} token frames")
    if F == T:
        return np.arange(T)
    return np.sort(np.linspace(0, T - 2, F).astype(int))
