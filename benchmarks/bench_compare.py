"""How long does comparing two predictions files take on a test set the size of MUSIC-AVQA-R (211,572 questions)?

    python benchmarks/bench_compare.py                  # 211,572 against 211,572, 3 repeats
    python benchmarks/bench_compare.py --questions 9129 --resamples 100000

Synthesises the annotation file and a predictions file as bench_evaluate.py does (a sixth of the rows without
question_id, 30 % of the answers in free text), a second predictions file with a tenth of the answers
changed, then times ``python -m avqa.evaluate A B --annotations FILE`` in this process: reading and
validating the annotation file, reading both predictions files, the protocol checks, the normaliser, the
paired bootstrap (10,000 resamples by default) and McNemar's test on every row, and the JSON and Markdown
reports. The machine is printed with the figure.
"""
import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from bench_evaluate import synthesise

from avqa.evaluate import main
from avqa.machine import describe_machine


def main_bench(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=211_572, help="questions (default: MUSIC-AVQA-R's test size)")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: the command's)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the best and the median are printed")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ann, a = synthesise(args.questions, 0.3, Path(tmp))
        preds = json.loads(a.read_text())
        rng = random.Random(1)
        for key in rng.sample(sorted(preds), len(preds) // 10):
            preds[key] = rng.choice(("yes", "no", "two", "left", "piano"))
        b = Path(tmp) / "predictions_b.json"
        b.write_text(json.dumps(preds))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                main([str(a), str(b), "--annotations", str(ann), "--resamples", str(args.resamples),
                      "--out", str(Path(tmp) / "compare")])
            times.append(time.perf_counter() - t0)
        overall = json.loads((Path(tmp) / "compare.json").read_text())["comparisons"][0]["rows"]["Overall"]
    times.sort()
    print(describe_machine())
    print(f"pairing {args.questions:,} predictions against {args.questions:,} ({args.resamples:,} resamples): best "
          f"{times[0]:.2f} s, median {times[len(times) // 2]:.2f} s over {args.repeats} runs (B - A "
          f"{overall['difference']:+.2f} points, 95% interval [{overall['interval'][0]:+.2f}, "
          f"{overall['interval'][1]:+.2f}], McNemar p {overall['p']:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
