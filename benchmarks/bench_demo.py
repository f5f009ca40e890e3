"""How long does the demo page take to answer, cold and warm?

    python benchmarks/bench_demo.py                 # 3 clips of 10 s, 3 questions each
    python benchmarks/bench_demo.py --clips 5 --questions 4

Generates clips with ``python -m avqa.synthetic`` (the default set's picture and sound: 320x240 at
25 fps, 10 s) into a temporary folder, assembles the synthetic VGGish the bundled checkpoint's
features were made with there (when it is not already at data/weights/), starts the demo's server in
this process on a free port with the bundled checkpoint, and asks over HTTP, as the page does:

- **model loaded**: the checkpoint, the vocabularies and both backbones, once per server;
- **cold**: the first question on a clip (decoding it, VGGish and ResNet-18 on its seconds, the
  answer, and the page's pictures: each second's heat map, alone and over its frame);
- **warm**: the next questions on the same clip (its features and frames are kept: the answer and
  the pictures only).

Each figure is wall-clock seconds, median with the best and the worst, and the machine line; the
load average is printed with them, as other work on the machine lengthens every figure.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from avqa.demo import Demo, DemoServer
from avqa.features.pretrain import BUNDLED_VGGISH, DEFAULT_OUT, assemble_vggish
from avqa.machine import describe_machine, usable_cores


def make_clips(out: Path, clips: int) -> None:
    """``clips`` synthetic 10 s clips of the default picture and sound, and their annotation files."""
    subprocess.run([sys.executable, "-m", "avqa.synthetic", "--out", str(out / "data"), "--num_clips", str(clips),
                    "--seconds", "10", "--seed", "11"], cwd=ROOT, check=True, capture_output=True)


def ask(url: str, clip: str, question: str) -> float:
    body = json.dumps({"clip": clip, "question": question, "model": "m0"}).encode()
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url + "api/ask", body), timeout=300) as reply:
        answer = json.loads(reply.read())
    elapsed = time.perf_counter() - t0
    if "answer" not in answer:
        raise SystemExit(f"the demo did not answer: {answer}")
    return elapsed


def line(name: str, times: list[float]) -> str:
    return (f"  {name:<28} median {statistics.median(times):5.2f} s (best {min(times):5.2f}, worst {max(times):5.2f}; "
            f"{len(times)} question(s))")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=3, help="clips asked about (one cold question each)")
    p.add_argument("--questions", type=int, default=3, help="questions per clip (the first cold, the rest warm)")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    tmp = Path(tempfile.mkdtemp(prefix="avqa-bench-demo-"))
    here = os.getcwd()
    try:
        make_clips(tmp, a.clips)
        vggish = ROOT / DEFAULT_OUT["vggish"]
        if not vggish.is_file():  # the bundled checkpoint finds it by sha256, from the working folder too
            assemble_vggish(BUNDLED_VGGISH, tmp / DEFAULT_OUT["vggish"])
        os.chdir(tmp)
        print(f"python -m avqa.demo's server, bundled checkpoint, {usable_cores()} CPU core(s) (load average before: "
              f"{os.getloadavg()[0]:.2f})", flush=True)
        t0 = time.perf_counter()
        demo = Demo(Path("data"), Path("no-outputs"))
        demo.warm("m0")
        loaded = time.perf_counter() - t0
        server = DemoServer(("127.0.0.1", 0), demo, quiet=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cold, warm = [], []
        try:
            for clip in list(demo.clips.values())[:a.clips]:
                for k, question in enumerate(clip.questions[:a.questions]):
                    (warm if k else cold).append(ask(server.url, clip.key, question))
        finally:
            server.shutdown()
            server.server_close()
            demo.close()
        print(f"  {'model loaded':<28} {loaded:5.2f} s")
        print(line("cold (first on a clip)", cold))
        print(line("warm (next on the clip)", warm))
        print(f"(load average after: {os.getloadavg()[0]:.2f})")
    finally:
        os.chdir(here)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
