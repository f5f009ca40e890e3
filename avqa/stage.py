"""A stage of the main job, as a value: what it runs, how its outputs are checked, what it writes
and which settings its stamp holds; the checks stages share, and the way a stage runs a task or an
extraction as its script would. avqa.job (the AVST stages), a family's stages (avqa.tspm.stages) and
the runner (avqa.pipeline) build on it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import checkpoint
from .utils import sha256, user_errors

Check = Callable[[], "str | None"]  # None when the outputs are valid, else why not


@dataclass
class Stage:
    name: str
    what: str
    needs: list[str]
    run: Callable[[], None]
    check: Check
    outputs: list[Path]
    config: dict = field(default_factory=dict)
    keep_outputs: bool = False               # True: the stage itself knows which of its old outputs still hold
    resumes: bool = False                    # True (training): only an interrupted run's outputs are kept, to resume


def recorded_sha256(weights: Path) -> str | None:
    """The sha256 a weights file's record gives (a stage made with other weights is redone)."""
    from .features.backbones import record_path  # the weights' record, beside the file
    try:
        return json.loads(record_path(weights).read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def run_task(run: Callable[[object], int], cfg: object) -> None:
    """Run a task as its script would: a file it cannot use ends the stage with one sentence."""
    exit_on_failure(user_errors(run)(cfg))


def exit_on_failure(code: int | None) -> None:
    """A failed step ends the stage with its exit code."""
    if code not in (0, None):
        raise SystemExit(code)


def print_report(report) -> None:
    """An extraction's summary, and its exit code if it failed."""
    print(report.summary())
    exit_on_failure(report.exit_code())


# ----------------------------------------------------------------------------- checks


def finished(ckpt_dir: Path, name: str, epochs: int, model: str) -> Check:
    """The training run's last and best checkpoints are there, of ``model``, after ``epochs`` epochs."""
    def check():
        files = checkpoint.Files(ckpt_dir, name, model)
        last, best = files.last, files.best
        try:
            state, best_state = checkpoint.load_file(last), checkpoint.load_file(best)
        except Exception:  # noqa: BLE001 - missing or unreadable: train again
            return f"{last} or {best} missing or unreadable"
        if state.get("model") != model or state.get("epoch") != epochs or best_state.get("model") != model:
            return f"{last} is not a finished {epochs}-epoch {model} run"
        return None
    return check


def tested(results: Path, ckpt: Path, made_from: Callable[[dict], str | None] | None = None) -> Check:
    """The report exists and was made from the checkpoint as it is now (``made_from``: its hash there)."""
    made_from = made_from or (lambda r: r.get("checkpoint_sha256"))

    def check():
        try:
            r = json.loads(results.read_text())
        except (OSError, ValueError):
            return f"{results} missing"
        return None if ckpt.is_file() and made_from(r) == sha256(ckpt) else "the checkpoint changed"
    return check


def weights_check(path: Path, remake: str) -> Check:
    """The weights file matches the sha256 its record gives (a damaged or replaced file is remade)."""
    def check():
        recorded = recorded_sha256(path)
        if recorded is None:
            return f"{path} has no record beside it ({remake})"
        return None if path.is_file() and sha256(path) == recorded else f"{path} missing or damaged ({remake})"
    return check
