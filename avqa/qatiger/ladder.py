"""QA-TIGER's ablation rungs on the ladder (python -m avqa.ladder --family qatiger): no question-aware
fusion, no patch selector, mean pooling instead of the Gaussian experts, 3 experts instead of 7, then
the full model; its flags and the files each rung reads. The rungs train with the ladder's recipe
and the demo recipe's model settings (avqa.qatiger.family.RECIPES), d and the experts' pairing."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..ladder_families import LadderFamily
from ..tasks.config import RunConfig
from ..utils import metadata_path
from .breakdown_config import patch_width
from .run import ABLATIONS, QATigerConfig
from .standin import FOLDERS, TEXT_ENCODER

# QA-TIGER's feature flags: the folder each names under --data (the release's layout, avqa.qatiger.standin)
QATIGER_FEATURES = {"audio_feat": Path("feats") / FOLDERS["audio"], "video_feat": Path("feats") / FOLDERS["frames"],
                    "patch_feat": Path("feats") / FOLDERS["tokens"]}
MODEL_SETTINGS = ("d_model", "release_pairing")  # what a rung takes from the demo recipe besides the ladder's recipe


def demo_recipe():
    """The demo recipe of QA-TIGER's registry entry (a QATigerRecipe)."""
    from .. import registry
    return registry.entry("qatiger").recipes["demo"]["qatiger"]


class QATigerLadder(LadderFamily):
    name, title, out, heading = "qatiger", "QA-TIGER", "outputs/ladder_qatiger", "QA-TIGER's ablation rungs"
    rungs = {rung: label for rung, (label, _, _) in ABLATIONS.items()}
    flags = (*QATIGER_FEATURES, "clip_weights")
    paper_note = "  (no paper column: the paper's ablations are on MUSIC-AVQA, not on this set)"
    choice = "QA-TIGER without question-aware fusion, without the patch selector, with mean pooling, with 3 experts, " \
             "then the full model"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        t = parser.add_argument_group("QA-TIGER's features (--family qatiger; the layout: docs/qatiger.md; stand-ins: "
                                      "python -m avqa.qatiger.standin --data DATA)")
        for flag, what in zip(QATIGER_FEATURES, ("VGGish features, <video_id>.npy [T,128]",
                                                 "CLIP frame features, <video_id>.npy [T,768]",
                                                 "ToMe tokens of every second, <video_id>.npy [T,14,D]")):
            t.add_argument(f"--{flag}", help=f"{what} (default: DATA/{QATIGER_FEATURES[flag].as_posix()})")
        t.add_argument("--clip_weights", metavar="PATH",
                       help="the frozen question encoder's CLIP file (default: the synthetic-world stand-in, "
                            "feat_script/weights/clip_synthetic.pt)")

    def doc(self, rung: str) -> str:
        label, what, _ = ABLATIONS[rung]
        return f"{label}: {what}"

    def defaults(self, args: argparse.Namespace) -> None:
        for flag, folder in QATIGER_FEATURES.items():
            setattr(args, flag, getattr(args, flag) or str(Path(args.data) / folder))
        args.clip_weights = args.clip_weights or str(TEXT_ENCODER)

    def recipe_flags(self, args: argparse.Namespace) -> list[str]:
        r = demo_recipe()
        return super().recipe_flags(args) + ["--d_model", str(r.d_model),
                                             "--release_pairing" if r.release_pairing else "--no-release_pairing"]

    def reads(self, args: argparse.Namespace, rung: str) -> list[str]:
        folders = [getattr(args, flag) for flag in QATIGER_FEATURES]
        return [args.label_train, args.label_val, args.label_test, args.clip_weights, *folders,
                *map(metadata_path, folders)]

    def config(self, args: argparse.Namespace, rung: str, **settings) -> QATigerConfig:
        out, r = Path(args.out), demo_recipe()
        return QATigerConfig(**{flag: getattr(args, flag) for flag in QATIGER_FEATURES}, clip_weights=args.clip_weights,
                             label_train=args.label_train, label_val=args.label_val, label_test=args.label_test,
                             **patch_width(args.patch_feat), **{k: getattr(r, k) for k in MODEL_SETTINGS},
                             **ABLATIONS[rung][2], model_save_dir=str(out / rung), checkpoint=rung,
                             tensorboard_dir=str(out / "runs"), device=args.device, amp=args.amp, quiet=args.quiet,
                             **settings)

    def run(self, cfg: RunConfig) -> int:
        from .run import run_config
        return run_config(cfg)

    def report_model(self, rung: str) -> str:
        return "qatiger"

    def header(self, args: argparse.Namespace) -> dict:
        return {"family": self.name, "features": {flag: getattr(args, flag) for flag in QATIGER_FEATURES},
                "clip_weights": args.clip_weights, "recipe": self.recipe_flags(args)}

    def orderings(self, tables: dict[str, dict]) -> dict[str, dict]:
        """Whether the full model is above each rung, overall (reported, not asserted)."""
        checks = {}
        for rung, (label, _, switch) in ABLATIONS.items():
            if switch and rung in tables and "qatiger" in tables:
                full, ablated = tables["qatiger"]["Overall"]["accuracy"], tables[rung]["Overall"]["accuracy"]
                checks[f"QA-TIGER above {label} overall"] = {"holds": full > ablated, "values": [ablated, full]}
        return checks

    def check(self, args: argparse.Namespace) -> None:
        for flag in QATIGER_FEATURES:
            if not Path(getattr(args, flag)).is_dir():
                raise SystemExit(f"--{flag} {getattr(args, flag)} not found: make QA-TIGER's stand-in features with "
                                 f"python -m avqa.qatiger.standin --data {args.data}, or point --{flag} at its "
                                 f"features (docs/qatiger.md)")
        if not Path(args.clip_weights).is_file():
            raise SystemExit(f"--clip_weights {args.clip_weights} not found: make the stand-in with python -m "
                             f"avqa.features.pretrain clip, or give OpenAI's ViT-L-14-336px.pt")


LADDER_FAMILY = QATigerLadder()
