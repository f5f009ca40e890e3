"""QA-TIGER's entry in the registry (avqa.registry): the model as the engine trains it (avqa.qatiger.run), its
stages of the main job (avqa.qatiger.stages) and what the summary prints of them, its ablation rungs
(avqa.qatiger.ladder) and its recipes.

Not in the default main job: ``python -m avqa.pipeline --family avst,qatiger`` runs it.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import checkpoint
from ..registry import FamilyEntry
from .ladder import LADDER_FAMILY
from .run import FAMILY as QATIGER_MODEL
from .run import QATigerRecipe

# demo: the default synthetic set (10-s clips), on the stand-in features and text encoder, within the main job's time
# on a 2-core CPU (docs/qatiger.md, On the embedded default): d = 128 instead of the release's 512, each question with
# its own experts' routing (--no-release_pairing: the paper's model, answers independent of the batch), Adam at 5e-4
# decayed after 10 of 12 epochs (at 1e-3 its validation accuracy stalls near 40%). tiny: one epoch, d = 64
RECIPES = {"demo": {"qatiger": QATigerRecipe(epochs=12, lr=5e-4, lr_step=10, batch_size=32, d_model=128,
                                             release_pairing=False)},
           "tiny": {"qatiger": QATigerRecipe(epochs=1, lr=1e-3, lr_step=1, batch_size=16, d_model=64,
                                             release_pairing=False)}}


def train_config(job, **settings) -> tuple:
    """QA-TIGER's training as the main job's ``qatiger`` stage runs it on ``job``'s set, with ``settings`` over it,
    and the function that runs it (the registry's ``train_config``)."""
    from .breakdown_config import train_config as configured
    return configured(job, RECIPES["tiny" if job.tiny else "demo"]["qatiger"], **settings)


def stages(job) -> list:
    from .stages import QATigerStages
    return QATigerStages(job).stages()


def summary(out: Path, tables: dict) -> dict:
    """QA-TIGER beside its untrained self, and where in time its experts look, when the main job scored them."""
    from .time_score import format_spread, format_time
    found = out / "qatiger_time.json"
    if not found.exists():
        return {}
    time = json.loads(found.read_text())
    last = checkpoint.Files(out / "qatiger", "qatiger", "qatiger").last
    history = checkpoint.load_dict(last).get("history", []) if last.exists() else []
    before = f", val before training {history[0]['val_accuracy']:.2f}%" if history else ""
    print(f"\nQA-TIGER, test accuracy: trained {time['accuracy']['trained']:.2f}%, the same model untrained "
          f"{time['accuracy']['untrained']:.2f}%{before}")
    print("QA-TIGER's Gaussian experts: share of their weight over the seconds on those in which the question's "
          "instrument sounds\n(untrained: the same model and seed, no training; uniform: every second alike):")
    print(format_time(time["table"]))
    print(format_spread(time["spread"]))
    return {"qatiger_time": time}


FAMILY = FamilyEntry(
    name="qatiger", title="QA-TIGER", models={"qatiger": QATIGER_MODEL}, stages=stages, tables=("qatiger",),
    summary=summary, ladder=LADDER_FAMILY, recipes=RECIPES, train_config=train_config,
    help="QA-TIGER: its features linked to TSPM's stand-ins, trained with the stand-in text encoder, tested and "
         "its experts' weights over the seconds scored")
