"""Test mode against the training of its checkpoint: the flags that shape the answers and the feature
files it learned from must be those it was trained with, or the test stops before it predicts.

A checkpoint of this project records both: its "args" (every flag of its training) and its run's record
(engine.ownership.run_record: the metadata of each feature folder and the stamp of every feature file
it read). An original checkpoint records neither and is tested as it is.
"""
from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Sequence

from ..utils import changes, fingerprint, metadata_path
from .ownership import metadata_digests


def _value(value) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else repr(value)


def _flag(name: str, value) -> str:
    """The command-line words that give ``name`` the value ``value`` (a switch: --X or --no-X)."""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    return f"--{name} {value}"


def check_trained_flags(ckpt: Path, meta: dict, cfg, names: Sequence[str] | None = None) -> None:
    """Stop, naming each flag, where one of ``names`` (default ``cfg.model_flags``) differs from the
    checkpoint's training.

    Test mode refuses rather than taking the recorded value: the figure it prints and the flags its
    report records are then those of the command the user typed.
    """
    args = meta.get("args") or {}
    names = cfg.model_flags if names is None else names
    diffs = [(k, args[k], getattr(cfg, k)) for k in names if k in args and args[k] != getattr(cfg, k)]
    if diffs:
        words = "; ".join(f"--{k} ({_value(then)} at training, {_value(now)} now)" for k, then, now in diffs)
        fix = " ".join(_flag(k, then) for k, then, _ in diffs)
        raise SystemExit(f"{ckpt} was trained with other model settings than this test run's: {words}. Test it "
                         f"with the flags it was trained with ({fix}), or give a checkpoint trained with these "
                         f"(--model_save_dir, --checkpoint).")


def recorded_config(cfg, meta: dict):
    """``cfg`` with the flags the checkpoint was trained with (those the config knows)."""
    known = {f.name for f in fields(cfg) if f.init}
    return replace(cfg, **{k: v for k, v in (meta.get("args") or {}).items() if k in known})


def _folder_changes(folder: str, digest_then: str | None, digest_now: str | None, read: dict) -> list[str]:
    """What changed in one feature folder since the training read it (files gone since are not read now)."""
    found = []
    if digest_then != digest_now and digest_now is not None:
        found.append(f"its metadata {metadata_path(folder)} was written again (an extraction with other settings, "
                     f"or --overwrite)")
    root = os.path.join(os.path.abspath(folder), "")
    then = {p: s for p, s in read.items() if os.path.abspath(p).startswith(root)}
    now = {p: s for p, s in fingerprint(then).items() if s is not None}
    found += changes({p: then[p] for p in now}, now)
    return found


def check_trained_features(ckpt: Path, meta: dict, trained_dirs: Sequence[str], dirs: Sequence[str],
                           flags: dict) -> None:
    """Stop where a feature folder this test reads is one the checkpoint was trained on and has changed
    since (rewritten metadata, feature files changed in place): its answers would come from features it
    never learned from. A folder other than the training's is not compared (there is nothing to compare)."""
    run = meta.get("run") or {}
    if not run.get("features_read"):
        return
    digests_then, digests_now = run.get("features_metadata_sha256") or [], metadata_digests(dirs)
    problems = []
    for i, (then_dir, now_dir) in enumerate(zip(trained_dirs, dirs)):
        if os.path.abspath(then_dir) != os.path.abspath(now_dir):
            continue
        digest_then = digests_then[i] if i < len(digests_then) else None
        found = _folder_changes(now_dir, digest_then, digests_now[i], run["features_read"])
        if found:
            flag = next((f"--{k} " for k, v in flags.items() if v == now_dir), "")
            problems.append(f"{flag}{now_dir} ({'; '.join(found)})")
    if problems:
        raise SystemExit(f"cannot test {ckpt}: the features it was trained on changed since its training: "
                         f"{'; '.join(problems)}. Its answers would come from features it never learned from: test "
                         f"it on the features it was trained with, or train it again on these (--overwrite).")
