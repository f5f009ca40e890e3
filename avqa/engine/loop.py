"""The epoch loop every model trains with. It never asks which model it runs: an ``Objective`` says
how the model's loss is computed from a batch, and an ``evaluate`` callable scores it on validation.

What it guarantees: Adam and StepLR stepped once per epoch (the original recipe's shape; every value
comes from the config), the untrained model's score as epoch 0, the best-on-val checkpoint and the
last epoch's (with optimiser, scheduler and random state, so that a resumed run ends with the same
weights as an unbroken one), one device-to-host copy per step.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from .. import checkpoint
from ..data import BatchLoader
from ..utils import os_reason, progress
from .breakdown import begin_epoch, end_epoch, phase, timed
from .runlog import RunLog
from .runtime import Runtime, set_loader_epoch, to_device

Losses = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]


@dataclass(frozen=True)
class Objective:
    """What the loop needs of a model family.

    ``loss(model, batch)``: (total, answer part, match part or None), under autocast;
    ``step_tag``: the TensorBoard tag of the answer part, each step;
    ``reports_match``: the epoch line and the history carry the match part;
    ``betas``: Adam's (beta1, beta2) for this family's recipe.
    """

    loss: Callable[[nn.Module, dict], Losses]
    step_tag: str = "train/answer_loss"
    reports_match: bool = False
    betas: tuple[float, float] = (0.9, 0.999)


def train_step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, rt: Runtime,
               objective: Objective) -> tuple[float, float, float | None]:
    """One optimiser step on one (local) batch; returns the losses as floats."""
    optimizer.zero_grad(set_to_none=True)
    with phase("forward"), rt.autocast():
        loss, answer_loss, match_loss = objective.loss(model, batch)
    if rt.scaler is not None:
        with phase("backward"):
            rt.scaler.scale(loss).backward()
        with phase("step"):
            rt.scaler.step(optimizer)
            rt.scaler.update()
    else:
        with phase("backward"):
            loss.backward()
        with phase("step"):
            optimizer.step()
    # one device-to-host copy per step, not three
    values = torch.stack([t.detach().float() for t in (loss, answer_loss, match_loss) if t is not None]).tolist()
    return values[0], values[1], (values[2] if match_loss is not None else None)


def _resume(cfg, files: checkpoint.Files, model: nn.Module, optimizer, scheduler, state: dict | None,
            log: RunLog) -> tuple[int, float, list]:
    """The first epoch to train, the best score so far and the history: from ``state`` or from scratch."""
    if state is None:
        if cfg.resume:
            log.line(f"--resume: no {files.last} yet, starting from epoch 1")
        return 1, -math.inf, []
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if torch.cuda.is_available() and state["rng"].get("cuda"):
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    log.line(f"resumed from {files.last} after epoch {state['epoch']} (best so far {state['best']:.2f}; its model, "
             f"vocabularies, data files and recipe match this run's)")
    if state["epoch"] >= cfg.epochs:
        log.line(f"all {cfg.epochs} epochs were already done: nothing to train")
    return state["epoch"] + 1, state["best"], state.get("history", [])


def _epoch(cfg, epoch: int, net: nn.Module, loader: BatchLoader, optimizer, rt: Runtime, objective: Objective,
           log: RunLog, step: int) -> tuple[dict, int, int]:
    """One pass over the training set: the summed losses, the samples seen and the global step."""
    set_loader_epoch(loader, epoch, cfg.seed)
    net.train()
    sums = {"loss": 0.0, "answer": 0.0, "match": 0.0}
    seen, t0 = 0, time.time()
    bar = progress(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=cfg.quiet or not rt.main,
                   leave=False, file=sys.stderr)
    for batch_idx, batch in enumerate(timed(bar)):  # timed: the breakdown's wait for a batch (off: bar itself)
        with phase("data"):
            batch = to_device(batch, rt.device)
        n = len(batch["label"])
        loss, answer_loss, match_loss = train_step(net, batch, optimizer, rt, objective)
        seen += n
        sums["loss"] += loss * n
        sums["answer"] += answer_loss * n
        if match_loss is not None:
            sums["match"] += match_loss * n
        step += 1
        with phase("log"):
            rate = seen * rt.world / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{rate:.0f}")
            log.scalar(objective.step_tag, answer_loss, step)
            if match_loss is not None:
                log.scalar("train/match_loss", match_loss, step)
            if batch_idx % cfg.log_interval == 0:
                log.line(f"Train Epoch: {epoch} [{batch_idx * n * rt.world}/{len(loader.dataset)} "
                         f"({100.0 * batch_idx / len(loader):.0f}%)]\tLoss: {loss:.6f}", echo=False)
    return sums, seen, step


def _save(files: checkpoint.Files, payload: dict, improved: bool, optimizer, scheduler, best: float) -> None:
    """The epoch's checkpoints; a write that fails (a full disk) stops the run with one sentence, the files of
    the epochs before kept as they were (checkpoint.save writes atomically)."""
    target = files.best if improved else files.last
    try:
        if improved:
            checkpoint.save(files.best, payload)
        target = files.last
        checkpoint.save(files.last, {**payload, "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict(), "best": best,
                                     "rng": {"torch": torch.get_rng_state(),
                                             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}})
    except (OSError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "write" not in str(e):  # torch's writer says "file write failed"
            raise
        why = os_reason(e) if isinstance(e, OSError) else str(e).splitlines()[-1]
        raise CheckpointNotSaved(f"cannot write {target} ({why}): the run stops after epoch {payload['epoch']}, "
                                 f"which is not saved; the checkpoints of the epochs before are kept. Free some space "
                                 f"(or choose another --model_save_dir) and continue with --resume.") from None


class CheckpointNotSaved(SystemExit):
    """An epoch whose checkpoint could not be written: the run's last words."""


def make_optimizer(model: nn.Module, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """The Adam every training here uses. Fused: one kernel for every tensor's update instead of a dozen operations
    per tensor, faster for the small models here (docs/speed.md, The main job); it rounds differently from the
    per-tensor Adam in the last bit."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=True)


def ddp_wrap(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """DistributedDataParallel over ``model``; a model whose ``unused_parameters`` is true has parameters
    that get no gradient in some steps, which DDP must then look for instead of waiting for them."""
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                               find_unused_parameters=getattr(model, "unused_parameters", False))


def fit(cfg, objective: Objective, model: nn.Module, train_loader: BatchLoader, evaluate: Callable[[nn.Module], float],
        rt: Runtime, log: RunLog, files: checkpoint.Files, meta: dict, flags: dict, resume_state: dict | None) -> float:
    """Train for cfg.epochs; keep the best-on-val and the last checkpoint; returns the best score.

    ``resume_state``: the checked _last.pt to continue from (engine.ownership.claim_outputs); ``meta``
    goes into every checkpoint (the model's name, vocabularies, the run's record), and ``flags`` as its "args".
    """
    net = model
    if rt.world > 1:
        net = ddp_wrap(model, rt.device)
    optimizer = make_optimizer(model, cfg.lr, objective.betas)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start, best, history = _resume(cfg, files, model, optimizer, scheduler, resume_state, log)
    if start == 1:  # the same model untrained: the reference every trained figure stands beside
        score = rt.share(evaluate(model) if rt.main else None)
        history.append({"epoch": 0, "val_accuracy": score})
        log.line(f"epoch 0 (before training): val accuracy {score:.2f}")
    step = (start - 1) * len(train_loader)
    for epoch in range(start, cfg.epochs + 1):
        t0 = time.time()
        begin_epoch(epoch)
        sums, seen, step = _epoch(cfg, epoch, net, train_loader, optimizer, rt, objective, log, step)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        train_seconds = time.time() - t0
        with phase("validation"):
            score = rt.share(evaluate(model) if rt.main else None)
        log.scalar("train/lr", lr, epoch)
        log.scalar("val/accuracy", score, epoch)
        improved = score >= best
        best = max(best, score)
        mean = {k: v / max(seen, 1) for k, v in sums.items()}
        history.append({"epoch": epoch, "loss": round(mean["loss"], 4), "answer_loss": round(mean["answer"], 4),
                        "match_loss": round(mean["match"], 4) if objective.reports_match else None,
                        "val_accuracy": score})
        said = (f"epoch {epoch}: loss {mean['loss']:.4f} (answer {mean['answer']:.4f}"
                + (f", match {mean['match']:.4f}" if objective.reports_match else "")
                + f"), lr {lr:.2e}, {seen * rt.world / train_seconds:.1f} samples/s, val accuracy {score:.2f}")
        if rt.main:
            payload = {"format": checkpoint.FORMAT, **meta, "state_dict": checkpoint.plain_state(model),
                       "epoch": epoch, "val_accuracy": score, "history": history, "args": dict(flags)}
            try:
                with phase("checkpoint"):
                    _save(files, payload, improved, optimizer, scheduler, best)
            except CheckpointNotSaved as e:
                log.line(f"{said} (NOT saved: {e.code})")
                raise
        log.line(said + (" (best, saved)" if improved else ""))
        rt.barrier()
        end_epoch(seen * rt.world, train_seconds)
    return best
