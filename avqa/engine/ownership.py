"""Whose checkpoint a file is, and what a run may write: the record of what a run was started with,
compared when it resumes or when it would write over a checkpoint already there."""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

from .. import checkpoint
from ..annotations import Vocab
from ..utils import changes, check_writable, clean_stale_temps, fingerprint, metadata_path, sha256
from .runtime import Runtime


def run_record(args, model_kind: str, vocab: Vocab | None, feature_dirs: Sequence[str],
               videos: Sequence[str] = (), read: Iterable[str | Path] | None = None) -> dict:
    """Model kind, vocabularies, data files and feature settings by sha256, the recipe flags, and the
    fingerprint of the feature files of ``videos`` (a file changed in place is not resumed over).

    ``read``: the feature files the run reads, when they are not <feature_dir>/<video_id>.npy;
    ``args.recipe_flags``: the flags a resumed run must share (its config's, avqa.tasks.config.EngineConfig).
    """
    vocab_hash = None
    if vocab is not None:
        vocab_hash = hashlib.sha256("\n".join([*vocab.questions, "", *vocab.answers]).encode()).hexdigest()
    data = {flag: sha256(getattr(args, flag)) for flag in ("label_train", "label_val")}
    if read is None:
        read = (Path(d) / f"{v}.npy" for d in feature_dirs for v in sorted(set(videos)))
    read = fingerprint(read)
    return {"model": model_kind, "vocab_sha256": vocab_hash, "data_sha256": data,
            "features_metadata_sha256": metadata_digests(feature_dirs), "features_read": read,
            "recipe": {k: getattr(args, k) for k in args.recipe_flags
                       if getattr(args, k, None) is not None}}


def metadata_digests(feature_dirs: Sequence[str]) -> list[str | None]:
    """The sha256 of each feature folder's metadata file (None where it has none), as a run records them."""
    return [sha256(metadata_path(d)) if metadata_path(d).is_file() else None for d in feature_dirs]


def record_differences(then: dict, now: dict) -> list[str]:
    """What differs between the record of a checkpoint and this run, in words (empty: the same run)."""
    out = []
    if then.get("model") != now["model"]:
        return [f"the model ('{then.get('model')}' then, '{now['model']}' now)"]
    if then.get("vocab_sha256") != now["vocab_sha256"]:
        out.append("the vocabularies built from --label_train")
    for flag, digest in now["data_sha256"].items():
        old = then.get("data_sha256", {}).get(flag)
        if old != digest:
            out.append(f"the contents of --{flag} (sha256 {str(old)[:12]} then, {digest[:12]} now)")
    if then.get("features_metadata_sha256") != now["features_metadata_sha256"]:
        out.append("the feature folders' metadata (other backbone weights or settings)")
    if "features_read" in then:  # a record without it is compared on the rest
        changed = changes(then["features_read"], now.get("features_read", {}))
        if changed:
            out.append(f"the feature files ({'; '.join(changed)})")
    for k, v in now["recipe"].items():
        if then.get("recipe", {}).get(k) != v:
            out.append(f"--{k.replace('_', '-') if k == 'batch_size' else k} ({then.get('recipe', {}).get(k)} then, {v} now)")
    return out


def _legacy_record(state: dict, now: dict) -> dict:
    """The record of a checkpoint that carries none: what it holds, the rest taken as now."""
    then = dict(now, model=state.get("model"), recipe={k: state.get("args", {}).get(k, v) for k, v in now["recipe"].items()})
    if "question_vocab" in state:
        then["vocab_sha256"] = hashlib.sha256("\n".join([*state["question_vocab"], "",
                                                         *state["answer_vocab"]]).encode()).hexdigest()
    return then


def _whose(path: Path, state: dict | None) -> str:
    if checkpoint.record_path(path).is_file():
        return f"{path} is the bundled checkpoint"
    if not checkpoint.is_ours(state):
        return f"{path} is a checkpoint this run did not make"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return (f"{path} holds the '{state.get('model')}' model of another run (epoch {state.get('epoch')}, val accuracy "
            f"{state.get('val_accuracy', float('nan')):.2f}, written {when})")


def claim_outputs(args, best_path: Path, last_path: Path, record: dict,
                  rt: Runtime) -> dict | None:
    """Decide, before any file is written, what this run may write; returns the state to resume from.

    --resume continues <checkpoint>_last.pt only if it was started with the same model, vocabularies,
    data files and recipe; otherwise, without --overwrite, no checkpoint already there is replaced.
    """
    if rt.main:
        check_writable(best_path.parent, "--model_save_dir")
        clean_stale_temps(best_path.parent)  # a checkpoint write killed midway
    start_over = (f"start over with --overwrite (it replaces {best_path.name} and {last_path.name}), or train under "
                  f"another --checkpoint name")
    if args.resume and last_path.is_file() and not args.overwrite:
        try:
            state = checkpoint.load_dict(last_path)
            if not checkpoint.is_ours(state) or "optimizer" not in state:
                raise ValueError(f"{last_path} is not an epoch checkpoint of this project")
        except ValueError as e:
            kept = f"; {best_path} is kept as it is" if best_path.is_file() else ""
            raise SystemExit(f"cannot resume: {e}{kept}. To go on, {start_over}.") from None
        diffs = record_differences(state.get("run") or _legacy_record(state, record), record)
        if diffs:
            raise SystemExit(f"cannot resume {last_path}: it was started with other settings than this run: "
                             f"{'; '.join(diffs)}. Resume with the settings it was started with, or {start_over}.")
        return state
    existing = [p for p in (best_path, last_path) if p.is_file()]
    if not existing:
        return None
    if args.overwrite:
        if rt.main:
            last_path.unlink(missing_ok=True)  # a kill before the first epoch ends must not resume the old run
            print(f"--overwrite: replacing {', '.join(str(p) for p in existing)}", file=sys.stderr)
        return None
    try:
        state = checkpoint.load_dict(existing[0])
    except ValueError:
        state = None
    if args.resume and state is not None and state.get("run") and not record_differences(state["run"], record):
        return None  # this run's own best checkpoint, killed before its first _last.pt was written
    hint = "continue it with --resume, " if last_path.is_file() else ""
    raise SystemExit(f"{_whose(existing[0], state)}; this run would write over it. To keep it, {hint}train under "
                     f"another name with --checkpoint NAME (and test with the same --checkpoint); to replace it, "
                     f"pass --overwrite.")
