"""The one owner of checkpoint files: their names, writing, reading and the record beside them.

A training run named NAME in a folder writes
- ``NAME.pt`` (question answering) or ``NAME_best.pt`` (grounding, the original's name): the weights
  that scored best on validation;
- ``NAME_last.pt``: the weights, optimiser, scheduler and random state after the last epoch (--resume);
- ``NAME.log``: the run's plain-text log;
- ``NAME_recorded.json`` beside a shipped checkpoint: the set, features and figure it was made with.

Two formats load: this project's (a dictionary with ``"format": "avqa/1"``, the model's name, its
vocabularies and its ``state_dict``) and the original's plain ``state_dict`` (keys ``module.*``); see
``docs/model.md`` (## Parameter names and checkpoint formats). Every read goes through
``avqa.utils.torch_load`` (weights_only, on the CPU).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .utils import atomic_path, relative_hint, torch_load

CHECKPOINT_KINDS = ("a checkpoint of this project is the .pt file a training script writes (a PyTorch zip archive "
                    "holding a dictionary with 'format': 'avqa/1', the model's name, its vocabularies and its "
                    "'state_dict'); an original checkpoint is the .pt file of torch.save(model.state_dict()), a "
                    "dictionary of tensors")
FORMAT = "avqa/1"
BEST_SUFFIX = {"grounding": "_best"}  # the original grounding script's file name; the QA scripts' is NAME.pt
TRAINING_STATE = ("optimizer", "scheduler", "rng")  # what only an epoch checkpoint (_last.pt) holds


@dataclass(frozen=True)
class Files:
    """The files of one training run: ``Files(folder, name, task)`` with task "grounding" or a QA model."""

    folder: Path
    name: str
    task: str = "qa"

    @property
    def best(self) -> Path:
        return Path(self.folder) / f"{self.name}{BEST_SUFFIX.get(self.task, '')}.pt"

    @property
    def last(self) -> Path:
        return Path(self.folder) / f"{self.name}_last.pt"

    @property
    def log(self) -> Path:
        return Path(self.folder) / f"{self.name}.log"


def trained_path(folder: str | Path, name: str, task: str = "qa") -> Path:
    """The checkpoint a test, a sheet or a score reads: <folder>/<name>.pt, or <name>_best.pt for grounding."""
    return Files(Path(folder), name, task).best


def record_path(checkpoint: str | Path) -> Path:
    """The record beside a shipped checkpoint (the set, features and figure it was made with):
    net_grd_avst/avst_models/avst.pt -> net_grd_avst/avst_models/avst_recorded.json."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}_recorded.json")


# How far a shipped checkpoint's overall accuracy moves on the set it was made on when its features
# are computed on another CPU or in another precision (docs/development.md#the-bundled-checkpoints-figure
# has the measurements this is set from).
RECORD_TOLERANCE = 1.0


def record_comparison(ckpt: str | Path, overall: float) -> str | None:
    """The line test mode prints after the table of a checkpoint that has a record beside it: the
    recorded overall accuracy, this run's, and whether the difference is the one features computed on
    this CPU give, or more (then, what to check); None without a record."""
    path = record_path(ckpt)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    recorded = record["table"]["Overall"]["accuracy"]
    precisions = sorted({f.get("precision", "?") for f in record.get("features", {}).values()})
    head = (f"recorded overall accuracy of this checkpoint: {recorded:.2f} (now {overall:.2f}, "
            f"{overall - recorded:+.2f})")
    if abs(overall - recorded) <= RECORD_TOLERANCE:
        return (f"{head}: within the {RECORD_TOLERANCE:.1f} points expected, since the features are computed "
                f"on this CPU (recorded with {', '.join(precisions) or 'unrecorded'} features; bfloat16 only where "
                f"the CPU computes it natively) and another CPU or precision rounds them differently")
    return (f"{head}: more than the {RECORD_TOLERANCE:.1f} points another CPU's rounding gives: check that the "
            f"features come from the set this checkpoint was made on ({path.name} names its generator flags) "
            f"with the weights its record names (weights_sha256 in each feature folder's .json)")


def save(path: Path, payload: dict) -> None:
    """Write atomically: a run killed midway leaves the previous file, never half of a new one."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors on the CPU, without DistributedDataParallel's ``module.`` wrapper."""
    m = model.module if hasattr(model, "module") else model
    return {k: v.detach().cpu() for k, v in m.state_dict().items()}


def load_file(path: str | Path) -> object:
    """The object a checkpoint file holds, read safely; a damaged or foreign file is a ValueError that says
    what a checkpoint is (``CHECKPOINT_KINDS``)."""
    return torch_load(path, CHECKPOINT_KINDS)


def load_dict(path: str | Path) -> dict:
    """A checkpoint file that must hold a dictionary (either format)."""
    obj = load_file(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds no checkpoint dictionary")
    return obj


def is_ours(obj: object) -> bool:
    """A checkpoint this project wrote."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def is_original(obj: object) -> bool:
    """The original code's checkpoint: torch.save(model.state_dict()), a dictionary of tensors only."""
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def original_state(obj: object, model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The default load hook of a file that is not this project's format: the original code's plain state_dict
    (keys ``module.*``) without the modules the original never used (``model.unused_keys``); None for any
    other object."""
    if not is_original(obj):
        return None
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return {k: v for k, v in state.items() if not k.startswith(getattr(model, "unused_keys", ()))}


def metadata(obj: dict) -> dict:
    """Everything a checkpoint of ours says about its run, without the tensors and the training state."""
    return {k: v for k, v in obj.items() if k not in ("state_dict", *TRAINING_STATE)}


def _check_vocab(path: Path, obj: dict, vocab) -> None:
    for what, mine, theirs in (("question", vocab.questions, obj["question_vocab"]),
                               ("answer", vocab.answers, obj["answer_vocab"])):
        if tuple(theirs) != tuple(mine):
            diff = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            raise ValueError(
                f"{path} was trained with another {what} vocabulary ({len(theirs)} entries) than the one "
                f"built from --label_train ({len(mine)} entries; first difference at position {diff}). "
                f"Use the train file the checkpoint was trained with.")


def _check_keys(path: Path, model_kind: str, state: dict, expected: dict) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(f"{path} is not a '{model_kind}' checkpoint: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}; unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''}")
    for key, name in (("question_encoder.word2vec.weight", "question vocabulary"), ("fc_ans.weight", "answer set")):
        if key in expected and state[key].shape != expected[key].shape:
            raise ValueError(f"{path} has a {name} of {state[key].shape[0]} entries but --label_train gives "
                             f"{expected[key].shape[0]}: use the train file the checkpoint was trained with")
    bad = [k for k in expected if state[k].shape != expected[k].shape]
    if bad:
        raise ValueError(f"{path}: tensors of other shapes than the model's: {bad[:5]}")


def load_trained_state(path: str | Path, model_kind: str, model: nn.Module, vocab=None, loaded: object = None,
                       release: Callable[[object, nn.Module], dict | None] = original_state) -> dict:
    """Load our checkpoint or a release's into ``model``; returns our checkpoint's metadata ({} for a
    release's). Every mismatch is a ValueError that says what differs.

    ``release(obj, model)``: the family's load hook, the state_dict of a file in its release's format or
    None (default ``original_state``: the original plain state_dict). ``loaded``: the file's object, when the
    caller has already read it (the file is then not read again).
    """
    path = Path(path)
    if loaded is None and not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found{relative_hint(path)}: train first, or check "
                                f"--model_save_dir and --checkpoint")
    obj = load_file(path) if loaded is None else loaded
    meta = {}
    if is_ours(obj):
        if obj.get("model") != model_kind:
            raise ValueError(f"{path} holds a '{obj.get('model')}' model, not '{model_kind}': test it with the script "
                             f"(and --model) that trained it, or give a '{model_kind}' checkpoint (--model_save_dir, "
                             f"--checkpoint)")
        state, meta = obj["state_dict"], metadata(obj)
        if vocab is not None and "question_vocab" in obj:
            _check_vocab(path, obj, vocab)
    elif (state := release(obj, model)) is None:
        raise ValueError(f"{path} is neither a checkpoint of this project nor an original state_dict")
    _check_keys(path, model_kind, state, model.state_dict())
    model.load_state_dict(state)
    return meta


def recorded_seed(meta: dict) -> int:
    """The seed a checkpoint's training run started from (1, the original default, for original ones)."""
    return int(meta.get("args", {}).get("seed", 1))


def untrained(meta: dict, build: Callable[[], nn.Module]) -> nn.Module:
    """The model a checkpoint's training run built before its first step: ``build()`` under its seed.

    The reference every trained figure stands beside (the same architecture and initial weights).
    """
    torch.manual_seed(recorded_seed(meta))
    return build()
