"""Where in time does QA-TIGER look? Its Gaussian experts' weights over the seconds, scored on a
synthetic set, where it is known when every instrument sounds.

For each test question that names exactly one instrument of its clip (the questions TSPM's selection
score takes, avqa.tspm.selection_score.named_questions), the score is the share of the weight the
experts give the seconds in which that instrument sounds (the weights sum to 1 over the seconds:
``QATiger(..., return_weights=True)``), for the audio experts and for the video experts. Three rows,
on the same questions:
- the trained checkpoint;
- the same model untrained (built with the seed of its training run, not trained);
- uniform weights, whose score is the share of the clip's seconds in which the instrument sounds.
The informative questions are those whose instrument sounds in some seconds but not all; on the
others every weighting scores the same. The same pass gives the test accuracy of the trained and the
untrained model over every test question, the untrained figure the main job's summary prints.

    python -m avqa.qatiger.time_score --model_save_dir net_qatiger/models/ --checkpoint qa-tiger \\
        --ground_truth data/ground_truth

takes QA-TIGER's test flags and writes ``<model_save_dir>/<checkpoint>_time.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..engine.runtime import Runtime, to_device
from ..tspm.selection_score import TestedPair, named_questions, score_args
from ..utils import atomic_write_text, progress, sha256, user_errors
from .run import FAMILY, QATigerConfig, build_parser

STREAMS = ("audio", "video")


@torch.no_grad()
def seconds_weights(model: torch.nn.Module, loader, rt: Runtime, quiet: bool) -> tuple[dict, float]:
    """Every question's weights over the seconds, {row: {"audio": [T], "video": [T]}}, and the model's accuracy
    (percent) on the questions of ``loader``."""
    model.eval()
    weights, right, total = {}, 0, 0
    for batch in progress(loader, desc="weights", unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            logits, w = model(batch["audio"], batch["video"], batch["patch"], batch["question"], return_weights=True)
        right += int((logits.argmax(1) == batch["label"]).sum())
        total += len(batch["label"])
        rows = batch["index"].tolist()
        for s in STREAMS:
            for row, values in zip(rows, w[s].float().cpu().tolist()):
                weights.setdefault(row, {})[s] = values
    return weights, 100.0 * right / max(total, 1)


def share(questions: list[dict], weights: dict, stream: str) -> float:
    """Mean share, in percent, of a question's ``stream`` weight that falls on the seconds its instrument sounds."""
    return 100.0 * float(np.mean([sum(weights[q["row"]][stream][t] for t in q["sounding"]) for q in questions]))


def time_table(questions: list[dict], trained: dict, untrained: dict) -> dict:
    """The three rows (audio and video experts each) on all scored questions and on the informative ones."""
    table = {}
    for name, subset in (("all", questions), ("informative", [q for q in questions if 0 < len(q["sounding"]) < q["T"]])):
        if not subset:
            continue
        table[name] = {"questions": len(subset),
                       **{f"{row}_{s}": share(subset, found, s) for row, found in (("trained", trained),
                                                                                   ("untrained", untrained))
                          for s in STREAMS},
                       "uniform": 100.0 * float(np.mean([len(q["sounding"]) / q["T"] for q in subset]))}
    return table


def spread(weights: dict) -> dict[str, float]:
    """How much the weights move with the question: per stream, the standard deviation over questions of each
    second's weight, averaged over the seconds (0: the same weights for every question)."""
    return {s: float(np.std([w[s] for w in weights.values()], axis=0).mean()) for s in STREAMS}


def format_time(table: dict) -> str:
    """The table as the score prints it: one line per question set, audio / video experts."""
    lines = [f"  {'':<12} {'':>9}   {'trained':>15}   {'untrained':>15}   {'uniform':>7}",
             f"  {'':<12} {'':>9}   {'audio':>7} {'video':>7}   {'audio':>7} {'video':>7}"]
    for name, r in table.items():
        lines.append(f"  {name:<12} {r['questions']:5d} qst   {r['trained_audio']:6.2f}% {r['trained_video']:6.2f}%   "
                     f"{r['untrained_audio']:6.2f}% {r['untrained_video']:6.2f}%   {r['uniform']:6.2f}%")
    return "\n".join(lines)


def format_spread(moves: dict[str, float]) -> str:
    return (f"  how the trained weights move with the question (standard deviation over the test questions, mean "
            f"over seconds; 0: the same for all): audio {moves['audio']:.4f}, video {moves['video']:.4f}")


def score_time(cfg: QATigerConfig, ground_truth: Path, out: Path) -> int:
    """Score the seconds' weights of cfg's checkpoint on cfg.label_test against ``ground_truth``; JSON to ``out``."""
    ground_truth, out = Path(ground_truth), Path(out)
    if not ground_truth.is_dir():
        raise SystemExit(f"--ground_truth {ground_truth} not found: the score needs the synthetic set's "
                         f"ground_truth/ folder (python -m avqa.synthetic writes it)")
    if cfg.pool != "experts":
        raise SystemExit(f"--pool {cfg.pool} pools without the Gaussian experts: there are no weights over the "
                         f"seconds to score; give a checkpoint trained with --pool experts")
    t = TestedPair.of(cfg, FAMILY, "qatiger")
    questions = named_questions(t.split.samples, ground_truth, cfg.label_test)
    ckpt, loader = t.checkpoint, t.loader()
    trained, accuracy = seconds_weights(t.trained, loader, t.runtime, cfg.quiet)
    untrained, untrained_accuracy = seconds_weights(t.untrained, loader, t.runtime, cfg.quiet)
    table = time_table(questions, trained, untrained)
    print(f"QA-TIGER's weights over the seconds against when the named instrument sounds, {cfg.label_test}, "
          f"checkpoint {ckpt}:")
    print(format_time(table))
    moves = spread(trained)
    print(format_spread(moves))
    print(f"test accuracy: trained {accuracy:.2f}%, the same model untrained {untrained_accuracy:.2f}%")
    atomic_write_text(out, json.dumps({"checkpoint": str(ckpt), "checkpoint_sha256": sha256(ckpt),
                                       "annotations": cfg.label_test, "table": table, "spread": moves,
                                       "accuracy": {"trained": accuracy, "untrained": untrained_accuracy}}, indent=1))
    print(f"results: {out}")
    return 0


def parse_args(argv: Sequence[str] | None) -> tuple[QATigerConfig, argparse.Namespace]:
    return score_args(build_parser(__doc__), argv,
                      lambda ns: QATigerConfig(**{**ns, "betas": tuple(ns["betas"])}, mode="test"), "time")


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    cfg, own = parse_args(argv)
    return score_time(cfg, own.ground_truth, own.out)


if __name__ == "__main__":
    sys.exit(main())
