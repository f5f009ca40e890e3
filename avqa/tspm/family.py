"""TSPM's entry in the registry (avqa.registry): the model as the engine trains it (avqa.tspm.run), its
stages of the main job (avqa.tspm.stages) and what the summary prints of them, its ablation rungs."""
from __future__ import annotations

import json
from pathlib import Path

from ..registry import FamilyEntry
from .ladder import LADDER_FAMILY
from .run import FAMILY as TSPM_MODEL, TSPMRecipe


# AVST's demo recipe run 12 epochs (decay after 9): on the stand-in CLIP and ViT features TSPM's loss still falls at
# epoch 8 (docs/tspm.md, On the embedded default). --top_k 3 of the clips' 10 seconds, since the release's --top_k 10
# would keep every second and so select nothing (the release keeps 10 of 60, a sixth; 3 of 10 leaves the selection a
# choice); --tiny: one epoch, and 2 of the tiny clips' 4 seconds
RECIPES = {"demo": {"tspm": TSPMRecipe(epochs=12, lr=5e-4, lr_step=9, batch_size=32, top_k=3)},
           "tiny": {"tspm": TSPMRecipe(epochs=1, batch_size=16, top_k=2)}}


def stages(job) -> list:
    from .stages import TSPMStages
    return TSPMStages(job, FAMILY.recipes["tiny" if job.tiny else "demo"]["tspm"]).stages()


def train_config(job, **settings) -> tuple:
    """TSPM's training as the main job's ``tspm`` stage runs it on ``job``'s set, with ``settings`` over it, and
    the function that runs it (the registry's ``train_config``)."""
    from .run import run_config
    from .stages import TSPMStages
    return TSPMStages(job, FAMILY.recipes["tiny" if job.tiny else "demo"]["tspm"]).config(**settings), run_config


def summary(out: Path, tables: dict) -> dict:
    """TSPM's kept seconds against the ground truth, when the main job scored them."""
    from .selection_score import format_selection
    selection = out / "tspm_selection.json"
    if not selection.exists():
        return {}
    found = json.loads(selection.read_text())
    print(f"\nTSPM's kept seconds (--top_k {found['top_k']}) against when the question's "
          f"instrument sounds (share of kept seconds in which it sounds;\nuntrained: the same model and seed, "
          f"no training; random: k seconds drawn at random, expected):")
    print(format_selection(found["table"]))
    return {"tspm_selection": found}


FAMILY = FamilyEntry(
    name="tspm", title="TSPM", models={"tspm": TSPM_MODEL}, stages=stages, tables=("tspm",), summary=summary,
    ladder=LADDER_FAMILY, recipes=RECIPES, train_config=train_config,
    help="TSPM: its features from the synthetic-world stand-ins, trained, tested and its kept seconds scored")
