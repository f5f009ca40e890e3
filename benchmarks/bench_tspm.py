"""TSPM training speed: this project's model against the public release's, in one process.

Both train with the release's recipe (batch 64, Adam at 1e-4, cross-entropy over 42 answers) on
random features of the published shapes held in memory (VGGish [60,128], CLIP frames [60,768], ToMe
tokens [10,14,1024], CLIP question and prompt [1,768]), so only the model's forward, backward and
step are timed. The release is tests/tspm_reference.py (its code patched only where it cannot run).
Ours runs in float32, and again under torch.autocast("cpu", torch.bfloat16).

Besides samples/s it prints the matrix-product FLOPs of one training step of each model (forward and
backward, counted from the shapes by torch.utils.flop_counter.FlopCounterMode: matmuls, linear layers,
attention; the optimiser's element-wise update is not counted) and the GFLOP/s each achieves. Where both
models do the same products, a float32 speed-up is bounded by how far the release's GFLOP/s is from the
CPU's: the roofline. The models take their steps in turns, one each per round, under one subnormal-float
setting (benchmarks/turns.py says why).

    python benchmarks/bench_tspm.py                 # 2 warm-up and 5 timed rounds
    python benchmarks/bench_tspm.py --steps 10 --token_frames release
    python benchmarks/bench_tspm.py --no_bf16 --profile 12   # and where one step's time goes
"""
import argparse
import contextlib
import sys
from pathlib import Path

import torch

from avqa.machine import describe_machine
from avqa.tspm.model import TOKEN_FRAMES, TSPM

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("tests", "benchmarks")]
from tspm_reference import ReleaseTSPM  # noqa: E402  (the release's computation lives with the tests)
from turns import flush_flags, flush_settings, report, step_flops, timed_in_turns  # noqa: E402


def batch(size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return dict(audio=torch.randn(size, 60, 128, generator=g), visual=torch.randn(size, 60, 768, generator=g),
                tokens=torch.randn(size, 10, 14, 1024, generator=g), question=torch.randn(size, 1, 768, generator=g),
                prompt=torch.randn(size, 1, 768, generator=g), target=torch.randint(0, 42, (size,), generator=g))


def trainer(model, forward, data, autocast: bool = False):
    """One training step of ``model`` on ``data``, the release's recipe: ``step()``."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", torch.bfloat16) if autocast else contextlib.nullcontext():
            logits = forward(model, data)
        loss_fn(logits.float(), data["target"]).backward()
        optimizer.step()
    return step


def profile_step(model, forward, data, top: int) -> str:
    """torch.profiler's table of one float32 training step (after the timed rounds have warmed it up)."""
    from torch.profiler import ProfilerActivity, profile
    step = trainer(model, forward, data)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=64, help="questions per batch (default: 64, the release's)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before timing (default: 2)")
    p.add_argument("--steps", type=int, default=5, help="timed rounds, one training step of each model each "
                                                        "(default: 5)")
    p.add_argument("--token_frames", choices=TOKEN_FRAMES, default="paper",
                   help="which token frames our model reads (default: paper; release reads the first top_k)")
    p.add_argument("--no_bf16", action="store_true", help="skip the bfloat16 autocast run of our model")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the N operations that take most of one float32 training step of each model "
                        "(torch.profiler, self CPU time)")
    flush_flags(p)
    a = p.parse_args()
    print(f"machine: {describe_machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    data = batch(a.batch_size)
    torch.manual_seed(0)
    release = ReleaseTSPM()
    ours = TSPM(token_frames=a.token_frames)
    ours.load_state_dict(release.state_dict())
    release_fwd = lambda m, d: m(d["audio"], d["visual"], None, d["tokens"], d["question"], d["prompt"])  # noqa: E731
    ours_fwd = lambda m, d: m(d["audio"], d["visual"], d["tokens"], d["question"], d["prompt"])  # noqa: E731
    runs = [("release (tests/tspm_reference.py), float32", release, release_fwd, False),
            (f"avqa.tspm TSPM ({a.token_frames} token frames), float32", ours, ours_fwd, False)]
    if not a.no_bf16:
        runs.append((f"avqa.tspm TSPM ({a.token_frames} token frames), bf16 autocast", ours, ours_fwd, True))
    import os
    print(f"load average before: {os.getloadavg()}", flush=True)
    flops = {name: step_flops(model, forward, data) for name, model, forward, _ in runs}
    steps = {name: trainer(model, forward, data, autocast=bf16) for name, model, forward, bf16 in runs}
    seconds = timed_in_turns(steps, a.warmup, a.steps, flush_settings(list(steps), a, runs[0][0]))
    print(f"load average after: {os.getloadavg()}", flush=True)
    for name, model, forward, bf16 in runs[:2] if a.profile else []:
        print(f"\n{name}: one training step, the {a.profile} operations with most self CPU time")
        print(profile_step(model, forward, data, a.profile))
    print("\n" + report(seconds, flops, a.batch_size, runs[0][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
