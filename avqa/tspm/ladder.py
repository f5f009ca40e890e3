"""TSPM's ablation rungs on the ladder (python -m avqa.ladder --family tspm): one rung per module switched
off, then the full TSPM; its flags and the files each rung reads."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ladder_families import LadderFamily
from ..store import read_npy_header
from ..tasks.config import RunConfig
from ..utils import at_least, metadata_path
from .model import TOKEN_FRAMES
from .run import ABLATIONS, TSPMConfig, ablation_doc

# TSPM's feature flags: the folder each names under --data, as net_tspm's defaults name it under data/
TSPM_FEATURES = {flag: Path(getattr(TSPMConfig, flag)).relative_to("data") for flag in
                 ("audios_feat_dir", "visual_feat_dir", "visual_patch_dir", "qst_feat_dir", "qst_prompt_dir")}



class TSPMLadder(LadderFamily):
    name, title, out, heading = "tspm", "TSPM", "outputs/ladder_tspm", "TSPM's ablation rungs"
    rungs = {rung: label for rung, (label, _) in ABLATIONS.items()}
    flags = (*TSPM_FEATURES, "top_k", "token_frames")
    paper_note = "  (no paper column: the paper's TSPM ablation figures are not known to this project)"
    choice = "one rung per TSPM module switched off, then the full TSPM"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        t = parser.add_argument_group("TSPM's features and settings (--family tspm; the layout and shapes: "
                                      "docs/tspm.md; stand-ins: python -m avqa.tspm.standin --data DATA --out DATA/feats)")
        for flag, what in zip(TSPM_FEATURES, ("VGGish features, <video_id>.npy [T,128]",
                                              "CLIP frame features, <video_id>.npy [T,768]",
                                              "ToMe token features, <video_id>.npy [F,14,1024]",
                                              "CLIP text feature of each question, <question_id>.npy [768]",
                                              "CLIP text feature of each question's QA prompt, <question_id>.npy [768]")):
            t.add_argument(f"--{flag}", help=f"{what} (default: DATA/{TSPM_FEATURES[flag].as_posix()})")
        t.add_argument("--top_k", type=at_least(1), metavar="K",
                       help=f"seconds temporal selection keeps: at most T, and below T for a no_temp_selection rung "
                            f"that differs from tspm (default: the release's {TSPMConfig.top_k})")
        t.add_argument("--token_frames", choices=TOKEN_FRAMES,
                       help=f"which token frame a kept second reads, as net_tspm/main_train.py's flag "
                            f"(default: {TSPMConfig.token_frames})")

    def doc(self, rung: str) -> str:
        return ablation_doc(rung)

    def defaults(self, args: argparse.Namespace) -> None:
        for flag, folder in TSPM_FEATURES.items():
            setattr(args, flag, getattr(args, flag) or str(Path(args.data) / folder))
        args.top_k = TSPMConfig.top_k if args.top_k is None else args.top_k
        args.token_frames = args.token_frames or TSPMConfig.token_frames

    def recipe_flags(self, args: argparse.Namespace) -> list[str]:
        return super().recipe_flags(args) + ["--top_k", str(args.top_k), "--token_frames", args.token_frames]

    def reads(self, args: argparse.Namespace, rung: str) -> list[str]:
        # every rung's run checks all five folders (lengths, metadata), so each reads them all
        folders = [getattr(args, flag) for flag in TSPM_FEATURES]
        return [args.label_train, args.label_val, args.label_test, *folders, *map(metadata_path, folders)]

    def config(self, args: argparse.Namespace, rung: str, **settings) -> TSPMConfig:
        out, switch = Path(args.out), ABLATIONS[rung][1]
        return TSPMConfig(**{flag: getattr(args, flag) for flag in TSPM_FEATURES}, label_train=args.label_train,
                          label_val=args.label_val, label_test=args.label_test, top_k=args.top_k,
                          token_frames=args.token_frames, **({switch: False} if switch else {}),
                          model_save_dir=str(out / rung), checkpoint=rung, result_dir=str(out / rung),
                          tensorboard_dir=str(out / "runs"), device=args.device, amp=args.amp, quiet=args.quiet,
                          **settings)

    def run(self, cfg: RunConfig) -> int:
        from .run import run_config
        return run_config(cfg)

    def report_model(self, rung: str) -> str:
        return "tspm"

    def header(self, args: argparse.Namespace) -> dict:
        return {"family": self.name, "features": {flag: getattr(args, flag) for flag in TSPM_FEATURES},
                "recipe": self.recipe_flags(args)}

    def orderings(self, tables: dict[str, dict]) -> dict[str, dict]:
        """Whether the full TSPM is above each rung with a module off, overall (reported, not asserted)."""
        checks = {}
        for rung, (label, switch) in ABLATIONS.items():
            if switch and rung in tables and "tspm" in tables:
                full, ablated = tables["tspm"]["Overall"]["accuracy"], tables[rung]["Overall"]["accuracy"]
                checks[f"TSPM above {label} overall"] = {"holds": full > ablated, "values": [ablated, full]}
        return checks

    def check(self, args: argparse.Namespace) -> None:
        for flag in TSPM_FEATURES:
            if not Path(getattr(args, flag)).is_dir():
                raise SystemExit(f"--{flag} {getattr(args, flag)} not found: make stand-in features with python -m "
                                 f"avqa.tspm.standin --data {args.data} --out {Path(args.data) / 'feats'}, or point "
                                 f"--{flag} at TSPM's features (docs/tspm.md)")
        audio = next(Path(args.audios_feat_dir).glob("*.npy"), None)
        try:
            seconds = read_npy_header(audio).shape[0] if audio else None
        except (ValueError, OSError, IndexError):  # the run's own checks name a bad file
            seconds = None
        if seconds is None:
            return
        if args.top_k > seconds:  # every rung would stop at its run's own check; stop before any of them
            raise SystemExit(f"--top_k {args.top_k} is larger than the T={seconds} seconds per video of "
                             f"{args.audios_feat_dir}: pass --top_k {max(seconds - 1, 1)} or less")
        if args.top_k == seconds and "no_temp_selection" in args.rungs:
            print(f"ladder: --top_k {args.top_k} keeps all T={seconds} seconds of {args.audios_feat_dir}, so temporal "
                  f"selection selects nothing and no_temp_selection computes what tspm does; pass --top_k below "
                  f"{seconds} for a rung that differs", file=sys.stderr, flush=True)


LADDER_FAMILY = TSPMLadder()
