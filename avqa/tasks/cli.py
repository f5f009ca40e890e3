"""The original scripts' command lines: each flag and its default, and the config they fill.

The scripts in grounding_gen/, net_grd_avst/ and net_grd_baseline/ only choose defaults; every
flag maps onto a field of avqa.tasks.config.RunConfig of the same name.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ..engine.denormals import FLUSH_CHOICES
from ..models import LADDER, rung_doc
from ..utils import EXIT_CODES, at_least
from .config import ONLY, RunConfig

MODEL_NAMES = {"AVQA_Fusion_Net": None, "baseline": "baseline", **{name: name for name in LADDER}}
LADDER_HELP = ("AVQA_Fusion_Net (= avst) is this script's model. The others are the rungs of the paper's ablation, "
               "bottom to top: same loop, recipe, checkpoint format and test report; only avst starts from "
               "--pretrained_grounding, the others from scratch.\n"
               + "\n".join(f"{name} ({label}): " + rung_doc(name).replace("\n", "\n    ")
                           for name, (label, _) in LADDER.items()))


# each script's --mode and --model choices, and --model's help
MODES = {"grounding": ["train", "val", "test"]}
MODELS = {"avst": ["AVQA_Fusion_Net", *LADDER], "baseline": ["AVQA_Fusion_Net", "baseline", "question_only"],
          "grounding": ["AVQA_AVatt_Grounding", "grounding"]}
MODEL_HELP = {"avst": LADDER_HELP}
OTHER_MODEL_HELP = "AVQA_Fusion_Net is this script's model; question_only is the question-only reference"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the line breaks a help text holds (the --model ladder) and wraps each line."""

    def _split_lines(self, text, width):
        split = super()._split_lines
        return [part for line in text.splitlines() for part in split(line, width)]

def build_parser(kind: str, description: str) -> argparse.ArgumentParser:
    """The original flags of each script, plus ours; defaults work from the repository root."""
    d = RunConfig.for_script(kind)
    p = argparse.ArgumentParser(description=description, epilog=EXIT_CODES, formatter_class=HelpFormatter)
    _data_flags(p, kind, d)
    _optimisation_flags(p, kind, d)
    _run_flags(p, kind, d)
    return p


def _data_flags(p: argparse.ArgumentParser, kind: str, d: RunConfig) -> None:
    """Annotations, feature folders and what is read of them."""
    g = p.add_argument_group("data")
    g.add_argument("--audio_dir", default=d.audio_dir, help="VGGish features, <video_id>.npy [T,128]")
    g.add_argument("--video_res14x14_dir", default=d.video_res14x14_dir,
                   help="ResNet-18 14x14 features, <video_id>.npy [T,512,14,14]")
    if kind in ONLY["video_dir"]:
        g.add_argument("--video_dir", default=d.video_dir,
                       help="original flag (frame folders); unused: the frozen ResNet's features are read "
                            "from --video_res14x14_dir instead")
        g.add_argument("--st_dir", default=d.st_dir, help="original flag; unused")
    annotation_flags(g, d, "train annotations; the vocabularies are built from it (test mode too)")
    g.add_argument("--segments", type=at_least(1), default=d.segments,
                   help="seconds the model sees per video: every (T // segments)-th second ([::6] for T=60)")
    g.add_argument("--no_feature_check", action="store_true",
                   help="skip the NaN/inf scan of feature files (shapes are always checked)")


def optimiser_flags(o: argparse._ArgumentGroup, d: RunConfig) -> None:
    """The loop's recipe flags every training script has (--seed follows a script's own flags)."""
    o.add_argument("--batch-size", dest="batch_size", type=at_least(1), default=d.batch_size, metavar="N",
                   help="global batch size (split across processes under torchrun)")
    o.add_argument("--epochs", type=at_least(1), default=d.epochs, metavar="N",
                   help="epochs to train (with --resume: the total, counting the epochs already done)")
    o.add_argument("--lr", type=at_least(0.0, float), default=d.lr, metavar="LR", help="Adam learning rate")
    o.add_argument("--lr_step", type=at_least(1), default=d.lr_step, help="StepLR step size in epochs")
    o.add_argument("--lr_gamma", type=at_least(0.0, float, above=True), default=d.lr_gamma, help="StepLR decay factor")


def annotation_flags(g: argparse._ArgumentGroup, d: RunConfig, train_help: str) -> None:
    """--label_train, --label_val and --label_test, every QA script's annotation files."""
    g.add_argument("--label_train", default=d.label_train, help=train_help)
    g.add_argument("--label_val", default=d.label_val, help="validation annotations (model selection)")
    g.add_argument("--label_test", default=d.label_test, help="test annotations")


def _optimisation_flags(p: argparse.ArgumentParser, kind: str, d: RunConfig) -> None:
    """The recipe: the original's values by default."""
    o = p.add_argument_group("optimisation (defaults are the original recipe)")
    optimiser_flags(o, d)
    if kind in ONLY["match_weight"]:
        o.add_argument("--match_weight", type=at_least(0.0, float), default=d.match_weight, help="weight of the match loss")
        o.add_argument("--pretrained_grounding", default=d.pretrained_grounding,
                       help="grounding checkpoint whose fc_a1, fc_a2, fc_gl, fc1..fc4 start AVST; 'none' to start "
                            "from scratch")
    o.add_argument("--seed", type=int, default=d.seed, metavar="S", help="random seed")


def _run_flags(p: argparse.ArgumentParser, kind: str, d: RunConfig) -> None:
    """Mode, model, where checkpoints go, device and logging."""
    r = p.add_argument_group("run")
    r.add_argument("--mode", default=d.mode, choices=MODES.get(kind, ["train", "test"]),
                   help="train, or test a saved checkpoint")
    r.add_argument("--model", default=d.model, choices=MODELS[kind], help=MODEL_HELP.get(kind, OTHER_MODEL_HELP))
    engine_flags(r, d)


def engine_flags(r: argparse._ArgumentGroup, d: RunConfig) -> None:
    """Where checkpoints go, resuming, device, precision, loaders and logging: every QA script's run flags."""
    r.add_argument("--model_save_dir", default=d.model_save_dir, help="folder of checkpoints and logs")
    r.add_argument("--checkpoint", default=d.checkpoint, help="checkpoint name (<model_save_dir>/<checkpoint>.pt)")
    r.add_argument("--resume", action="store_true",
                   help="continue from <checkpoint>_last.pt if it exists; refused when the model, vocabularies, data "
                        "files or recipe flags differ from those it was started with")
    r.add_argument("--overwrite", action="store_true",
                   help="train mode: replace the checkpoints already at <model_save_dir>/<checkpoint>*.pt (without "
                        "it, a run never writes over a checkpoint it did not make: it stops and says what is there)")
    r.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N (default: cuda when present)")
    r.add_argument("--gpu", default=d.gpu, help="original flag: sets CUDA_VISIBLE_DEVICES; prefer --device")
    r.add_argument("--amp", action="store_true",
                   help="mixed precision: bfloat16 (or float16 with loss scaling) on CUDA, bfloat16 on CPU")
    r.add_argument("--num_workers", type=at_least(0), default=d.num_workers,
                   help="batches prepared ahead in a background thread (0: prepare each batch when needed)")
    r.add_argument("--eval_batch_size", type=at_least(1), default=d.eval_batch_size, help="batch size of validation and test")
    r.add_argument("--log-interval", dest="log_interval", type=at_least(1), default=d.log_interval, metavar="N",
                   help="batches between log lines")
    r.add_argument("--tensorboard_dir", default=d.tensorboard_dir, help="TensorBoard folder ('' to turn off)")
    r.add_argument("--results", default=d.results,
                   help="test mode: where the JSON report goes (default: <model_save_dir>/<checkpoint>_<split>.json)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")


def flush_flag(r: argparse._ArgumentGroup, d, why: str) -> None:
    """--flush_denormals (avqa.engine.denormals) of a family whose training slows on subnormal floats; ``why``:
    how its training makes them."""
    r.add_argument("--flush_denormals", nargs="?", const="on", choices=FLUSH_CHOICES, default=d.flush_denormals,
                   help=f"on: compute with subnormal floats (below 1.2e-38) flushed to zero in every thread; {why}. "
                        "It changes the last bits, so the weights differ from a "
                        "run with off. auto (default): on where the CPU is an Intel one (vendor GenuineIntel), off "
                        "elsewhere. The bare flag means on. The checkpoint records what the run used (docs/speed.md)")


def resolve_model(kind: str, args) -> str:
    """The model a run trains: --model's name (AVQA_Fusion_Net is the script's own model, ``kind``)."""
    name = MODEL_NAMES[args.model]
    return name or kind


def parse(kind: str, argv: Sequence[str] | None, description: str = "") -> RunConfig:
    """The config of a script's command line (``kind``: avst, baseline or grounding)."""
    return RunConfig.from_flags(vars(build_parser(kind, description).parse_args(argv)), kind)
