"""Training steps of several models timed in turns, and the matrix-product FLOPs of one step.

Why turns: on a shared or throttled machine the speed of the CPU moves by up to a third within a
minute. Timing model A's steps and then model B's lets that drift into their ratio; here every round
runs one step of each model, so a slow minute slows all of them alike. Each model's rate is its
samples over the sum of its timed steps, and the median of the rounds' ratios is printed beside it.

Why the subnormal setting: a model whose attention or Gaussian weights underflow passes subnormal
floats to its matrix products, and on Intel CPUs each operation on one takes a microcode assist, so
the same product can take several times as long. The project's trainings flush them on Intel CPUs
(``--flush_denormals auto``, avqa/engine/denormals.py). A benchmark times every model under one
setting, by default the one training uses on this machine; ``--as_trained`` keeps them for the release,
whose code has no such setting, to time each model as its own code trains.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from avqa.engine.denormals import FLUSH_CHOICES, flush_denormals_on, set_everywhere


def flush_flags(p) -> None:
    """--flush_denormals and --as_trained of a speed benchmark."""
    p.add_argument("--flush_denormals", choices=FLUSH_CHOICES, default="auto",
                   help="subnormal floats flushed to zero in every thread while the models train: auto (default, "
                        "as the project's trainings run: on where the CPU is an Intel one), on, off")
    p.add_argument("--as_trained", action="store_true",
                   help="time the release as its own code trains, with subnormal floats kept (it has no such "
                        "setting), and this project's models under --flush_denormals; default: every model under "
                        "--flush_denormals")


def flush_settings(names: list[str], args, release: str) -> dict[str, bool]:
    """Whether each model's steps run with subnormals flushed, from --flush_denormals and --as_trained
    (printed, since it decides what the figures mean)."""
    on = flush_denormals_on(args.flush_denormals)
    flush = {name: on and not (args.as_trained and name == release) for name in names}
    print("subnormals flushed: " + "; ".join(f"{name}: {kept}" for name, kept in flush.items()), flush=True)
    return flush


def timed_in_turns(steps: dict[str, Callable[[], None]], warmup: int, timed: int, flush: dict[str, bool],
                   sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Runs ``warmup + timed`` rounds, each one training step of every model in ``steps`` (in order), each
    with subnormals flushed or kept as ``flush`` says; returns each model's seconds per timed step."""
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    try:
        for r in range(warmup + timed):
            for name, step in steps.items():
                set_everywhere(flush[name])
                sync()
                start = time.perf_counter()
                step()
                sync()
                if r >= warmup:
                    seconds[name].append(time.perf_counter() - start)
    finally:
        set_everywhere(False)
    return seconds


def rates(seconds: dict[str, list[float]], batch: int) -> dict[str, float]:
    """Samples per second of each model: its timed samples over its timed seconds."""
    return {name: batch * len(s) / sum(s) for name, s in seconds.items()}


def median_ratio(seconds: dict[str, list[float]], name: str, reference: str) -> float:
    """The median over rounds of reference's step time over name's: how many times faster, round by round."""
    return statistics.median(r / s for r, s in zip(seconds[reference], seconds[name]))


def report(seconds: dict[str, list[float]], flops: dict[str, int], batch: int, release: str) -> str:
    """The table both benchmarks print: each model's samples/s, its ratio to ``release`` (the median over
    rounds in brackets), the GFLOP of one step and the GFLOP/s achieved."""
    speed = rates(seconds, batch)
    width = max(len(name) for name in seconds) + 2
    lines = [f"training samples/s, batch {batch}, {len(seconds[release])} timed rounds of one step of each model in "
             f"turn; x release: samples/s over the release's (median over rounds in brackets); GFLOP: the matrix "
             f"products of one step (forward and backward); GFLOP/s: achieved",
             f"{'model':<{width}} {'samples/s':>10} {'x release':>14} {'GFLOP':>8} {'GFLOP/s':>8}"]
    for name in seconds:
        ratio = f"{speed[name] / speed[release]:.2f} ({median_ratio(seconds, name, release):.2f})"
        gflop = flops[name] / 1e9
        lines.append(f"{name:<{width}} {speed[name]:>10.2f} {ratio:>14} {gflop:>8.1f} "
                     f"{gflop * speed[name] / batch:>8.1f}")
    return "\n".join(lines)


def step_flops(model, forward, data) -> int:
    """The matrix-product FLOPs of one float32 training step (forward and backward), counted from the shapes."""
    from torch.utils.flop_counter import FlopCounterMode
    model.train()
    with FlopCounterMode(display=False) as counter:
        logits = forward(model, data)
        torch.nn.functional.cross_entropy(logits.float(), data["target"]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()
