"""The synthetic world's teaching kit, shared by every backbone trained on it (avqa.features.pretrain's
ResNet-18 and VGGish, avqa.features.standins' CLIP and ViT): fresh scenes drawn under a corpus's own
seed, their frames as the extractors see them, corpora built in worker processes, the held-out
figures, and the multi-label training loop."""
from __future__ import annotations

import io
import multiprocessing as mp
import sys
import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..annotations import INSTRUMENTS
from ..machine import native_bf16
from ..synthetic.scene import Scene
from ..utils import progress

CLASS_INDEX = {c: i for i, c in enumerate(INSTRUMENTS)}
FRAME_SIZES = ((320, 240), (320, 240), (426, 240))  # the default set's 4:3, and 16:9 as most real videos
SCENE_SECONDS = 10


# ----------------------------------------------------------------------------- corpora


def multi_hot(classes) -> np.ndarray:
    y = np.zeros(len(INSTRUMENTS), np.float32)
    for c in classes:
        y[CLASS_INDEX[c]] = 1
    return y


def fresh_scene(seed: int, index: int) -> tuple[np.random.Generator, Scene]:
    """Scene ``index`` of a corpus drawn by the generator's scene sampler under ``seed``, and the
    generator that drew it (its next draws decide how the scene is shown)."""
    from ..synthetic.scene import sample_scene
    rng = np.random.default_rng((seed, index))
    return rng, sample_scene(rng, f"corpus{index}", "train", SCENE_SECONDS)


def scene_frame(scene: Scene, rng: np.random.Generator, size: tuple[int, int] | None,
                resize: Callable) -> tuple[np.ndarray, float]:
    """A frame of ``scene`` at a random second, JPEG round trip at a random quality (30-95) as a
    stand-in for the compression of the videos the extractors decode, through ``resize`` (a
    backbone's PIL preprocessing): the image as uint8 [S, S, 3] and the second it shows. ``size``
    None draws the frame size from FRAME_SIZES."""
    from PIL import Image

    from ..synthetic.render import background, compose_frame
    width, height = size or FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
    t = float(rng.uniform(0, SCENE_SECONDS))
    frame, _ = compose_frame(scene, background(scene, width, height), t, with_boxes=False)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=int(rng.integers(30, 96)))
    buf.seek(0)
    return np.array(resize(Image.open(buf).convert("RGB"))), t


def _corpus_item(task):
    make, seed, index = task
    return make(seed, index)


def corpus(make: Callable[[int, int], tuple[np.ndarray, np.ndarray]], seed: int, count: int, workers: int,
           desc: str) -> tuple[np.ndarray, np.ndarray]:
    """``count`` examples of ``make`` (each seeded by (seed, index): the same whatever the workers), stacked."""
    tasks = [(make, seed, i) for i in range(count)]
    with progress(total=count, desc=desc, unit="scene") as bar:
        items = []
        if workers > 1:
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else None)
            with ctx.Pool(workers) as pool:
                for item in pool.imap(_corpus_item, tasks, chunksize=16):
                    items.append(item)
                    bar.update()
        else:
            for t in tasks:
                items.append(_corpus_item(t))
                bar.update()
    xs, ys = zip(*items)
    return np.stack(xs), np.stack(ys)


# ----------------------------------------------------------------------------- metrics


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision per class (classes present in ``labels``), averaged."""
    aps = []
    for k in range(labels.shape[1]):
        y = labels[:, k] > 0
        if not y.any():
            continue
        hits = y[np.argsort(-scores[:, k], kind="stable")]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float(precision[hits].mean()))
    return float(np.mean(aps))


def heldout_figures(scores: np.ndarray, labels: np.ndarray) -> dict:
    """mAP, and the share of examples whose predicted class set (logit > 0) is exactly right."""
    return {"mAP": round(100 * mean_average_precision(scores, labels), 2),
            "exact_set": round(100 * float(((scores > 0) == (labels > 0)).all(1).mean()), 2),
            "examples": int(len(labels))}


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, steps: int = 300) -> np.ndarray:
    """Held-out logits of a multi-label linear classifier fitted on fixed features (full-batch Adam)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    head = nn.Linear(train_x.shape[1], train_y.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    x = (train_x - mean) / std
    for _ in range(steps):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(head(x), train_y).backward()
        opt.step()
    with torch.no_grad():
        return head((test_x - mean) / std).numpy()


# ----------------------------------------------------------------------------- training


def autocast(device: torch.device):
    """bfloat16 autocast where the device computes it natively, else float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=native_bf16(str(device)))


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(x[i:i + batch]).float().cpu() for i in range(0, len(x), batch)])


def log_line(text: str) -> None:
    print(text, flush=True)


def train_multilabel(net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, epochs: int, lr: float,
                     batch: int, device: torch.device, prepare: Callable[[torch.Tensor], torch.Tensor],
                     augment: Callable[[torch.Tensor], torch.Tensor] | None = None, log=log_line,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.binary_cross_entropy_with_logits,
                     weight_decay: float = 1e-4, order_seed: int = 0) -> None:
    """Binary cross-entropy per class (or ``loss_fn`` of the float32 outputs and the labels); AdamW with
    a one-cycle schedule; ``prepare`` moves a batch to the device; ``order_seed`` draws the batches."""
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(inputs) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(order_seed)
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(inputs), generator=generator)
        total, t0 = 0.0, time.time()
        bar = progress(range(0, len(inputs), batch), desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False)
        for start in bar:
            idx = order[start:start + batch]
            x = prepare(inputs[idx])
            if augment is not None:
                x = augment(x)
            with autocast(device):
                loss = loss_fn(net(x).float(), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(idx)
        log(f"epoch {epoch}: loss {total / len(inputs):.4f}, {len(inputs) / (time.time() - t0):.0f} examples/s")
