"""How long does avqa.evaluate take on a test set the size of MUSIC-AVQA-R (211,572 questions)?

    python benchmarks/bench_evaluate.py                 # 211,572 questions, 3 repeats
    python benchmarks/bench_evaluate.py --questions 9129 --free_text 1.0

Synthesises an annotation file of that many questions (the real templates' shape: every type, every
answer, a sixth of the rows without question_id as in v2.0) and a predictions file that answers each
one, a share of them in free text ("There are two.", "the left one"), then times the whole scoring
as the command line runs it, in this process: reading and validating the annotation file, reading the
predictions, the protocol checks, the normaliser, the table and the JSON and Markdown reports. The
CPU model and the number of cores are printed with the figure.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from avqa.annotations import INSTRUMENTS, NUMBERS, QUESTION_TYPES, question_key
from avqa.evaluate import main
from avqa.machine import cpu_model, usable_cores

# one template per kind of answer, as the real files phrase them
TEMPLATES = {
    "number": ("How many <Object> are in the entire video?", NUMBERS),
    "yes/no": ("Is the <Object> in the video always playing?", ("yes", "no")),
    "place": ("Where is the <FL> sounding instrument?", ("left", "right", "middle", "simultaneously")),
    "scene": ("Is this sound from the instrument in the video?", ("indoor", "outdoor")),
    "instrument": ("Which <Object> makes the sound <FL>?", INSTRUMENTS),
}
SAID = {"two": "There are two.", "left": "the left one", "yes": "Yes.", "no": "No, it isn't.",
        "more than ten": "More than 10", "acoustic_guitar": "acoustic guitar", "middle": "In the middle."}


def synthesise(n: int, free_text: float, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    rows, preds = [], {}
    kinds = list(TEMPLATES)
    for i in range(n):
        content, answers = TEMPLATES[kinds[i % len(kinds)]]
        values = []
        for tag in ("<Object>", "<FL>"):
            if tag in content:
                values.append(rng.choice(INSTRUMENTS) if tag == "<Object>" else rng.choice(("first", "last")))
        row = {"video_id": f"{rng.randrange(10**8):08d}", "type": json.dumps(list(QUESTION_TYPES[i % 9])),
               "question_content": content, "templ_values": json.dumps(values), "anser": rng.choice(answers)}
        if i % 6:
            row["question_id"] = i
        rows.append(row)
        guess = rng.choice(answers)
        preds[question_key(row)] = SAID.get(guess, guess) if rng.random() < free_text else guess
    ann, out = folder / "annotations.json", folder / "predictions.json"
    ann.write_text(json.dumps(rows))
    out.write_text(json.dumps(preds))
    return ann, out


def main_bench(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=211_572, help="questions (default: MUSIC-AVQA-R's test size)")
    p.add_argument("--free_text", type=float, default=0.3, help="share of predictions in free text (default 0.3)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the best and the median are printed")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ann, preds = synthesise(args.questions, args.free_text, Path(tmp))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                main([str(preds), "--annotations", str(ann), "--out", str(Path(tmp) / "eval")])
            times.append(time.perf_counter() - t0)
        overall = json.loads((Path(tmp) / "eval.json").read_text())["tables"][str(ann)]["Overall"]
    times.sort()
    print(f"CPU: {cpu_model()}, {usable_cores()} cores; Python {platform.python_version()}; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"scoring {args.questions:,} predictions ({args.free_text:.0%} free text): best {times[0]:.2f} s, "
          f"median {times[len(times) // 2]:.2f} s over {args.repeats} runs (overall accuracy {overall['accuracy']:.2f} %, "
          f"{overall['count']:,} questions)")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
