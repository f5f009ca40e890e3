"""The metadata of a feature folder (``<folder>.json`` beside it, utils.metadata_path): what its features were made with, and the
one list of settings that must agree before features are mixed in a folder or fed to a checkpoint."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable

from typing import TYPE_CHECKING

from ..utils import atomic_write_text, metadata_path, readers

if TYPE_CHECKING:
    from .network import Runner

# The settings that decide the features' values: a checkpoint's answers mean something only on features made
# as its training features were (avqa.ask compares these)
MADE_WITH = ("weights_sha256", "init", "seconds", "precision", "preprocessing", "jpeg_roundtrip_quality")
# What the features of one folder share: the backbone, those settings, and how they are stored
COMPARED = ("backbone", *MADE_WITH, "dtype", "seconds_computed")


def feature_metadata(name: str, runner: Runner, seconds: int, device: str, bf16: bool) -> dict:
    """The metadata of features of backbone ``name`` computed by ``runner``, as a folder records them."""
    import torch
    return {
        "backbone": name,
        "description": runner.spec.description,
        "weights": runner.weights_info["weights"],
        "weights_sha256": runner.weights_info.get("sha256"),
        "init": runner.weights_info["init"],
        "trained_on": runner.weights_info.get("trained_on"),
        "seconds": seconds,
        "shape_per_video": [seconds, *runner.spec.out_shape],
        "dtype": "float32",
        "precision": "bfloat16 compute" if bf16 else "float32",
        "preprocessing": runner.spec.preprocessing(),
        "device": device,
        "batchnorm_folded": runner.spec.has_batchnorm,
        "torch": torch.__version__,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def refuse_while_read(out_dir: Path) -> None:
    """--overwrite must not replace features that a training or test run reads now (utils.reading)."""
    busy = readers(out_dir)
    if busy:
        other = busy[0]
        raise SystemExit(f"--overwrite: {out_dir} is being read by another run, process {other.get('pid')} (since "
                         f"{other.get('started')}: {other.get('command', '?')}): wait for it to end, or write the new "
                         f"features into another folder (if that run is gone, delete {other['mark']})")


def check_metadata(out_dir: Path, meta: dict, overwrite: bool, own: Iterable[str] | None = None,
                   compared: Iterable[str] = COMPARED) -> None:
    """Refuse to mix features made with different settings (``compared``) in one folder (unless --overwrite).

    ``own``: the stems this process writes (a shard): --overwrite then removes only those. A folder
    whose metadata already holds these settings keeps its file (shards and reruns never rewrite it).
    """
    path = metadata_path(out_dir)
    existing = [p for p in out_dir.glob("*.npy")] if out_dir.is_dir() else []
    if own is not None:
        mine = set(own)
        removable = [p for p in existing if p.stem in mine]
    else:
        removable = existing
    same = False
    if path.exists() and existing:
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), meta.get(k)) for k in compared if old.get(k) != meta.get(k)}
        same = not diff
        if diff:
            if not overwrite:
                lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                raise SystemExit(f"{out_dir} holds features made with other settings ({lines}). Pass --overwrite "
                                 f"to recompute them all, or choose another output folder.")
    if overwrite and removable:
        refuse_while_read(out_dir)
    if overwrite:
        for p in removable:
            p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    # same settings: the file stays as it is, so a rerun with nothing to do changes no stamp that a
    # training run's --resume or a main-job stage compares
    if not same or (overwrite and own is None):
        atomic_write_text(path, json.dumps(meta, indent=1))

