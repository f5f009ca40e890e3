"""Maintainers' tools, kept out of the user-facing modules.

``bundle`` ships the AVST checkpoint of a default main job as net_grd_avst/avst_models/avst.pt
with its record (``python -m avqa.pipeline --bundle``; see docs/development.md).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from . import checkpoint, registry
from .features.metadata import MADE_WITH
from .tasks import qa
from .tasks.config import RunConfig
from .utils import atomic_write_text, metadata_path


def bundle(data: Path, out: Path, dest: Path = Path("net_grd_avst/avst_models")) -> None:
    """Ship the AVST checkpoint of a default run: float16 weights (half the size, same answers) and
    the test table it scored, which ``main_avst.py --mode test`` compares against."""
    ckpt = checkpoint.load_dict(checkpoint.trained_path(out / "avst", "avst"))
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt["args"] = {k: v for k, v in ckpt["args"].items() if k not in ("model_save_dir",)}
    dest.mkdir(parents=True, exist_ok=True)
    shipped = checkpoint.trained_path(dest, "avst")
    checkpoint.save(shipped, ckpt)
    results = out / "bundled_avst_test.json"  # the shipped float16 weights' own score
    qa.run(RunConfig.for_script("avst", mode="test", model_save_dir=str(dest), checkpoint="avst", quiet=True,
                                audio_dir=str(data / "feats" / "vggish"),
                                video_res14x14_dir=str(data / "feats" / "res18_14x14"),
                                label_train=str(data / "json" / "avqa-train.json"),
                                label_test=str(data / "json" / "avqa-test.json"), results=str(results)))
    report = json.loads(results.read_text())
    feats = {n: json.loads(metadata_path(data / "feats" / n).read_text()) for n in ("vggish", "res18_14x14")}
    demo = {trained: recipe.flags() for trained, recipe in registry.recipes("demo").items()}
    recorded = {"table": report["table"], "made_with": "python -m avqa.pipeline --bundle", "recipe": demo,
                "synthetic": json.loads((data / "synthetic.json").read_text())["flags"],
                "features": {n: {k: m.get(k) for k in (*MADE_WITH, "trained_on")} for n, m in feats.items()},
                "torch": torch.__version__, "epoch": ckpt["epoch"], "val_accuracy": ckpt["val_accuracy"]}
    record = checkpoint.record_path(shipped)
    record.unlink(missing_ok=True)
    atomic_write_text(record, json.dumps(recorded, indent=1))
    print(f"bundled {shipped} (overall test accuracy {report['table']['Overall']['accuracy']:.2f})")
