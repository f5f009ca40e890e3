"""AVST's entry in the registry (avqa.registry): AVST, the baseline and the ablation rungs as the engine
trains them (AVST from the grounding pre-training, with its match loss reported), its stages of the
main job and what the main job's summary prints of them, its ladder, and how avqa.ask answers with it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .. import checkpoint
from ..models import QA_MODELS, AudioVisualGrounding, transfer_grounding
from ..recipes import Recipe
from ..registry import FamilyEntry
from ..tasks.config import RunConfig
from ..tasks.qa import Family
from ..utils import relative_hint
from .ladder import LADDER_FAMILY


def load_pretrained_grounding(src: str | None) -> AudioVisualGrounding | None:
    """--pretrained_grounding, checked before any training; None for 'none'."""
    if not src or src.lower() == "none":
        return None
    if not Path(src).is_file():
        raise SystemExit(f"--pretrained_grounding {src} not found{relative_hint(src)}: run grounding_gen/main_grd_gen.py "
                         f"first, or pass --pretrained_grounding none to start from scratch")
    grounding = AudioVisualGrounding()
    try:
        checkpoint.load_trained_state(src, "grounding", grounding, None)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"--pretrained_grounding: {e}. Give the _best.pt of grounding_gen/main_grd_gen.py, or "
                         f"none to start from scratch") from None
    return grounding


def grounding_start(cfg: RunConfig) -> Callable | None:
    """AVST's start: the grounding model of --pretrained_grounding (read now), copied into the built model."""
    grounding = load_pretrained_grounding(cfg.pretrained_grounding)
    if grounding is None:
        return None

    def start(model, log) -> None:
        copied = transfer_grounding(model, grounding.state_dict())
        log.line(f"started from the grounding model {cfg.pretrained_grounding} ({len(copied)} tensors)")
    return start


# the synthetic demo's (docs/usage.md; why grounding's 22 epochs and AVST's 4: docs/speed.md, The main job, and
# docs/experiments/2026-11-30-shorter-trainings.md) and python -m avqa.pipeline --tiny's: one epoch of each
RECIPES = {"demo": {"grounding": Recipe(epochs=22, lr=1e-3, lr_step=22, batch_size=16),
                    "avst": Recipe(epochs=4, lr=5e-4, lr_step=4, batch_size=32)},
           "tiny": {"grounding": Recipe(epochs=1, batch_size=16), "avst": Recipe(epochs=1, batch_size=16)}}


def stages(job) -> list:
    from .stages import AVSTStages
    return AVSTStages(job, FAMILY.recipes["tiny" if job.tiny else "demo"]).stages()


def train_config(job, **settings) -> tuple:
    """AVST's training as the main job's ``avst`` stage runs it on ``job``'s set, with ``settings`` over it, and
    the function that runs it (the registry's ``train_config``). It starts from scratch unless ``settings``
    names a grounding checkpoint (pretrained_grounding): the same model, the same steps."""
    from ..tasks import qa
    from .stages import AVSTStages
    s = AVSTStages(job, FAMILY.recipes["tiny" if job.tiny else "demo"])
    cfg = s.run_config("avst", s.avst_recipe, model="avst", model_save_dir=str(job.out / "avst"), checkpoint="avst",
                       **{"pretrained_grounding": "none", **settings})
    return cfg, qa.run


def summary(out: Path, tables: dict) -> dict:
    """What the main job's summary prints of AVST after the table: its gain over the question-only reference,
    the grounding pre-training's history and test, and where the attention peaks."""
    from ..grounding_score import format_scores
    if "avst" in tables and "question_only" in tables:
        gaps = {row: tables["avst"][row]["accuracy"] - tables["question_only"][row]["accuracy"]
                for row in ("Overall", "AV Location", "AV Temporal")
                if None not in (tables["avst"][row]["accuracy"], tables["question_only"][row]["accuracy"])}
        print("  AVST - question only: " + ", ".join(f"{row} {gap:+.2f}" for row, gap in gaps.items()) + " points")
    grounding = checkpoint.Files(out / "grounding", "main_grounding_gen", "grounding").last
    if grounding.exists():
        history = checkpoint.load_dict(grounding).get("history", [])
        if history:
            best = max(h["val_accuracy"] for h in history[1:]) if len(history) > 1 else None
            print(f"\ngrounding pre-training, val match accuracy (chance 50%): before training "
                  f"{history[0]['val_accuracy']:.2f}%" + (f", best {best:.2f}%" if best is not None else ""))
            print("  train loss by epoch (ln 2 = 0.693 is chance): " + " ".join(f"{h['loss']:.3f}" for h in history[1:]))
    if (out / "grounding_test.json").exists():
        r = json.loads((out / "grounding_test.json").read_text())
        print(f"  test match accuracy ({r['pairs']} pairs): {r['match_accuracy']:.2f}% "
              f"(the same model untrained: {r['untrained_match_accuracy']:.2f}%)")
    score = out / "grounding_score.json"
    if score.exists():
        print("\nwhere the sound-guided attention peaks on the test clips (untrained: the same model and seed, "
              "no training;\nchance: uniform attention):")
        print(format_scores(json.loads(score.read_text())["scores"]))
    return {}


def answerer(checkpoint_path, label_train=None, **options):
    """avqa.ask's answerer of an AVST checkpoint (avqa.ask.answerer.load_avst_answerer)."""
    from ..ask.answerer import load_avst_answerer
    return load_avst_answerer(checkpoint_path, label_train, **options)


MODELS = {name: Family(cls) for name, cls in QA_MODELS.items()}
MODELS["avst"] = Family(QA_MODELS["avst"], reported=("answer", "match"), start=grounding_start)

FAMILY = FamilyEntry(
    name="avst", title="AVST", models=MODELS, in_main_job=True, stages=stages, tables=("avst", "question_only"),
    summary=summary, ladder=LADDER_FAMILY, answerer=answerer, answers=("avst",),
    recipes=RECIPES, train_config=train_config,
    help="grounding pre-training, AVST and the question-only reference")
