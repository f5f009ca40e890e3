"""The training and test entry points of the original scripts, and the names older callers import.

Where each part lives:
- avqa.tasks.qa / avqa.tasks.grounding: build, train and test each task from a RunConfig
  (avqa.tasks.config); avqa.tasks.cli is the scripts' command line that fills it;
- avqa.engine: the process (runtime), the epoch loop (loop), the log (runlog), what a run may
  write over (ownership);
- avqa.checkpoint: checkpoint names, writing, reading and formats;
- avqa.evaluate: the accuracy table.
"""
from __future__ import annotations

import torch

from .checkpoint import FORMAT as CHECKPOINT_FORMAT, load_trained_state
from .engine import loop
from .engine.runtime import Runtime, make_loader, set_loader_epoch, to_device
from .tasks.cli import build_parser
from .tasks.grounding import OBJECTIVE as GROUNDING_OBJECTIVE, run_grounding
from .tasks.inputs import feature_stores, load_split
from .tasks.qa import FAMILIES, predict_qa, qa_loss, run_qa

__all__ = ["CHECKPOINT_FORMAT", "Runtime", "build_parser", "feature_stores", "load_split", "load_trained_state",
           "make_loader", "predict_qa", "qa_loss", "run_grounding", "run_qa", "set_loader_epoch", "to_device",
           "train_step"]


def train_step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer, rt: Runtime, kind: str,
               match_weight: float = 0.5) -> tuple[float, float, float | None]:
    """One optimiser step of ``kind`` (grounding, or a family of avqa.tasks.qa.FAMILIES) on one batch.

    For callers that name the model; new code passes an Objective to avqa.engine.loop.train_step.
    """
    objective = GROUNDING_OBJECTIVE if kind == "grounding" else FAMILIES[kind].objective(match_weight)
    return loop.train_step(model, batch, optimizer, rt, objective)
