"""A newcomer's first hour, measured: the README's two commands on a fresh clone of this checkout.

Clones the committed HEAD into a new folder and makes a new virtual environment there
(``--system-site-packages``, so an installed PyTorch is reused; ``pip install -r requirements.txt``
installs the rest and the clone's ``avqa``, leaving this checkout's install alone), then runs, one
after the other (never side by side, so neither slows the other):

1. the main job, ``python -m avqa.pipeline``, and reads its stage seconds and the demo's figures;
2. the README's test command through ``.ci/run`` (it installs the requirements, then runs exactly
   that command), and the fast tier, ``python -m pytest -q -m "not e2e"``.

It prints each time against the time a newcomer is promised (main job and tests 10 minutes each,
fast tier 60 s) and each figure of the demo against what the README claims on every CPU (grounding's
best validation match at least 75%, its sounding-vs-silent hit at least 10 points above the same
model untrained, AVST at least 10 points above question-only: below the lowest of every CPU, seed
and thread count measured, docs/results.md), names the machine, since a time from one CPU is not a
time from another, and the load average before and after, since a busy machine is a slower one.

    python benchmarks/bench_first_hour.py                  # both, about 9 minutes on the AMD EPYC
    python benchmarks/bench_first_hour.py --skip_tests     # the main job alone
    python benchmarks/bench_first_hour.py --cpus 1         # on one of the cores: a machine of half the throughput
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from avqa.machine import cpu_details, describe_machine

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"main job": 600.0, "tests (.ci/run)": 600.0, "fast tier": 60.0}
# what the README claims of the demo on every CPU (docs/results.md has the spread these sit below)
GROUNDING_MATCH_AT_LEAST = 75.0
PEAK_ABOVE_UNTRAINED = 10.0
AVST_ABOVE_QUESTION_ONLY = 10.0


def timed(cmd: list[str], cwd: Path, log: Path, env: dict) -> tuple[float, int]:
    """Runs ``cmd``, its output to ``log``; wall seconds and exit status."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    return time.perf_counter() - t0, code


def pytest_line(log: Path) -> str:
    """pytest's closing line, e.g. '568 passed, 1 skipped in 246.30s (0:04:06)'."""
    lines = [ln for ln in log.read_text().splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    return lines[-1].strip("= ") if lines else "(no pytest summary: see the log)"


def demo_figures(clone: Path) -> dict:
    """The figures the issue holds the demo to, read from the main job's outputs."""
    from avqa import checkpoint
    out = clone / "outputs"
    summary = json.loads((out / "summary.json").read_text())
    history = checkpoint.load_dict(out / "grounding" / "main_grounding_gen_last.pt")["history"]
    scores = json.loads((out / "grounding_score.json").read_text())["scores"]
    hit = {name: s["sounding_vs_silent"]["hit"] for name, s in scores.items()}
    tables = summary["tables"]
    bundled = json.loads((out / "bundled_avst_test.json").read_text())["table"]["Overall"]["accuracy"]
    return {
        "stages": {s["stage"]: s["seconds"] for s in summary["stages"]},
        "grounding best val match": max(h["val_accuracy"] for h in history if h["epoch"] > 0),
        "grounding untrained val match": next(h["val_accuracy"] for h in history if h["epoch"] == 0),
        "sounding-vs-silent hit, grounding": hit["grounding"],
        "sounding-vs-silent hit, grounding untrained": hit["grounding, untrained"],
        "AVST overall": tables["avst"]["Overall"]["accuracy"],
        "question-only overall": tables["question_only"]["Overall"]["accuracy"],
        "bundled checkpoint overall": bundled,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=None,
                   help="an empty or new folder for the clone and logs (default: a new temporary folder, "
                        "removed at the end unless --keep)")
    p.add_argument("--cpus", type=int, default=None,
                   help="run everything on this many of the CPUs this process may use (its affinity, which "
                        "every child inherits): one of two cores stands in for a machine of half the throughput")
    p.add_argument("--skip_job", action="store_true", help="do not run the main job")
    p.add_argument("--skip_tests", action="store_true", help="do not run .ci/run and the fast tier")
    p.add_argument("--keep", action="store_true", help="keep the clone, its outputs and the logs")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    a = p.parse_args()

    if a.cpus is not None:
        allowed = sorted(os.sched_getaffinity(0))
        if not 1 <= a.cpus <= len(allowed):
            sys.exit(f"--cpus {a.cpus}: this process may use {len(allowed)} CPU(s)")
        os.sched_setaffinity(0, allowed[:a.cpus])
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print("note: this checkout has uncommitted changes; the clone measures the committed HEAD", flush=True)
    work = a.work or Path(tempfile.mkdtemp(prefix="avqa-first-hour-"))
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty: give a new or empty folder with --work")
    work.mkdir(parents=True, exist_ok=True)
    clone, logs = work / "clone", work / "logs"
    logs.mkdir()
    machine = f"{describe_machine()}; {cpu_details()}"
    print(f"machine: {machine}", flush=True)
    load_before = os.getloadavg()[0]
    print(f"load average (1 min) before: {load_before:.2f}"
          + ("  (not idle: other work slows every timing here)" if load_before > 0.5 else ""), flush=True)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                            text=True).stdout.strip()
    print(f"fresh clone of {commit} in {clone}", flush=True)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    real = ROOT.parent / "shared" / "data" / "music_avqa"
    if "AVQA_REAL_ANNOTATIONS" not in env and (real / "json" / "avqa-test.json").is_file():
        env["AVQA_REAL_ANNOTATIONS"] = str(real)  # the clone's tests read what this checkout's read
    results: dict = {"machine": machine, "commit": commit, "seconds": {}}
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    python = str(venv / "bin" / "python")
    seconds, code = timed([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], clone,
                          logs / "pip.log", env)
    if code:
        sys.exit(f"pip install -r requirements.txt failed: see {logs / 'pip.log'}")
    results["seconds"]["pip install -r requirements.txt"] = round(seconds, 1)
    print(f"pip install -r requirements.txt: {seconds:.1f} s", flush=True)

    failed = False
    if not a.skip_job:
        print("main job: python -m avqa.pipeline ...", flush=True)
        seconds, code = timed([python, "-m", "avqa.pipeline"], clone, logs / "main_job.log", env)
        results["seconds"]["main job"] = round(seconds, 1)
        if code:
            failed = True
            print(f"  exited {code}: see {logs / 'main_job.log'}")
        else:
            figures = demo_figures(clone)
            results["main job"] = figures
            for stage, s in figures["stages"].items():
                print(f"  {stage:<20} {s:7.1f} s")
            print(f"  {'wall':<20} {seconds:7.1f} s")
    if not a.skip_tests:
        print("tests: .ci/run (installs the requirements, then the README's test command) ...", flush=True)
        seconds, code = timed(["bash", ".ci/run"], clone, logs / "ci.log", env)
        results["seconds"]["tests (.ci/run)"] = round(seconds, 1)
        results["pytest"] = pytest_line(logs / "ci.log")
        print(f"  {results['pytest']}", flush=True)
        failed |= code != 0
        seconds, code = timed([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not e2e"], clone,
                              logs / "fast.log", env)
        results["seconds"]["fast tier"] = round(seconds, 1)
        results["fast tier pytest"] = pytest_line(logs / "fast.log")
        print(f"  fast tier: {results['fast tier pytest']}", flush=True)
        failed |= code != 0

    results["load average"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    print(f"\non {machine}, commit {commit}, load average {load_before:.2f} before, "
          f"{results['load average']['after']:.2f} after:")
    for name, s in results["seconds"].items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  (target {target:.0f} s: {'met' if s <= target else 'MISSED'})"
        print(f"  {name:<32} {s:7.1f} s{verdict}")
    if "main job" in results:
        f = results["main job"]
        untrained_hit = f["sounding-vs-silent hit, grounding untrained"]
        checks = [
            ("grounding best val match", f["grounding best val match"],
             f["grounding best val match"] >= GROUNDING_MATCH_AT_LEAST,
             f"untrained {f['grounding untrained val match']:.2f}; claimed >= {GROUNDING_MATCH_AT_LEAST:.0f}"),
            ("sounding-vs-silent hit", f["sounding-vs-silent hit, grounding"],
             f["sounding-vs-silent hit, grounding"] >= untrained_hit + PEAK_ABOVE_UNTRAINED,
             f"untrained {untrained_hit:.2f}; claimed >= untrained + {PEAK_ABOVE_UNTRAINED:.0f}"),
            ("AVST overall", f["AVST overall"], f["AVST overall"] >= f["question-only overall"] + AVST_ABOVE_QUESTION_ONLY,
             f"question-only {f['question-only overall']:.2f}; claimed >= question-only + {AVST_ABOVE_QUESTION_ONLY:.0f}"),
        ]
        for name, value, ok, against in checks:
            print(f"  {name:<32} {value:7.2f}    ({against}{'' if ok else ': MISSED'})")
        print(f"  {'bundled checkpoint overall':<32} {f['bundled checkpoint overall']:7.2f}    (the README's figure)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"figures: {a.json}")
    if a.keep or a.work:
        print(f"clone and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
