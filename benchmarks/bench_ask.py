"""How long does one question about one video take, cold start included?

    python benchmarks/bench_ask.py                  # a 10 s and a 60 s clip, 3 cold runs each
    python benchmarks/bench_ask.py --repeats 5

Generates the clips with ``python -m avqa.synthetic`` (the default set's picture and sound: 320x240
at 25 fps) into a temporary folder, asks each a question of its own annotation file with the
bundled checkpoint, and times whole ``python -m avqa.ask`` processes: Python and PyTorch start,
the checkpoint and both backbones load, the clip is decoded, the features extracted and the
question answered; once more with ``--sheet`` (the clip decoded again, the sheet drawn). The
bundled checkpoint reads T = 10 s; the 60 s clip is also asked with ``--seconds 60`` (every 6th
second of the minute, as a model of the real data reads it). Each figure is wall-clock time, and
the process's CPU time (user and system, all its threads). The load average is printed with them:
on a shared machine both grow with what else runs.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from avqa.annotations import tokenize
from avqa.machine import describe_machine, usable_cores


def make_clips(out: Path, seconds: int) -> tuple[Path, str]:
    """Two synthetic clips of ``seconds``; returns the first clip and one of its questions, in words."""
    subprocess.run([sys.executable, "-m", "avqa.synthetic", "--out", str(out), "--num_clips", "3", "--seconds",
                    str(seconds), "--seed", "11", "--split", "0.34,0.33,0.33"], cwd=ROOT, check=True,
                   capture_output=True)
    rows = json.loads((out / "json" / "avqa-train.json").read_text())
    row = next(r for r in rows if "<" in r["question_content"])  # a template with a placeholder
    return out / "videos" / f"{row['video_id']}.mp4", " ".join(tokenize(row)) + "?"


def time_ask(video: Path, question: str, extra: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (user + system, all threads) of each cold ``python -m avqa.ask`` process."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "avqa.ask", str(video), question, *extra], cwd=ROOT,
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"avqa.ask failed:\n{proc.stderr}")
    return walls, cpus


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="cold runs per case")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    tmp = Path(tempfile.mkdtemp(prefix="avqa-bench-ask-"))
    try:
        clips = {s: make_clips(tmp / f"{s}s", s) for s in (10, 60)}
        cases = [("10 s clip", clips[10], [], 10.0),
                 ("10 s clip, --sheet", clips[10], ["--sheet", str(tmp / "sheet.png")], 10.0),
                 ("60 s clip", clips[60], [], 30.0),
                 ("60 s clip, --seconds 60", clips[60], ["--seconds", "60"], 30.0)]
        print(f"python -m avqa.ask, bundled checkpoint, {usable_cores()} CPU core(s), {a.repeats} cold run(s) each "
              f"(load average before: {os.getloadavg()[0]:.2f})")
        for name, (video, question), extra, target in cases:
            walls, cpus = time_ask(video, question, extra, a.repeats)
            print(f"  {name:<24} wall median {statistics.median(walls):5.2f} s (best {min(walls):5.2f}, worst "
                  f"{max(walls):5.2f}; target {target:.0f} s), CPU {statistics.median(cpus):5.2f} s   {question!r}")
        print(f"(load average after: {os.getloadavg()[0]:.2f}: other work on the machine lengthens the wall time, "
              f"and its threads' waiting for a core adds to the CPU time)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
