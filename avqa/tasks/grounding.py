"""Grounding pre-training (grounding_gen/main_grd_gen.py): sound-guided spatial grounding learnt on a
match task (does this second's sound belong to this frame?), and its match accuracy on a split
beside the same model untrained. See docs/model.md (## Grounding pre-training).
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint
from ..data import GroundingDataset, real_videos
from ..engine.batches import BatchLoader
from ..features.seconds import GROUNDING_SECONDS
from ..engine.loop import Objective, fit
from ..engine.ownership import claim_outputs, run_record
from ..engine.runlog import RunLog, describe_inputs
from ..engine.runtime import Runtime, make_loader, to_device
from ..engine.trained_with import check_trained_features, recorded_config
from ..models import AudioVisualGrounding
from ..utils import atomic_write_text, check_writable, progress, reading, run_lock, sha256, user_errors
from .cli import parse
from .config import RunConfig
from .inputs import feature_stores, load_split


def grounding_loss(model: nn.Module, batch: dict) -> dict[str, torch.Tensor | None]:
    """CE of the match logits against the pair's label (1: the sound of this frame, 0: another video's); the
    loop's epoch line and history call it the answer part, as they always have."""
    logits = model(batch["audio"], batch["visual"])
    loss = F.cross_entropy(logits.float(), batch["label"].flatten())
    return {"loss": loss, "answer": loss, "match": None}


OBJECTIVE = Objective(grounding_loss, step_tag="train/match_loss")


@torch.no_grad()
def match_accuracy(model: nn.Module, loader: BatchLoader, rt: Runtime, quiet: bool = True) -> float:
    """Percent of the loader's pairs whose match is predicted right."""
    model.eval()
    correct = total = 0
    for batch in progress(loader, desc="eval", unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            logits = model(batch["audio"], batch["visual"])
        correct += (logits.argmax(1) == batch["label"].flatten()).sum().item()
        total += logits.shape[0]
    return 100.0 * correct / max(total, 1)


def _videos_of(path: str) -> list[str]:
    return real_videos(load_split(path))


def _stores(cfg: RunConfig, videos: Sequence[str]):
    return feature_stores(cfg, videos, True, reads=lambda T: range(min(GROUNDING_SECONDS, T)))


def train_grounding(cfg: RunConfig, rt: Runtime, held: ExitStack) -> None:
    """Pre-train on the match task; ``held`` keeps the run's lock and log until the caller is done."""
    save_dir = Path(cfg.model_save_dir)
    train_videos, val_videos = _videos_of(cfg.label_train), _videos_of(cfg.label_val)
    for path, vids in ((cfg.label_train, train_videos), (cfg.label_val, val_videos)):
        if len(vids) < 2:
            raise SystemExit(f"{path}: grounding needs at least two real videos (recordings, not the composed "
                             f"sa/va/vv/esa/eva/evv ones), found {len(vids)}")
    feature_dirs = [cfg.audio_dir, cfg.video_res14x14_dir]
    record = run_record(cfg, "grounding", None, feature_dirs, train_videos + val_videos)
    files = checkpoint.Files(save_dir, cfg.checkpoint, "grounding")
    if rt.main:
        held.enter_context(run_lock(save_dir, cfg.checkpoint, "--model_save_dir"))
    state = claim_outputs(cfg, files.best, files.last, record, rt)
    audio, visual, total = _stores(cfg, train_videos + val_videos)
    log = RunLog(files.log, cfg.tensorboard_dir, "grounding_gen", rt.main, fresh=state is None)
    held.callback(log.close)
    seconds = min(GROUNDING_SECONDS, total)
    for line in describe_inputs(cfg.flags(), [cfg.label_train, cfg.label_val], feature_dirs):
        log.line(line, echo=False)
    model = AudioVisualGrounding().to(rt.device)
    train_set = GroundingDataset(train_videos, audio, visual, seconds, seed=cfg.seed)
    val_set = GroundingDataset(val_videos, audio, visual, seconds, seed=cfg.seed + 1)
    log.line(f"grounding: {len(train_videos)} train / {len(val_videos)} val videos, first {seconds} s each "
             f"({len(train_set)} / {len(val_set)} samples), device {rt.device}")
    train_loader = make_loader(train_set, rt.per_process(cfg.batch_size), True, rt, cfg.num_workers, cfg.seed)
    val_loader = make_loader(val_set, cfg.eval_batch_size, False, rt, cfg.num_workers, cfg.seed)
    best = fit(cfg, OBJECTIVE, model, train_loader, lambda m: match_accuracy(m, val_loader, rt, cfg.quiet),
               rt, log, files, {"model": "grounding", "run": record}, cfg.flags(), state)
    log.line(f"best val match accuracy {best:.2f}; checkpoint {files.best}")


def test_grounding(cfg: RunConfig, rt: Runtime) -> None:
    """Match accuracy on --label_val (--mode val) or --label_test, beside the same model untrained."""
    save_dir = Path(cfg.model_save_dir)
    path = cfg.label_val if cfg.mode == "val" else cfg.label_test
    videos = _videos_of(path)
    audio, visual, total = _stores(cfg, videos)
    ckpt = checkpoint.trained_path(save_dir, cfg.checkpoint, "grounding")
    model = AudioVisualGrounding()
    try:
        meta = checkpoint.load_trained_state(ckpt, "grounding", model, None)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from None
    trained = recorded_config(cfg, meta)
    check_trained_features(ckpt, meta, [trained.audio_dir, trained.video_res14x14_dir],
                           [cfg.audio_dir, cfg.video_res14x14_dir], cfg.flags())
    results = Path(cfg.results) if cfg.results else save_dir / f"{cfg.checkpoint}_{Path(path).stem}.json"
    check_writable(results.parent, "--results" if cfg.results else "--model_save_dir")
    untrained = checkpoint.untrained(meta, AudioVisualGrounding)  # the reference every trained figure stands beside
    loader = make_loader(GroundingDataset(videos, audio, visual, min(GROUNDING_SECONDS, total), seed=cfg.seed + 2),
                         cfg.eval_batch_size, False, rt, cfg.num_workers, cfg.seed)
    scores = {name: match_accuracy(m.to(rt.device), loader, rt, cfg.quiet)
              for name, m in (("trained", model), ("untrained", untrained))}
    print(f"match accuracy on {len(videos)} {cfg.mode} videos ({len(loader.dataset)} pairs): "
          f"{scores['trained']:.2f} % (the same model untrained: {scores['untrained']:.2f} %; chance 50 %)")
    atomic_write_text(results, json.dumps({"model": "grounding", "checkpoint": str(ckpt),
                                           "checkpoint_sha256": sha256(ckpt), "annotations": path,
                                           "videos": len(videos), "pairs": len(loader.dataset),
                                           "match_accuracy": round(scores["trained"], 2),
                                           "untrained_match_accuracy": round(scores["untrained"], 2)}, indent=1))


def run(cfg: RunConfig) -> int:
    """Train, or score a checkpoint on a split (cfg.mode: train, val or test)."""
    rt = Runtime(cfg)
    torch.manual_seed(cfg.seed)
    held = ExitStack()
    try:
        if rt.main:  # an extractor's --overwrite of a folder this run reads waits for it to end
            for folder in (cfg.audio_dir, cfg.video_res14x14_dir):
                held.enter_context(reading(folder))
        if cfg.mode == "train":
            train_grounding(cfg, rt, held)
        else:
            test_grounding(cfg, rt)
        return 0
    finally:
        held.close()
        rt.close()


@user_errors
def run_grounding(argv: Sequence[str] | None = None, description: str = "") -> int:
    """grounding_gen/main_grd_gen.py: its flags onto a RunConfig, then ``run``."""
    return run(parse("grounding", argv, description))
