"""Where an epoch's seconds go: an opt-in timer the training loop (avqa.engine.loop) reports to.

Off by default: every hook below is then one global lookup and nothing is timed. A benchmark turns it
on with ``record()`` around a run; the loop then adds the wall seconds of each phase of each epoch
(waiting for a batch, forward with the loss, backward, optimiser step, TensorBoard and log writes,
validation, checkpoint writes) and the process's resident memory at the epoch's end. Timing does not
touch the numbers: no synchronisation, no extra operations on tensors.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

PHASES = ("data", "forward", "backward", "step", "log", "validation", "checkpoint")


@dataclass
class Epoch:
    """One epoch's seconds per phase, its samples, its wall time and the RSS at its end."""

    epoch: int
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    samples: int = 0
    wall: float = 0.0
    train_wall: float = 0.0
    rss_mib: float = 0.0
    cpu: float = 0.0      # the process's CPU seconds (all threads): far above wall x threads' work means spinning

    @property
    def other(self) -> float:
        """Wall seconds in no phase (the loop's own Python, the progress bar)."""
        return self.wall - sum(self.seconds.values())

    @property
    def samples_per_second(self) -> float:
        """Training samples per second of the epoch's training pass (as the run's log reports it)."""
        return self.samples / max(self.train_wall, 1e-9)


@dataclass
class Breakdown:
    epochs: list[Epoch] = field(default_factory=list)
    _start: float = 0.0
    _cpu: float = 0.0

    def begin(self, epoch: int) -> None:
        self.epochs.append(Epoch(epoch))
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def add(self, phase: str, seconds: float) -> None:
        if self.epochs:
            self.epochs[-1].seconds[phase] += seconds

    def end(self, samples: int, train_wall: float) -> None:
        e = self.epochs[-1]
        e.wall, e.samples, e.train_wall, e.rss_mib = time.perf_counter() - self._start, samples, train_wall, rss_mib()
        e.cpu = time.process_time() - self._cpu


_active: Breakdown | None = None


def rss_mib() -> float:
    """The process's resident memory now, in MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    import os
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def record():
    """Turn the timer on for the duration; yields the Breakdown the loop fills."""
    global _active
    previous, _active = _active, Breakdown()
    try:
        yield _active
    finally:
        _active = previous


def begin_epoch(epoch: int) -> None:
    if _active is not None:
        _active.begin(epoch)


def end_epoch(samples: int, train_wall: float) -> None:
    if _active is not None and _active.epochs:
        _active.end(samples, train_wall)


class _Phase:
    __slots__ = ("name", "t0")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        if _active is not None:
            _active.add(self.name, time.perf_counter() - self.t0)
        return False


_NOTHING = contextlib.nullcontext()


def phase(name: str):
    """A context manager that adds its wall seconds to ``name`` of the current epoch (nothing when off)."""
    return _Phase(name) if _active is not None else _NOTHING


def timed(iterable, name: str = "data"):
    """``iterable``, with the wait for each item added to ``name`` (the iterable itself when off)."""
    if _active is None:
        return iterable
    return _timed(iterable, name)


def _timed(iterable, name: str):
    it = iter(iterable)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        if _active is not None:
            _active.add(name, time.perf_counter() - t0)
        yield item


def table(b: Breakdown) -> str:
    """The per-epoch table: wall seconds per phase, the rest, the epoch's wall and CPU seconds, samples/s of the
    training pass and RSS at the epoch's end."""
    head = f"{'epoch':>5} " + " ".join(f"{p:>10}" for p in (*PHASES, "other", "wall")) + f" {'cpu':>8} {'samples/s':>9} {'RSS MiB':>8}"
    lines = [head]
    for e in b.epochs:
        lines.append(f"{e.epoch:>5} " + " ".join(f"{e.seconds[p]:>10.2f}" for p in PHASES)
                     + f" {e.other:>10.2f} {e.wall:>10.2f} {e.cpu:>8.1f} {e.samples_per_second:>9.1f} {e.rss_mib:>8.0f}")
    return "\n".join(lines)
