"""Small shared helpers: atomic file writes, stale temporary files, hashing, device choice."""
from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

# temporary names: ".<final name>.<pid>.<random>.tmp" (files) or ".<final name>.<pid>.tmpdir" (folders)
_UMASK = os.umask(0)
os.umask(_UMASK)
_TEMP = re.compile(r"^\..+\.(\d+)\.(?:[^.]+\.tmp|tmpdir)$")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds.

    A run killed at any moment leaves either the old file or the complete new one, never a
    half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Like atomic_path for a folder: fill the yielded folder, it is renamed to ``path`` at the end."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmpdir")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_save(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: str | Path) -> int:
    """Remove temporary files left in ``folder`` by runs that were killed; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed += 1
    return removed


def relative_hint(path: str | Path) -> str:
    """For a "not found" message: where a relative path was looked for (scripts run from another
    folder read their default paths from there); empty for an absolute path."""
    if Path(path).is_absolute():
        return ""
    return (f" (relative paths are read from the current folder, {os.getcwd()}: run from the repository root or "
            f"give an absolute path)")


def torch_load(path: str | Path):
    """torch.load(weights_only=True) on the CPU; a damaged or foreign file is a ValueError saying so."""
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated archive, a pickle of other objects, not PyTorch at all
        text = str(e)
        why = ("not a PyTorch checkpoint of tensors" if "Weights only load failed" in text
               else text.splitlines()[0].split(". ")[0] if text else type(e).__name__)
        raise ValueError(f"{path} cannot be read: {why} (a damaged, truncated or foreign file)") from None


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def pick_device(requested: str | None) -> str:
    """--device: the one asked for (refused when CUDA is asked for and absent), else CUDA when present."""
    import torch
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but no CUDA device is visible")
    return device


def progress(iterable=None, **kwargs):
    """A tqdm progress bar on a terminal; on a log file, silence (the step's summary line says it all).

    Set AVQA_PROGRESS=1 to force bars into a non-terminal stream.
    """
    import sys

    from tqdm import tqdm
    if kwargs.pop("disable", False):
        kwargs["disable"] = True
    elif os.environ.get("AVQA_PROGRESS") != "1" and not sys.stderr.isatty():
        kwargs["disable"] = True
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def metadata_path(feature_dir: str | Path) -> Path:
    """The metadata file beside a feature folder: data/feats/res18_14x14 -> data/feats/res18_14x14.json."""
    feature_dir = Path(feature_dir)
    return feature_dir.parent / f"{feature_dir.name}.json"


def checkpoint_record(checkpoint: str | Path) -> Path:
    """The record beside a shipped checkpoint (the set, features and figure it was made with):
    net_grd_avst/avst_models/avst.pt -> net_grd_avst/avst_models/avst_recorded.json."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}_recorded.json")


def at_least(low: float, kind: type = int, above: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` that refuses values below ``low`` (or equal to it, with ``above``), and NaN."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'' if kind is int else ' real'} number") from None
        if (isinstance(value, float) and not math.isfinite(value)) or value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"must be {'above' if above else 'at least'} {low}, not {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


_ENVIRONMENT = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.EROFS: "the file system is read-only", errno.ENOTDIR: "a part of the path is a file, not a folder",
                errno.EISDIR: "it is a folder, not a file", errno.ENOSPC: "the disk is full",
                errno.EDQUOT: "the disk quota is exhausted", errno.EEXIST: "a file of that name is in the way", errno.ENAMETOOLONG: "the name is too long"}


def user_errors(main: Callable) -> Callable:
    """Entry points: a file the user's flags point at that cannot be written or read (read-only or full
    disk, a file where a folder should be) ends the run with one sentence, not a traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except OSError as e:
            if e.errno not in _ENVIRONMENT or not e.filename:
                raise
            raise SystemExit(f"cannot use {e.filename}: {_ENVIRONMENT[e.errno]}. Point the flag that names it "
                             f"(see --help) at a place this user can write, or free some space.") from None
    return wrapper


def check_writable(folder: str | Path, flag: str) -> None:
    """Before any work: make ``folder`` and prove a file can be created in it, or stop naming ``flag``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".write-test.{os.getpid()}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = _ENVIRONMENT.get(e.errno, e.strerror)
        raise SystemExit(f"{flag} {folder}: cannot write there ({why}); choose a writable folder") from None
