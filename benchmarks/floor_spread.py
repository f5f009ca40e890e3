"""The spread of every learned figure the test suite holds to a floor, over seeds, threads and precisions.

A test that asserts a learned figure (grounding's match accuracy, TSPM above question-only) trains
with a fixed recipe, but the figure it reaches depends on the CPU's float kernels: another CPU kind,
thread count or feature precision rounds differently and trains to another figure. This script runs
each such test's own set and recipe (read from the test modules, so it measures what the tests run)
over seeds x threads x feature precision, each training in a process of its own, and prints every
figure with the lowest and the floor the test sets, so that a floor is set below the lowest with a
stated margin (docs/development.md keeps the table).

    python benchmarks/floor_spread.py                      # seeds 1-3, 1 and 2 threads, bfloat16 and float32
    python benchmarks/floor_spread.py --only grounding --seeds 1 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import conftest as C  # noqa: E402  (the tests' own helpers: extraction, flags, script paths)
import test_pretrain as TP  # noqa: E402
import test_tspm_run as TT  # noqa: E402

from avqa import checkpoint  # noqa: E402
from avqa.machine import describe_machine  # noqa: E402
from avqa.tspm.standin import make_standins  # noqa: E402


def run(args: list[str], threads: int, log: Path) -> None:
    """One script in a process of its own, on ``threads`` cores and as many PyTorch threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
    cmd = ["taskset", "-c", cores, sys.executable, *args]
    with log.open("a") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed (exit {proc.returncode}): see {log}")


def script(path: str) -> str:
    return str(ROOT / path)


def features(work: Path, name: str, synthetic_flags: list[str], bf16: bool, vggish: Path) -> Path:
    """The set a test makes, with features of the taught backbones in the given precision (made once)."""
    d = work / f"{name}_{'bf16' if bf16 else 'fp32'}" / "data"
    if not (d / "feats" / "res18_14x14").is_dir():
        C.run_here("-m", "avqa.synthetic", "--out", str(d), *synthetic_flags)
        C.extract(d, vggish, C.SYNTHETIC_RES18, bf16=bf16)
    return d


def grounding(d: Path, out: Path, seed: int, threads: int, log: Path) -> dict:
    flags = [*C.data_flags(d), "--model_save_dir", str(out), "--tensorboard_dir", "", "--seed", str(seed)]
    run([script(C.GRD), *flags, *TP.GROUNDING_RECIPE], threads, log)
    run([script(C.GRD), *flags, "--mode", "test", "--results", str(out / "test.json")], threads, log)
    history = checkpoint.load_dict(out / "main_grounding_gen_last.pt")["history"]
    report = json.loads((out / "test.json").read_text())
    return {"best val match": max(h["val_accuracy"] for h in history[1:]),
            "untrained val match": history[0]["val_accuracy"],
            "lowest loss, epochs 1-5": min(h["loss"] for h in history[1:6]),
            "test match": report["match_accuracy"],
            "test match - untrained": report["match_accuracy"] - report["untrained_match_accuracy"]}


def tspm(d: Path, standins: Path, out: Path, seed: int, threads: int, log: Path) -> dict:
    recipe = [*TT.RECIPE[:TT.RECIPE.index("--seed")], "--seed", str(seed)]
    flags = [*TT.tspm_flags(d, standins), "--model_save_dir", str(out / "models")]
    run([script(TT.TRAIN), *flags, *recipe], threads, log)
    run([script(TT.TEST), *flags, "--result_dir", str(out / "results")], threads, log)
    qo = [*C.data_flags(d), "--tensorboard_dir", "", "--model", "question_only", "--model_save_dir", str(out / "qo"),
          "--checkpoint", "qo"]
    run([script(C.AVST), *qo, *recipe], threads, log)
    run([script(C.AVST), *qo, "--mode", "test"], threads, log)
    history = checkpoint.load_dict(out / "models" / "TSPM_last.pt")["history"]
    losses = [h["loss"] for h in history if "loss" in h]
    acc = json.loads((out / "models" / "TSPM_avqa-test.json").read_text())["table"]["Overall"]["accuracy"]
    qo_acc = json.loads((out / "qo" / "qo_avqa-test.json").read_text())["table"]["Overall"]["accuracy"]
    return {"TSPM - question-only": acc - qo_acc, "TSPM": acc, "question-only": qo_acc,
            "last loss / first loss": losses[-1] / losses[0]}


# figure -> (the test's floor, which way it holds); a figure above its floor passes
FLOORS = {
    "grounding": {"best val match": 60.0, "test match": 58.0, "test match - untrained": 8.0,
                  "lowest loss, epochs 1-5": -0.62},   # negative: a ceiling (loss below 0.62)
    "tspm": {"TSPM - question-only": 0.0, "last loss / first loss": -0.8},
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["grounding", "tspm"], default=None, help="one test's figures (default: both)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds (default 1 2 3)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="PyTorch threads, each on as many cores")
    p.add_argument("--precisions", nargs="+", choices=["bf16", "fp32"], default=["bf16", "fp32"],
                   help="the features' precision (the extractors' --bf16, or float32)")
    p.add_argument("--work", type=Path, default=None, help="folder for the sets and runs (default: a new temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    a = p.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="floor_spread_"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "runs.log"
    print(f"machine: {describe_machine()}\nwork folder: {work} (commands and output in {log})", flush=True)
    from avqa.features.pretrain import BUNDLED_VGGISH, assemble_vggish
    vggish = work / "vggish_synthetic.pth"
    if not vggish.is_file():
        assemble_vggish(BUNDLED_VGGISH, vggish)
    tests = [a.only] if a.only else ["grounding", "tspm"]
    rows = []
    for precision in a.precisions:
        bf16 = precision == "bf16"
        for test in tests:
            if test == "grounding":
                d = features(work, "small_world", TP.SMALL_WORLD, bf16, vggish)
            else:
                d = features(work, "tspm_set", TT.QA_SET, bf16, vggish)
                standins = d.parent / "standins"
                if not standins.is_dir():
                    make_standins(d, standins, seed=0)
            for seed in a.seeds:
                for threads in a.threads:
                    out = work / "runs" / f"{test}_{precision}_seed{seed}_{threads}t"
                    t0 = time.perf_counter()
                    figures = (grounding(d, out, seed, threads, log) if test == "grounding"
                               else tspm(d, standins, out, seed, threads, log))
                    rows.append({"test": test, "precision": precision, "seed": seed, "threads": threads, **figures})
                    shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
                    print(f"{test:9s} {precision} seed {seed} {threads} thread(s): {shown} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\nlowest (highest for a ceiling) against the test's floor:")
    for test in tests:
        mine = [r for r in rows if r["test"] == test]
        for figure, floor in FLOORS[test].items():
            values = [r[figure] for r in mine]
            worst = min(values) if floor >= 0 else max(values)
            margin = worst - floor if floor >= 0 else -floor - worst
            print(f"  {test}: {figure}: {min(values):.3f} .. {max(values):.3f} over {len(values)} runs; "
                  f"floor {abs(floor)}, margin {margin:+.3f}")
    if a.json:
        a.json.write_text(json.dumps({"machine": describe_machine(), "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
