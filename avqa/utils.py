"""Small shared helpers: atomic file writes, stale temporary files, hashing, device choice, the
fingerprint of what a run reads, the lock of a folder a run writes, and the exit-status convention."""
from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import math
import json
import os
import re
import socket
import sys
import time
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

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


def file_kind(path: str | Path) -> str:
    """What a file that PyTorch cannot read looks like, from its first bytes: for a message that says so."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive that is not a complete PyTorch file (truncated, or another program's archive)"
    if head[:1] == b"\x80":
        return "a Python pickle that does not hold tensors only"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    for magic, kind in ((b"\x89HDF", "an HDF5 file"), (b"\x1f\x8b", "a gzip archive"), (b"%PDF", "a PDF document")):
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of an unknown kind"
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    kind = "a JSON file" if text.lstrip()[:1] in "{[" else "a text file"
    return f"{kind} (it begins: {first!r})"


def torch_load(path: str | Path, expected: str):
    """torch.load(weights_only=True) on the CPU; a damaged or foreign file is a ValueError that says what
    kind of file it is and (``expected``) what the file should be."""
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated archive, a pickle of other objects, not PyTorch at all
        if "Weights only load failed" in str(e):
            why = "a PyTorch file of other objects than tensors (perhaps a whole pickled model)"
        else:
            why = file_kind(path)
        raise ValueError(f"{path} cannot be read: it is {why}. {expected}") from None


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


def os_reason(e: OSError) -> str:
    """Why a file could not be read or written, in the words of these messages ("the disk is full")."""
    return _ENVIRONMENT.get(e.errno, e.strerror or str(e))


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
        raise SystemExit(f"{flag} {folder}: cannot write there ({os_reason(e)}); choose a writable folder") from None


# ----------------------------------------------------------------------------- exit status

EXIT_CODES = ("exit status: 0 done; 1 a file or folder it names is missing, unreadable, of the wrong kind or in use "
              "by another run, or the run failed; 2 the command line is wrong (an unknown flag, a value out of "
              "range, flags that conflict, a question with words the model does not know). See "
              "docs/troubleshooting.md.")
USAGE = 2


# ----------------------------------------------------------------------------- is this output still current?


def file_stamp(path: str | Path) -> list[int] | None:
    """[size, modification time in ns] of a file, None when it is absent: a change in place shows in one of them."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def fingerprint(paths: Iterable[str | Path]) -> dict[str, list[int] | None]:
    """The stamp of every file a run reads: each file given, and every visible file under each folder given.

    Stat only, never a hash: a feature folder of the real data holds 9,288 files of up to 24 MB.
    """
    out: dict[str, list[int] | None] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        out[os.path.join(root, name)] = file_stamp(os.path.join(root, name))
        else:
            out[str(path)] = file_stamp(path)
    return out


def _names(paths: list[str], limit: int = 5) -> str:
    return ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def changes(then: dict | None, now: dict) -> list[str]:
    """What differs between two fingerprints, in words (empty: the same files, as they were)."""
    if then is None:
        return ["no fingerprint of the files it read was recorded"]
    changed = [p for p in now if p in then and then[p] != now[p] and now[p] is not None and then[p] is not None]
    added = [p for p in now if now[p] is not None and then.get(p) is None]
    gone = [p for p in then if then[p] is not None and now.get(p) is None]
    out = []
    if changed:
        out.append(f"{len(changed)} file(s) changed since (size or modification time): {_names(changed)}")
    if added:
        out.append(f"{len(added)} file(s) new: {_names(added)}")
    if gone:
        out.append(f"{len(gone)} file(s) gone: {_names(gone)}")
    return out


# ----------------------------------------------------------------------------- one run per output folder

_HELD: dict[Path, int] = {}   # lock files this process holds, and how many times it took each


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _me() -> dict:
    """What a lock or a reading mark says of this process."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


@contextmanager
def reading(folder: str | Path) -> Iterator[None]:
    """Mark ``folder`` as read by this run (``.reading.<pid>.lock``) until the block ends, so that an
    extractor's --overwrite of it waits (``readers``). Many runs may read one folder; a folder that is
    missing or that this user cannot write gets no mark."""
    path = Path(folder) / f".reading.{os.getpid()}.lock"
    key = path.absolute()
    if key not in _HELD:
        try:  # a mark of this name already there was left by a killed process that had this process id
            fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o666 & ~_UMASK)
        except OSError:
            yield
            return
        with os.fdopen(fd, "w") as f:
            json.dump(_me(), f)
    _HELD[key] = _HELD.get(key, 0) + 1
    try:
        yield
    finally:
        _HELD[key] -= 1
        if not _HELD[key]:
            del _HELD[key]
            path.unlink(missing_ok=True)


def readers(folder: str | Path) -> list[dict]:
    """The other runs that read ``folder`` now (their reading marks); marks of ended processes are removed."""
    found = []
    for mark in sorted(Path(folder).glob(".reading.*.lock")):
        other = _read_lock(mark)
        pid, host = other.get("pid"), other.get("host")
        if pid == os.getpid() and host == socket.gethostname():
            continue
        if host == socket.gethostname() and (not isinstance(pid, int) or not _alive(pid)):
            mark.unlink(missing_ok=True)
            continue
        found.append({**other, "mark": str(mark)})
    return found


def _take(path: Path, folder: Path, me: dict) -> None:
    """Create the lock file ``path`` holding ``me``: a live run's lock stops this one, one left by a process
    that no longer runs is taken over (run_lock)."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_UMASK)
        except FileExistsError:
            other = _read_lock(path)
            pid, host = other.get("pid"), other.get("host")
            if not isinstance(pid, int) or not other:
                time.sleep(0.2)  # being written by the run that just took it
                other = _read_lock(path)
                pid, host = other.get("pid"), other.get("host")
            if isinstance(pid, int) and host not in (None, me["host"]):
                raise SystemExit(f"{folder} is being written by process {pid} on host {host} (since "
                                 f"{other.get('started')}): wait for it to end, or choose another folder; if that run "
                                 f"is gone, delete {path}")
            if isinstance(pid, int) and _alive(pid):
                raise SystemExit(f"{folder} is being written by another run, process {pid} (since "
                                 f"{other.get('started')}: {other.get('command', '?')}): wait for it to end, or "
                                 f"choose another folder")
            print(f"note: {path} was left by process {pid if isinstance(pid, int) else '(unknown)'}, which no longer "
                  f"runs; taking it over", file=sys.stderr)
            if _read_lock(path) == other:  # not already taken over by a third run meanwhile
                path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise SystemExit(f"{folder}: cannot take {path} (another run keeps taking it); try again")


@contextmanager
def run_lock(folder: str | Path, name: str = "run", flag: str | None = None) -> Iterator[None]:
    """Hold ``<folder>/.<name>.lock`` while a run writes into ``folder``.

    Another live run holding it stops this one with one sentence naming that run's process id and the
    folder; a lock left by a process that no longer runs (killed, or the machine restarted) is taken
    over, and said so. The lock is released however the block ends (an error, Ctrl-C). A process may
    take its own lock again (the main job trains into folders of its own output folder). ``flag``: the
    flag that names the folder, for the message when it cannot be written.
    """
    folder = Path(folder)
    made = not folder.exists()
    check_writable(folder, flag or "the output folder")
    path = (folder / f".{name}.lock").resolve()
    if path in _HELD:
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    me = _me()
    _take(path, folder, me)
    _HELD[path] = 1
    try:
        yield
    finally:
        del _HELD[path]
        if _read_lock(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
        if made:  # a run refused before it wrote anything leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:
                pass
