"""The recipes as data: the original scripts' (their defaults), the tiny end-to-end check's set and VGGish
pre-training, and ``Recipe``, the typed value of a family's training recipe (each family's demo and tiny
recipes live in its registry entry, ``FamilyEntry.recipes``; the main job's stages, the bundled
checkpoint and the ladder read them there). ``Recipe.flags`` writes one as the flags of the script it
runs, as stage stamps and checkpoint records show it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

# the original scripts' epochs, output places and the flags only some of them have; the optimiser's values are
# RunConfig's defaults
ORIGINAL = {
    "avst": dict(epochs=80, model_save_dir="net_grd_avst/avst_models/", checkpoint="avst", model="AVQA_Fusion_Net"),
    "baseline": dict(epochs=20, model_save_dir="net_grd_baseline/models_grd_baseline/", checkpoint="net_grd_baseline",
                     model="AVQA_Fusion_Net", video_dir="./data/frames", st_dir="./data/feats/r2plus1d_18",
                     match_weight=None),
    "grounding": dict(epochs=30, model_save_dir="grounding_gen/models_grounding_gen/", checkpoint="main_grounding_gen",
                      model="AVQA_AVatt_Grounding", video_dir="./data/frames", st_dir="./data/feats/r2plus1d_18",
                      match_weight=None),
}
# python -m avqa.pipeline --tiny: its set, its VGGish pre-training, one epoch of each model
# (the families' demo and tiny training recipes are Recipe values in their registry entries)
TINY = {"vggish_weights": ["--size", "6", "--heldout", "2", "--epochs", "1"],
        "clips": ["--num_clips", "16", "--seconds", "4", "--width", "160", "--height", "120", "--fps", "12",
                  "--split", "0.5,0.25,0.25", "--questions_per_clip", "10"]}


@dataclass(frozen=True)
class Recipe:
    """A training recipe as a typed value: the fields it sets of its script's config (None: the script's
    default). A family with more settings subclasses it (its fields follow these). ``flags`` is the
    recipe as its script's flags, the form stage stamps and checkpoint records show."""

    epochs: int
    lr: float | None = None
    lr_step: int | None = None
    batch_size: int | None = None

    # a field whose flag is spelled otherwise than "--<field>"
    spelling: ClassVar[dict[str, str]] = {"batch_size": "--batch-size"}

    def settings(self) -> dict:
        """The config fields it sets, in order: {"epochs": 4, "lr": 0.0005, ...}."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def flags(self) -> list[str]:
        """["--epochs", "4", "--lr", "5e-4", "--lr_step", "4", "--batch-size", "32"]: each set field as its
        script's flag, in field order; a float in the shortest scientific form."""
        return [part for name, value in self.settings().items()
                for part in (self.spelling.get(name, f"--{name}"), _spelled(value))]


def _spelled(value) -> str:
    if isinstance(value, float):
        mantissa, exponent = f"{value:.15e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return str(value)

