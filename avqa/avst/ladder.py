"""AVST's ablation ladder (python -m avqa.ladder): the paper's rungs Q, A+Q, V+Q, A+V+Q, +TG, +SG (= AVST),
its flags, the files each rung reads, and the paper's figures and orderings."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import checkpoint
from ..ladder_families import LadderFamily
from ..models import LADDER, rung_doc
from ..tasks.config import RunConfig
from ..utils import metadata_path

# The paper's overall test accuracy of each rung (original json), and its AVST row per type.
PAPER_OVERALL = {"question_only": 54.09, "aq": 64.26, "vq": 65.28, "avq": 67.72, "avq_tg": 70.27, "avst": 71.52}
PAPER_AVST = {"Audio Counting": 78.18, "Audio Comparative": 67.05, "Audio Avg": 74.06,
              "Visual Counting": 71.56, "Visual Location": 76.38, "Visual Avg": 74.00,
              "AV Existential": 81.81, "AV Location": 64.51, "AV Counting": 70.80, "AV Comparative": 66.01,
              "AV Temporal": 63.23, "AV Avg": 69.54, "Overall": 71.52}
# the paper's steps up the ladder (A+Q and V+Q are two ways up from Q; each gains overall)
PAPER_ORDER = [("question_only", "aq"), ("question_only", "vq"), ("aq", "avq"), ("vq", "avq"), ("avq", "avq_tg"),
               ("avq_tg", "avst")]

class AVSTLadder(LadderFamily):
    name, title, out, heading = "avst", "AVST", "outputs/ladder", "the ablation ladder"
    rungs = {rung: label for rung, (label, _) in LADDER.items()}
    flags = ("audio_dir", "video_res14x14_dir", "pretrained_grounding")
    paper_overall, paper_top = PAPER_OVERALL, PAPER_AVST
    paper_note = "  (paper: real MUSIC-AVQA, original json; it gives each rung's overall and AVST's row per type)"
    paper_source = "the paper's ablation (overall) and AVST row, real MUSIC-AVQA, original json"
    main_jobs = checkpoint.trained_path("outputs/grounding", "main_grounding_gen", "grounding").as_posix()
    choice = "the paper's ladder"

    def add_flags(self, parser: argparse.ArgumentParser) -> None:
        a = parser.add_argument_group("AVST's features and start (--family avst)")
        a.add_argument("--audio_dir", help="VGGish features (default: DATA/feats/vggish)")
        a.add_argument("--video_res14x14_dir", help="ResNet-18 14x14 features (default: DATA/feats/res18_14x14)")
        a.add_argument("--pretrained_grounding",
                       help="the grounding checkpoint the full AVST starts from, as in the main job; 'none' to start "
                            f"it from scratch too (default: the main job's, {self.main_jobs})")

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
        from ..tasks import qa
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


LADDER_FAMILY = AVSTLadder()
