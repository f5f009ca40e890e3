"""TSPM's entry in the registry (avqa.registry): the model as the engine trains it (avqa.tspm.run), its
stages of the main job (avqa.tspm.stages) and what the summary prints of them, its ablation rungs."""
from __future__ import annotations

import json
from pathlib import Path

from ..recipes import DEMO, TINY
from ..registry import FamilyEntry
from .ladder import LADDER_FAMILY
from .run import FAMILY as TSPM_MODEL


def stages(job) -> list:
    from .stages import TSPMStages
    return TSPMStages(job).stages()


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
    ladder=LADDER_FAMILY, recipes={"demo": DEMO["tspm"], "tiny": TINY["tspm"]},
    help="TSPM: its features from the synthetic-world stand-ins, trained, tested and its kept seconds scored")
