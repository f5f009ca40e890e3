"""Does TSPM keep the seconds the question is about? Scored on the synthetic set, where it is known
when every instrument sounds.

For each test question that names exactly one instrument (its template values hold one instrument
class of its clip), the score is the share of TSPM's kept seconds in which that instrument sounds.
Three rows, on the same questions:
- the trained checkpoint;
- the same model untrained (built with the seed of its training run, not trained);
- a random choice of k seconds, whose expected score is the share of the clip's seconds in which
  the instrument sounds (computed exactly, not sampled).
The informative questions are those whose instrument sounds in some seconds but not all. On the
others every choice scores the same.

    python -m avqa.tspm.selection_score --top_k 3 --model_save_dir net_tspm/models/ \\
        --ground_truth data/ground_truth

takes TSPM's test flags (feature folders, --label_test, --checkpoint, the switches) and writes
``<model_save_dir>/<checkpoint>_selection.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .. import checkpoint
from ..annotations import fillers
from ..data import QASplit
from ..engine.runtime import Runtime, make_loader, to_device
from ..tasks.config import RunConfig
from ..tasks.qa import Family
from ..utils import atomic_write_text, progress, sha256, user_errors
from .run import FAMILY, TSPMConfig, build_parser


def sounding_seconds(truth: dict, instrument: str) -> set[int] | None:
    """The seconds in which an instrument of this class is heard; None when the clip has none of it."""
    found = [i for i in truth["instruments"] if i["class"] == instrument]
    if not found:
        return None
    T = int(truth["seconds"])
    return {s for i in found if i["audible"] for a, b in i["playing"] for s in range(max(0, a), min(b, T))}


def named_instrument(sample: dict, truth: dict) -> str | None:
    """The one instrument class of the clip that the question names, or None (none, or several)."""
    classes = {i["class"] for i in truth["instruments"]}
    named = {v for v in fillers(sample) if v in classes}
    return named.pop() if len(named) == 1 else None


def named_questions(samples: list[dict], ground_truth: Path, label_test: str) -> list[dict]:
    """The questions of ``samples`` (rows of --label_test) that name one instrument of their clip which sounds in
    it: {"row", "instrument", "sounding" (its seconds), "T"} each, from the set's ``ground_truth`` folder."""
    questions = []
    for row, sample in enumerate(samples):
        path = Path(ground_truth) / f"{sample['video_id']}.json"
        if not path.is_file():
            raise SystemExit(f"{path} not found: --ground_truth must be the folder of the set --label_test belongs to")
        truth = json.loads(path.read_text())
        instrument = named_instrument(sample, truth)
        sounding = sounding_seconds(truth, instrument) if instrument else None
        if sounding:
            questions.append({"row": row, "instrument": instrument, "sounding": sounding, "T": int(truth["seconds"])})
    if not questions:
        raise SystemExit(f"no question of {label_test} names one instrument that sounds in its clip: nothing to score")
    return questions


@dataclass
class TestedPair:
    """A checkpoint's model and the same model untrained (built with its training run's seed), on the device of
    ``cfg``, with cfg.label_test's split: what a score of a trained model beside its untrained self reads."""

    cfg: RunConfig
    family: Family
    split: QASplit
    checkpoint: Path
    trained: torch.nn.Module
    untrained: torch.nn.Module
    runtime: Runtime

    @classmethod
    def of(cls, cfg: RunConfig, family: Family, model_kind: str) -> "TestedPair":
        vocab = family.vocab(cfg, family.split(cfg.label_train))
        split = family.split(cfg.label_test, vocab)
        ckpt = checkpoint.trained_path(Path(cfg.model_save_dir), cfg.checkpoint, cfg.script)
        model = family.build(cfg, vocab)
        try:
            meta = checkpoint.load_trained_state(ckpt, model_kind, model, vocab)
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(str(e)) from None
        fresh = checkpoint.untrained(meta, lambda: family.build(cfg, vocab))
        rt = Runtime(cfg)
        return cls(cfg, family, split, ckpt, model.to(rt.device), fresh.to(rt.device), rt)

    def loader(self):
        """The split's batches in order (its feature files checked first)."""
        c = self.cfg
        return make_loader(self.family.open_inputs(c, self.split.samples).dataset(self.split, False, c.seed),
                           c.eval_batch_size, False, self.runtime, c.num_workers, c.seed)


@torch.no_grad()
def kept_seconds(model: torch.nn.Module, loader, rt: Runtime, quiet: bool) -> dict[int, list[int]]:
    """The kept seconds of every question of ``loader``, by row of its annotation file."""
    model.eval()
    kept: dict[int, list[int]] = {}
    for batch in progress(loader, desc="selection", unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            _, k = model(batch["audio"], batch["visual"], batch["tokens"], batch["question"], batch["prompt"],
                         return_kept=True)
        for row, seconds in zip(batch["index"].tolist(), k.cpu().tolist()):
            kept[row] = seconds
    return kept


def score(questions: list[dict], kept: dict[int, list[int]]) -> float:
    """Mean share, in percent, of a question's kept seconds in which its instrument sounds."""
    return 100.0 * float(np.mean([len(set(kept[q["row"]]) & q["sounding"]) / len(kept[q["row"]])
                                  for q in questions]))


def selection_table(questions: list[dict], trained: dict, untrained: dict) -> dict:
    """The three rows on all scored questions and on the informative ones."""
    table = {}
    for name, subset in (("all", questions), ("informative", [q for q in questions if 0 < len(q["sounding"]) < q["T"]])):
        if not subset:
            continue
        table[name] = {"questions": len(subset), "trained": score(subset, trained),
                       "untrained": score(subset, untrained),
                       "random": 100.0 * float(np.mean([len(q["sounding"]) / q["T"] for q in subset]))}
    return table


def format_selection(table: dict) -> str:
    """The table's rows as the score prints them."""
    return "\n".join(f"  {name:<12} {r['questions']:5d} questions: trained {r['trained']:6.2f}%  untrained "
                     f"{r['untrained']:6.2f}%  random k seconds {r['random']:6.2f}%" for name, r in table.items())


def score_args(p: argparse.ArgumentParser, argv: Sequence[str] | None, make: Callable[[dict], RunConfig],
               suffix: str) -> tuple[RunConfig, argparse.Namespace]:
    """A score's command line: a family's test flags (``p``; ``make`` turns them into its config) and the score's
    own --ground_truth and --out (default MODEL_SAVE_DIR/CHECKPOINT_<suffix>.json)."""
    extra = p.add_argument_group(f"{suffix} score")
    extra.add_argument("--ground_truth", default=None,
                       help="the synthetic set's ground_truth/ folder (default: beside --label_test's json/ folder)")
    extra.add_argument("--out", default=None, help=f"the JSON written (default: MODEL_SAVE_DIR/CHECKPOINT_{suffix}.json)")
    ns = vars(p.parse_args(argv))
    own = argparse.Namespace(ground_truth=ns.pop("ground_truth"), out=ns.pop("out"))
    cfg = make(ns)
    own.ground_truth = Path(own.ground_truth or Path(cfg.label_test).resolve().parent.parent / "ground_truth")
    own.out = Path(own.out or Path(cfg.model_save_dir) / f"{cfg.checkpoint}_{suffix}.json")
    return cfg, own


def parse_args(argv: Sequence[str] | None) -> tuple[TSPMConfig, argparse.Namespace]:
    return score_args(build_parser(__doc__), argv, lambda ns: TSPMConfig(**ns, mode="test"), "selection")


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    cfg, own = parse_args(argv)
    return score_selection(cfg, own.ground_truth, own.out)


def score_selection(cfg: TSPMConfig, ground_truth: Path, out: Path) -> int:
    """Score the kept seconds of cfg's checkpoint on cfg.label_test against ``ground_truth``; the JSON goes to ``out``."""
    ground_truth, out = Path(ground_truth), Path(out)
    if not ground_truth.is_dir():
        raise SystemExit(f"--ground_truth {ground_truth} not found: the score needs the synthetic set's "
                         f"ground_truth/ folder (python -m avqa.synthetic writes it)")
    if not cfg.Temp_Selection:
        raise SystemExit("--no-Temp_Selection keeps every second: there is no selection to score")
    t = TestedPair.of(cfg, FAMILY, "tspm")
    questions = named_questions(t.split.samples, ground_truth, cfg.label_test)
    ckpt, rt, loader = t.checkpoint, t.runtime, t.loader()
    trained = kept_seconds(t.trained, loader, rt, cfg.quiet)
    untrained = kept_seconds(t.untrained, loader, rt, cfg.quiet)
    table = selection_table(questions, trained, untrained)
    print(f"TSPM's kept seconds (--top_k {cfg.top_k}) against when the named instrument sounds, "
          f"{cfg.label_test}, checkpoint {ckpt}:")
    print(format_selection(table))
    atomic_write_text(out, json.dumps({"checkpoint": str(ckpt), "checkpoint_sha256": sha256(ckpt),
                                           "annotations": cfg.label_test, "top_k": cfg.top_k,
                                           "token_frames": cfg.token_frames, "table": table}, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
