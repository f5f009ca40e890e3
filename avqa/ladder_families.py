"""The ladder's model families (python -m avqa.ladder --family): each family's rungs, bottom to top with
the full model last, how a rung's run is configured and run, which files it reads, which orderings
are checked, and the paper's figures where this project knows them (AVST's; TSPM's are not known)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import checkpoint
from .models import LADDER, rung_doc
from .store import read_npy_header
from .tasks.config import RunConfig
from .tspm.run import ABLATIONS, TSPMConfig, ablation_doc
from .utils import metadata_path

# The paper's overall test accuracy of each rung (original json), and its AVST row per type.
PAPER_OVERALL = {"question_only": 54.09, "aq": 64.26, "vq": 65.28, "avq": 67.72, "avq_tg": 70.27, "avst": 71.52}
PAPER_AVST = {"Audio Counting": 78.18, "Audio Comparative": 67.05, "Audio Avg": 74.06,
              "Visual Counting": 71.56, "Visual Location": 76.38, "Visual Avg": 74.00,
              "AV Existential": 81.81, "AV Location": 64.51, "AV Counting": 70.80, "AV Comparative": 66.01,
              "AV Temporal": 63.23, "AV Avg": 69.54, "Overall": 71.52}
# the paper's steps up the ladder (A+Q and V+Q are two ways up from Q; each gains overall)
PAPER_ORDER = [("question_only", "aq"), ("question_only", "vq"), ("aq", "avq"), ("vq", "avq"), ("avq", "avq_tg"),
               ("avq_tg", "avst")]
# TSPM's feature flags: the folder each names under --data, as net_tspm's defaults name it under data/
TSPM_FEATURES = {flag: Path(getattr(TSPMConfig, flag)).relative_to("data") for flag in
                 ("audios_feat_dir", "visual_feat_dir", "visual_patch_dir", "qst_feat_dir", "qst_prompt_dir")}


class LadderFamily:
    """What the ladder knows of one model family: its rungs (bottom to top, the full model last), how a
    rung's run is configured and run, what it reads, and the paper's figures (None: not known)."""

    name: str
    title: str
    heading: str                   # what the table and the plot are titled
    rungs: dict[str, str]          # rung -> label
    out: str                       # the default --out
    flags: tuple[str, ...]         # the ladder flags only this family has
    paper_overall: dict[str, float] | None = None
    paper_top: dict[str, float] | None = None
    paper_note: str = ""           # the table's last line
    paper_source: str = ""

    @property
    def top(self) -> str:
        return list(self.rungs)[-1]

    def doc(self, rung: str) -> str:
        """The two lines that say what a rung computes."""
        raise NotImplementedError

    def defaults(self, args: argparse.Namespace) -> None:
        """Fill the family's flags left unset (their defaults depend on --data)."""

    def settings(self, args: argparse.Namespace, rung: str) -> dict:
        """The settings a rung's result depends on besides the files it reads (its stamp's config)."""
        return {"rung": rung, "recipe": self.recipe_flags(args), "amp": args.amp}

    def recipe_flags(self, args: argparse.Namespace) -> list[str]:
        return ["--epochs", str(args.epochs), "--lr", str(args.lr), "--lr_step", str(args.lr_step),
                "--batch-size", str(args.batch_size), "--seed", str(args.seed)]

    def training(self, args: argparse.Namespace, rung: str) -> dict:
        """The run-config fields only training takes."""
        return dict(epochs=args.epochs, lr=args.lr, lr_step=args.lr_step, batch_size=args.batch_size, seed=args.seed)

    def reads(self, args: argparse.Namespace, rung: str) -> list[str]:
        """Every file and folder whose change retrains a rung."""
        raise NotImplementedError

    def config(self, args: argparse.Namespace, rung: str, **settings) -> RunConfig:
        """The config of a rung's training or test: the family's script defaults, the ladder's files, ``settings``."""
        raise NotImplementedError

    def run(self, cfg: RunConfig) -> int:
        raise NotImplementedError

    def report_model(self, rung: str) -> str:
        """The model a rung's test report names."""
        return rung

    def header(self, args: argparse.Namespace) -> dict:
        """ladder.json's record of the family's inputs and recipe."""
        raise NotImplementedError

    def orderings(self, tables: dict[str, dict]) -> dict[str, dict]:
        raise NotImplementedError

    def check(self, args: argparse.Namespace) -> None:
        """Stop, naming the flag and the fix, when an input the rungs need is missing."""


class AVSTLadder(LadderFamily):
    name, title, out, heading = "avst", "AVST", "outputs/ladder", "the ablation ladder"
    rungs = {rung: label for rung, (label, _) in LADDER.items()}
    flags = ("audio_dir", "video_res14x14_dir", "pretrained_grounding")
    paper_overall, paper_top = PAPER_OVERALL, PAPER_AVST
    paper_note = "  (paper: real MUSIC-AVQA, original json; it gives each rung's overall and AVST's row per type)"
    paper_source = "the paper's ablation (overall) and AVST row, real MUSIC-AVQA, original json"
    main_jobs = checkpoint.trained_path("outputs/grounding", "main_grounding_gen", "grounding").as_posix()

    def doc(self, rung: str) -> str:
        return rung_doc(rung)

    def defaults(self, args: argparse.Namespace) -> None:
        d = Path(args.data)
        args.audio_dir = args.audio_dir or str(d / "feats" / "vggish")
        args.video_res14x14_dir = args.video_res14x14_dir or str(d / "feats" / "res18_14x14")
        args.pretrained_grounding = args.pretrained_grounding or self.main_jobs

    def settings(self, args: argparse.Namespace, rung: str) -> dict:
        config = super().settings(args, rung)
        if rung == "avst":
            config["pretrained_grounding"] = args.pretrained_grounding != "none"
        return config

    def training(self, args: argparse.Namespace, rung: str) -> dict:
        recipe = super().training(args, rung)
        if rung == "avst":
            recipe["pretrained_grounding"] = args.pretrained_grounding
        return recipe

    def reads(self, args: argparse.Namespace, rung: str) -> list[str]:
        cls = LADDER[rung][1]
        paths = [args.label_train, args.label_val, args.label_test]
        for folder, used in ((args.audio_dir, cls.uses_audio), (args.video_res14x14_dir, cls.uses_visual)):
            if used:
                paths += [folder, metadata_path(folder)]
        if rung == "avst" and args.pretrained_grounding != "none":
            paths.append(args.pretrained_grounding)
        return paths

    def config(self, args: argparse.Namespace, rung: str, **settings) -> RunConfig:
        out = Path(args.out)
        return RunConfig.for_script(
            "avst", audio_dir=args.audio_dir, video_res14x14_dir=args.video_res14x14_dir, label_train=args.label_train,
            label_val=args.label_val, label_test=args.label_test, model=rung, model_save_dir=str(out / rung),
            checkpoint=rung, tensorboard_dir=str(out / "runs"), device=args.device, amp=args.amp, quiet=args.quiet,
            **settings)

    def run(self, cfg: RunConfig) -> int:
        from .tasks import qa
        return qa.run(cfg)

    def header(self, args: argparse.Namespace) -> dict:
        return {"features": {"audio": args.audio_dir, "visual": args.video_res14x14_dir},
                "recipe": self.recipe_flags(args), "pretrained_grounding": args.pretrained_grounding}

    def orderings(self, tables: dict[str, dict]) -> dict[str, dict]:
        """Which of the paper's orderings hold on these tables (only those whose rungs were run)."""
        def acc(rung, row):
            return tables[rung][row]["accuracy"]

        checks = {}
        for rung, row, name in (("aq", "Audio Avg", "A+Q above Q on the audio questions"),
                                ("vq", "Visual Avg", "V+Q above Q on the visual questions")):
            if rung in tables and "question_only" in tables and None not in (acc(rung, row), acc("question_only", row)):
                checks[name] = {"holds": acc(rung, row) > acc("question_only", row),
                                "values": [acc("question_only", row), acc(rung, row)], "row": row}
        ran = [r for r in LADDER if r in tables]
        if "avst" in tables and len(ran) > 1:
            best = max(ran, key=lambda r: acc(r, "Overall"))
            checks["the full AVST best overall"] = {"holds": all(acc("avst", "Overall") >= acc(r, "Overall") for r in ran),
                                                    "values": {r: acc(r, "Overall") for r in ran}, "best": best}
        for lower, upper in PAPER_ORDER:  # each step up the ladder gains overall, as in the paper
            if lower in tables and upper in tables:
                checks[f"{LADDER[upper][0]} above {LADDER[lower][0]} overall"] = {
                    "holds": acc(upper, "Overall") > acc(lower, "Overall"),
                    "values": [acc(lower, "Overall"), acc(upper, "Overall")],
                    "paper": [PAPER_OVERALL[lower], PAPER_OVERALL[upper]]}
        return checks

    def check(self, args: argparse.Namespace) -> None:
        if "avst" in args.rungs and args.pretrained_grounding != "none" and not Path(args.pretrained_grounding).is_file():
            raise SystemExit(f"--pretrained_grounding {args.pretrained_grounding} not found: run python -m avqa.pipeline "
                             f"(or grounding_gen/main_grd_gen.py) first, or pass --pretrained_grounding none")


class TSPMLadder(LadderFamily):
    name, title, out, heading = "tspm", "TSPM", "outputs/ladder_tspm", "TSPM's ablation rungs"
    rungs = {rung: label for rung, (label, _) in ABLATIONS.items()}
    flags = (*TSPM_FEATURES, "top_k", "token_frames")
    paper_note = "  (no paper column: the paper's TSPM ablation figures are not known to this project)"

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
        from .tspm.run import run_config
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


LADDER_FAMILIES = {family.name: family for family in (AVSTLadder(), TSPMLadder())}
