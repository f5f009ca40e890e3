"""How fast is the synthetic set made? Generates the default demo set into a temporary folder.

    python benchmarks/bench_generate.py                 # 480 clips of 10 s, all cores
    python benchmarks/bench_generate.py --num_clips 60
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from avqa.synthetic.generate import generate, parse_args
from avqa.machine import describe_machine, usable_cores


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_clips", type=int, default=480)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--workers", type=int, default=usable_cores(), help="parallel render processes")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    out = Path(tempfile.mkdtemp(prefix="avqa-bench-gen-"))
    try:
        args = parse_args(["--out", str(out), "--num_clips", str(a.num_clips), "--seconds", str(a.seconds),
                           "--workers", str(a.workers)])
        t0 = time.time()
        manifest = generate(args, log=lambda *_: None)
        dt = time.time() - t0
        qa = sum(s["qa_pairs"] for s in manifest["summary"].values())
        size = sum(f.stat().st_size for f in (out / "videos").iterdir()) / 2**20
        print(f"{a.num_clips} clips of {a.seconds} s ({qa} questions, {size:.0f} MiB of mp4) in {dt:.1f} s "
              f"with {a.workers} worker(s): {a.num_clips / dt:.2f} clips/s")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
