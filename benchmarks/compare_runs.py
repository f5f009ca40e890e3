"""Whether two runs of the same commands made the same things: checkpoints (every tensor of their
state_dict, the epoch, validation score and history), feature files (.npy, element for element), test
reports (their table and predictions), ladder tables, the release's .result/.acc files and the
attention sheets (byte for byte), the training logs' loss and accuracy lines (speeds masked) and the TensorBoard scalars (every
tag, step and value). Stamps and records that hold times or paths are left out.

    python benchmarks/compare_runs.py DIR_A DIR_B      # e.g. two clones' tiny_out/, or their parents

Prints one line per difference and a count of what was compared; exits 1 on any difference.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

SKIPPED = {".lock"}
SPEED = re.compile(r"[\d.]+ samples/s")


def log_lines(path: Path) -> list[str]:
    """A run log's lines of losses and accuracies, its speeds masked."""
    return [SPEED.sub("N samples/s", line) for line in path.read_text().splitlines()
            if line.startswith(("epoch ", "Train Epoch", "best val", "resumed"))]


def scalars(folder: Path) -> list[tuple]:
    """Every TensorBoard scalar under ``folder``: (tag, step, value), sorted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    found = []
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        found += [(tag, e.step, e.value) for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]
    return sorted(found)


def same_checkpoint(a: Path, b: Path) -> str | None:
    x, y = torch.load(a, map_location="cpu", weights_only=True), torch.load(b, map_location="cpu", weights_only=True)
    sx, sy = (x.get("state_dict", x), y.get("state_dict", y)) if isinstance(x, dict) else (x, y)
    if set(sx) != set(sy):
        return "other tensor names"
    bad = [k for k in sx if torch.is_tensor(sx[k]) and not torch.equal(sx[k], sy[k])]
    if bad:
        return f"tensors differ: {bad[:3]}"
    for key in ("model", "epoch", "val_accuracy", "history", "question_vocab", "answer_vocab", "best"):
        if isinstance(x, dict) and x.get(key) != y.get(key):
            return f"'{key}' differs"
    return None


def same_json(a: Path, b: Path) -> str | None:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    if not isinstance(x, dict):
        return None if x == y else "differs"
    if "predictions" in x or "table" in x:
        for key in ("model", "table", "predictions", "questions", "match_accuracy", "untrained_match_accuracy"):
            if x.get(key) != y.get(key):
                return f"'{key}' differs"
        return None
    if "rungs" in x:
        tables = lambda r: [(row["model"], row["table"], row["val_accuracy"], row["best_epoch"]) for row in r["rungs"]]  # noqa: E731
        return None if tables(x) == tables(y) and x["orderings"] == y["orderings"] else "rung tables differ"
    if "scores" in x or "table" in x:
        return None if x.get("scores", x.get("table")) == y.get("scores", y.get("table")) else "scores differ"
    return "skip"


def compare(a: Path, b: Path) -> tuple[list[str], dict[str, int]]:
    problems, counted = [], {}
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    for rel in sorted(files_a ^ files_b):
        if rel.suffix not in SKIPPED and not {"stamps", ".stages", "runs"} & set(rel.parts):
            problems.append(f"{rel}: only in {a if rel in files_a else b}")
    for rel in sorted(files_a & files_b):
        fa, fb = a / rel, b / rel
        if rel.suffix in SKIPPED or "stamps" in rel.parts or ".stages" in rel.parts or "runs" in rel.parts:
            continue
        if rel.suffix in (".pt", ".pth"):
            why, kind = same_checkpoint(fa, fb), "checkpoints"
        elif rel.suffix == ".npy":
            why, kind = (None if np.array_equal(np.load(fa), np.load(fb)) else "values differ"), "feature files"
        elif rel.suffix == ".json":
            why, kind = same_json(fa, fb), "reports"
            if why == "skip":
                continue
        elif rel.suffix == ".log":
            why, kind = (None if log_lines(fa) == log_lines(fb) else "loss or accuracy lines differ"), "logs"
        elif rel.suffix in (".result", ".acc", ".wav", ".mp4", ".jpg", ".png", ".txt"):
            why, kind = (None if fa.read_bytes() == fb.read_bytes() else "bytes differ"), "other files"
        else:
            continue
        counted[kind] = counted.get(kind, 0) + 1
        if why:
            problems.append(f"{rel}: {why}")
    for runs in sorted({p.parent for p in a.rglob("runs") if p.is_dir()} | ({a} if (a / "runs").is_dir() else set())):
        rel = runs.relative_to(a) / "runs"
        if (b / rel).is_dir():
            counted["TensorBoard folders"] = counted.get("TensorBoard folders", 0) + 1
            if scalars(a / rel) != scalars(b / rel):
                problems.append(f"{rel}: TensorBoard scalars differ")
    return problems, counted


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args(argv)
    problems, counted = compare(args.a, args.b)
    for line in problems:
        print(line)
    print(f"compared {', '.join(f'{n} {k}' for k, n in sorted(counted.items()))}: "
          f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
