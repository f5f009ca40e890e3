"""Synthetic scenes: what is in each clip, where, when it sounds and how loud.

A scene is the single source of truth for a clip: the renderer draws and plays it, the question
generator answers from it, and the ground-truth file records it. Everything is drawn from a
seeded numpy Generator, so the same seed and flags give the same scenes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from ..annotations import INSTRUMENTS

MAX_POSITIONS = 4  # horizontal slots in a frame; more instruments than this cannot be placed
SIDE_WORDS = {1: ("middle",), 2: ("left", "right"), 3: ("left", "middle", "right")}
LOUDNESS_LEVELS_DB = (0.0, -9.0, -18.0)  # instance levels; a 'louder' question needs >= 6 dB
# sprite height as a share of the frame height, by the number of instruments sharing the frame
SPRITE_HEIGHT = {1: 0.72, 2: 0.68, 3: 0.6, 4: 0.5}


@dataclass
class Instance:
    """One visible instrument."""

    cls: str
    slot: int                       # 0 = leftmost
    side: str | None                # left/middle/right where the scene has <= 3 instruments
    style: str                      # 'rhythmic' (short repeated notes) or 'sustained' (long notes)
    gain_db: float                  # RMS level over its sounding time, relative to full scale
    intervals: list[list[int]]      # [start, end) seconds in which it plays; [] = silent
    center_x: float                 # sprite centre, fraction of frame width
    base_y: float                   # sprite bottom, fraction of frame height
    scale: float                    # sprite height, fraction of frame height
    seed: int                       # its own note sequence

    @property
    def plays(self) -> bool:
        return bool(self.intervals)

    @property
    def onset(self) -> int | None:
        return self.intervals[0][0] if self.intervals else None

    @property
    def duration(self) -> int:
        return sum(e - s for s, e in self.intervals)

    def playing_at(self, t: float) -> bool:
        return any(s <= t < e for s, e in self.intervals)


@dataclass
class Scene:
    video_id: str
    split: str
    seconds: int
    background: str                  # indoor | outdoor
    instances: list[Instance]
    voiceover: list[float] | None    # [start, end) seconds of a speaking voice in this clip's sound
    seed: int
    audio_from: str | None = None    # video_id whose sound track this clip carries instead of its own
    donor: "Scene | None" = field(default=None, repr=False)

    # -- what is seen
    @property
    def n(self) -> int:
        return len(self.instances)

    def classes_seen(self) -> list[str]:
        return sorted({i.cls for i in self.instances})

    # -- what is heard: the clip's own players, or the donor clip's when the sound was swapped
    def heard(self) -> list[Instance]:
        src = self.donor if self.donor is not None else self
        return [i for i in src.instances if i.plays]

    def heard_voiceover(self) -> list[float] | None:
        return self.donor.voiceover if self.donor is not None else self.voiceover

    @property
    def matched(self) -> bool:
        return self.audio_from is None

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("donor")
        return d


def _intervals(rng: np.random.Generator, seconds: int, may_be_silent: bool) -> list[list[int]]:
    """A playing schedule in whole seconds: full, late start, early stop, a middle part, or silent."""
    kinds = ["full", "late", "early", "middle", "silent"]
    p = np.array([0.32, 0.30, 0.12, 0.11, 0.15 if may_be_silent else 0.0])
    kind = kinds[rng.choice(5, p=p / p.sum())]
    L = seconds
    if kind == "full" or L < 5:
        return [[0, L]]
    if kind == "late":
        return [[int(rng.integers(1, L - 2)), L]]
    if kind == "early":
        return [[0, int(rng.integers(3, L))]]
    if kind == "middle":
        s = int(rng.integers(1, L - 3))
        return [[s, int(rng.integers(s + 3, L + 1))]]
    return []


def sample_scene(rng: np.random.Generator, video_id: str, split: str, seconds: int,
                 classes: Sequence[str] = INSTRUMENTS, min_instruments: int = 1,
                 max_instruments: int = MAX_POSITIONS, voiceover_rate: float = 0.3) -> Scene:
    sizes = np.arange(min_instruments, max_instruments + 1)
    weights = np.array([{1: 0.15, 2: 0.35, 3: 0.35}.get(int(k), 0.15) for k in sizes])
    n = int(rng.choice(sizes, p=weights / weights.sum()))
    pool = list(classes)
    if n >= 2 and len(pool) >= 1 and rng.random() < 0.3:
        # a class played by two (rarely three) musicians
        dup = pool[rng.integers(len(pool))]
        k = 3 if (n >= 3 and rng.random() < 0.25) else 2
        others = [c for c in pool if c != dup]
        picked = [dup] * k + list(rng.choice(others, size=min(n - k, len(others)), replace=False))
    else:
        picked = list(rng.choice(pool, size=min(n, len(pool)), replace=False))
    n = len(picked)
    rng.shuffle(picked)
    sides = SIDE_WORDS.get(n)
    centers = {1: [0.5], 2: [0.3, 0.7], 3: [0.2, 0.5, 0.8], 4: [0.14, 0.38, 0.62, 0.86]}[n]
    instances = []
    for slot, cls in enumerate(picked):
        instances.append(Instance(
            cls=str(cls), slot=slot, side=sides[slot] if sides else None,
            style="rhythmic" if rng.random() < 0.5 else "sustained",
            gain_db=float(round(LOUDNESS_LEVELS_DB[rng.integers(3)] + rng.uniform(-1, 1), 2)),
            intervals=_intervals(rng, seconds, may_be_silent=n >= 2),
            center_x=float(round(centers[slot] + rng.uniform(-0.025, 0.025), 4)),
            base_y=float(round(rng.uniform(0.86, 0.95), 4)),
            scale=float(round(SPRITE_HEIGHT[n] * rng.uniform(0.92, 1.08), 4)),
            seed=int(rng.integers(2**31)),
        ))
    if not any(i.plays for i in instances):
        instances[int(rng.integers(n))].intervals = [[0, seconds]]
    voiceover = None
    if rng.random() < voiceover_rate:
        length = int(rng.integers(min(3, seconds), seconds + 1))
        start = int(rng.integers(0, seconds - length + 1))
        voiceover = [float(start), float(start + length)]
    return Scene(video_id=video_id, split=split, seconds=seconds,
                 background="indoor" if rng.random() < 0.5 else "outdoor",
                 instances=instances, voiceover=voiceover, seed=int(rng.integers(2**31)))


COMPOSED_PREFIX = "va"  # as the real dataset marks its composed videos (sa, va, vv, esa, eva, evv + 8 digits)


def swap_sound_tracks(scenes: list[Scene], rng: np.random.Generator, rate: float) -> None:
    """Give some clips the sound of another clip of the same split whose instruments differ.

    The donor keeps its own sound; a clip that lends is never itself a borrower. A borrower is a
    composed clip, and its id carries the prefix the real data gives its composed videos
    (``va90000037``), so that grounding pre-training leaves it out, as it does the real ones.
    """
    by_split: dict[str, list[Scene]] = {}
    for s in scenes:
        by_split.setdefault(s.split, []).append(s)
    lenders: set[str] = set()
    for group in by_split.values():
        order = rng.permutation(len(group))
        for idx in order:
            s = group[idx]
            if rng.random() >= rate or s.video_id in lenders:
                continue
            seen = set(s.classes_seen())
            candidates = [d for d in group if d is not s and d.audio_from is None
                          and not seen & {i.cls for i in d.instances}]
            if not candidates:
                continue
            donor = candidates[int(rng.integers(len(candidates)))]
            s.audio_from, s.donor = donor.video_id, donor
            s.video_id = COMPOSED_PREFIX + s.video_id
            lenders.add(donor.video_id)
