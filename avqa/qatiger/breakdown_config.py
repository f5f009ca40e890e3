"""QA-TIGER's training on a main job's set, as the registry's ``train_config`` hook gives it
(benchmarks/bench_train_breakdown.py --family qatiger): its feature folders in the release's layout
(avqa.qatiger.standin), the stand-in CLIP's text tower as its question encoder, a recipe, the token width
the folder's metadata records.

QA-TIGER's entry wires it with its own recipe:
``train_config=lambda job, **s: breakdown_config.train_config(job, RECIPES[...]["qatiger"], **s)``.
"""
from __future__ import annotations

import json

from ..recipes import Recipe
from ..utils import metadata_path
from .run import QATigerConfig, run_config
from .standin import FOLDERS, TEXT_ENCODER


def patch_width(folder) -> dict[str, int]:
    """{"patch_dim": the token width ``folder``'s metadata records} (the stand-in ViT's 192, not ViT-L's 1024);
    empty where it has none, and the run's check of the files names the folder."""
    try:
        return {"patch_dim": int(json.loads(metadata_path(folder).read_text())["shape_per_video"][-1])}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}


def train_config(job, recipe: Recipe | None, **settings) -> tuple[QATigerConfig, object]:
    """QA-TIGER trained with ``recipe`` on ``job``'s set (data, feats, out, args.device of an avqa.job.MainJob),
    ``settings`` over it, and the function that runs it."""
    d, feats = job.data, job.feats
    cfg = QATigerConfig(audio_feat=str(feats / FOLDERS["audio"]), video_feat=str(feats / FOLDERS["frames"]),
                        patch_feat=str(feats / FOLDERS["tokens"]), clip_weights=str(TEXT_ENCODER),
                        label_train=str(d / "json" / "avqa-train.json"), label_val=str(d / "json" / "avqa-val.json"),
                        label_test=str(d / "json" / "avqa-test.json"), tensorboard_dir=str(job.out / "runs"),
                        device=job.args.device, model_save_dir=str(job.out / "qatiger"), checkpoint="qatiger",
                        **patch_width(feats / FOLDERS["tokens"]), **(recipe.settings() if recipe else {}), **settings)
    return cfg, run_config
