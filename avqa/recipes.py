"""The recipes, defined once: the original scripts' (their defaults), the synthetic demo's (the main
job, its --tspm stages, the bundled checkpoint and the ladder) and the tiny end-to-end check's.

A recipe is written as the flags of the script it runs (as stage stamps and checkpoint records show
it); ``fields`` turns it into avqa.tasks.config.RunConfig fields, typed as that script types them.
"""
from __future__ import annotations

import argparse
from typing import Sequence

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
# the synthetic demo (docs/usage.md); why grounding's 22 epochs and AVST's 4: docs/speed.md, The main job, and
# docs/experiments/2026-11-30-shorter-trainings.md
DEMO = {"grounding": ["--epochs", "22", "--lr", "1e-3", "--lr_step", "22", "--batch-size", "16"],
        "avst": ["--epochs", "4", "--lr", "5e-4", "--lr_step", "4", "--batch-size", "32"],
        # AVST's demo recipe run 12 epochs (decay after 9): on the stand-in CLIP and ViT features TSPM's loss
        # still falls at epoch 8 (docs/tspm.md, On the embedded default). --top_k 3 of the clips' 10 seconds, since
        # the release's --top_k 10 would keep every second and so select nothing (the release keeps 10 of 60, a
        # sixth; 3 of 10 leaves the selection a choice)
        "tspm": ["--epochs", "12", "--lr", "5e-4", "--lr_step", "9", "--batch-size", "32", "--top_k", "3"]}
# python -m avqa.pipeline --tiny: its set, its VGGish pre-training, one epoch of each model
TINY = {"vggish_weights": ["--size", "6", "--heldout", "2", "--epochs", "1"],
        "clips": ["--num_clips", "16", "--seconds", "4", "--width", "160", "--height", "120", "--fps", "12",
                  "--split", "0.5,0.25,0.25", "--questions_per_clip", "10"],
        "grounding": ["--epochs", "1", "--batch-size", "16"],
        "avst": ["--epochs", "1", "--batch-size", "16"],
        "tspm": ["--epochs", "1", "--batch-size", "16", "--top_k", "2"]}  # the tiny clips last 4 s


def fields(recipe: Sequence[str], parser: argparse.ArgumentParser) -> dict:
    """A training recipe's flags as config fields: ["--epochs", "8", "--batch-size", "32"] ->
    {"epochs": 8, "batch_size": 32}, each checked and typed by the script's ``parser`` (its own
    command line, which the caller builds: recipes are data and import no script)."""
    parsed = vars(parser.parse_args(list(recipe)))
    return {name: parsed[name] for name in (flag.lstrip("-").replace("-", "_") for flag in recipe[::2])}
