"""Reading feature files: one folder of per-video ``.npy`` arrays, a second at a time (pread).

Features stay in their per-video files, which stay open; a read copies only the seconds it asks
for. The folder's files are checked once per run (present, one shape, finite), and the finiteness
scan is remembered beside the folder (``verified_path``), so a large real-data folder is scanned once.
"""
from __future__ import annotations

import collections
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .utils import atomic_write_text, file_stamp, metadata_path, progress


class FeatureError(ValueError):
    """A feature file that is missing, of the wrong shape, or not finite (named in the message)."""


def _open_file_budget() -> int:
    """How many feature files one store keeps open: a quarter of the soft limit on open files (raised to
    the hard limit first), so the audio and visual stores of a run together use at most half."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            except (ValueError, OSError):
                pass
        return max(16, soft // 4)
    except ImportError:
        return 256


def memory_holds(nbytes: int, fraction: float = 0.5) -> bool:
    """Whether ``nbytes`` fit in ``fraction`` of this machine's memory (True where it cannot be known)."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return nbytes <= memory * fraction


def page_cache_holds(nbytes: int) -> bool:
    """Whether ``nbytes`` of features read again and again can stay in the page cache (half the memory)."""
    return memory_holds(nbytes, 0.5)


HOLD_FRACTION = 0.25  # FeatureStore.hold keeps a run's features in memory when they fit in a quarter of it


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` file's header says: the array's shape, order and dtype, and where its data starts."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int

    @property
    def file_bytes(self) -> int:
        """The size of a complete file: header and data."""
        return self.offset + self.dtype.itemsize * int(np.prod(self.shape))


def read_npy_header(path: str | Path) -> NpyHeader:
    """The header of a ``.npy`` file; ValueError (or OSError) for a file that is not one."""
    with open(path, "rb") as fp:
        version = np.lib.format.read_magic(fp)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fp)
        return NpyHeader(tuple(shape), bool(fortran), dtype, fp.tell())


def verified_path(folder: str | Path) -> Path:
    """Where a feature folder's record of the files found finite lives: ``<folder>.verified.json`` beside it."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}.verified.json"


@dataclass
class _File:
    fd: int
    offset: int           # where the data starts, after the .npy header
    length: int           # T, seconds in the file
    dtype: np.dtype
    row_bytes: int        # bytes of one second


class FeatureStore:
    """One folder of ``<video_id>.npy`` arrays [seconds, ...], read one second at a time with pread.

    A read copies the bytes of each second it needs from the file (through the kernel's page cache)
    into the caller's buffer: no memory maps, so resident memory does not grow with the dataset,
    and no page faults, which on the real data's 9,288 files cost more than the model step. Files
    stay open (least recently used ones are closed beyond ``max_open``).

    When the folder holds more features than the page cache can hold (the real data's 9,288 videos),
    each second read is dropped from the cache at once (``drop_pages``): nothing read would still be
    there when read again, and handing the kernel its pages back is cheaper than making it reclaim
    them (faster reads: docs/scale.md, measured by benchmarks/bench_scale.py). The policy
    is decided here, from the folder's files, unless ``drop_pages`` is given.

    A run whose features fit in a quarter of the memory (the synthetic set's, a small subset's) holds
    them there instead (``hold``), laid out as its batches are.
    """

    def __init__(self, folder: str | Path, per_second_shape: tuple[int, ...], max_open: int | None = None,
                 drop_pages: bool | None = None):
        self.folder = Path(folder)
        self.per_second_shape = tuple(per_second_shape)
        # features extracted with --used_seconds hold only some seconds (the others are holes that read
        # as zeros): their metadata lists them, and a read of any other second is an error
        self.computed: np.ndarray | None = None
        try:
            listed = json.loads(metadata_path(self.folder).read_text()).get("seconds_computed")
        except (OSError, ValueError, AttributeError):
            listed = None
        if isinstance(listed, list):
            self.computed = np.array(sorted(listed), dtype=np.int64)
        self._mask: np.ndarray | None = None
        self.max_open = max_open or _open_file_budget()
        self._open: collections.OrderedDict[str, _File] = collections.OrderedDict()
        self._local = threading.local()  # a scratch row per reading thread
        self.drop_pages = self._larger_than_page_cache() if drop_pages is None else drop_pages
        self._held: dict[str, np.ndarray] = {}  # video -> all its seconds, in memory (hold)

    def path(self, video_id: str) -> Path:
        return self.folder / f"{video_id}.npy"

    def _larger_than_page_cache(self) -> bool:
        """Whether the seconds the folder's files hold (those computed, for --used_seconds files) would not
        stay in the page cache; the size of one file's seconds is taken as every file's."""
        if not hasattr(os, "posix_fadvise") or not self.folder.is_dir():
            return False
        files = [e.path for e in os.scandir(self.folder) if e.name.endswith(".npy") and not e.name.startswith(".")]
        try:
            header = read_npy_header(files[0]) if files else None
        except (ValueError, OSError, EOFError):
            return False  # check names the file; the policy does not matter for a run that stops there
        if header is None or len(header.shape) != 1 + len(self.per_second_shape):
            return False
        rows = len(self.computed) if self.computed is not None else header.shape[0]
        return not page_cache_holds(len(files) * rows * header.dtype.itemsize * int(np.prod(self.per_second_shape)))

    def _file(self, video_id: str) -> _File:
        f = self._open.get(video_id)
        if f is not None:
            self._open.move_to_end(video_id)
            return f
        path = self.path(video_id)
        h = read_npy_header(path)
        if h.fortran or tuple(h.shape[1:]) != self.per_second_shape:
            raise FeatureError(f"{path}: shape {list(h.shape)}, expected [T, {', '.join(map(str, self.per_second_shape))}]")
        f = _File(os.open(path, os.O_RDONLY), h.offset, h.shape[0], h.dtype,
                  h.dtype.itemsize * int(np.prod(self.per_second_shape)))
        self._open[video_id] = f
        if len(self._open) > self.max_open:
            os.close(self._open.popitem(last=False)[1].fd)  # close the least recently used file
        return f

    def __del__(self):
        for f in getattr(self, "_open", {}).values():
            try:
                os.close(f.fd)
            except OSError:
                pass

    def __getstate__(self):  # loader workers open their own files, and read them rather than copy what is held
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()
        state["_local"] = None
        state["_held"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state, _local=threading.local())

    def seconds(self, video_id: str) -> int:
        return self._file(video_id).length

    def read(self, video_id: str, seconds) -> np.ndarray:
        out = torch.empty((*np.shape(seconds), *self.per_second_shape))
        self.read_into(out, video_id, seconds)
        return out.numpy()

    def missing_seconds(self, seconds) -> list[int]:
        """Which of ``seconds`` the files do not hold (always none for files of every second)."""
        if self.computed is None:
            return []
        return sorted(set(int(s) for s in np.atleast_1d(seconds)) - set(self.computed.tolist()))

    def _check_computed(self, video_id: str, seconds, length: int) -> None:
        if self._mask is None:
            self._mask = np.zeros(length, bool)
            self._mask[self.computed[self.computed < length]] = True
        wanted = np.atleast_1d(seconds)
        if not self._mask[wanted].all():
            s = int(wanted[~self._mask[wanted]][0])
            raise FeatureError(f"{self.path(video_id)}: second {s} was not computed (the folder was extracted with "
                               f"--used_seconds and holds seconds {self.computed.tolist()}); extract again without "
                               f"--used_seconds, or with the --segments this run uses")

    def hold(self, video_ids: Sequence[str], buffer: Callable[[int], torch.Tensor] | None = None) -> bool:
        """Keep every second of these videos in memory, each video's [T, ...] laid out as ``buffer(T)`` lays it
        out (default: contiguous float32), when they fit in a quarter of the machine's memory (shared by
        torchrun's processes); returns whether they are held.

        A training run reads each second once an epoch and again as other videos' negatives; from memory, in the
        layout of the batch it is copied into, a read is one plain copy instead of a file read and a copy that
        transposes (channels-first files, channels-last batches). The real data's 9,288 videos never fit.
        """
        videos = sorted(set(video_ids) - set(self._held))
        if not videos:
            return True
        if buffer is None:
            buffer = lambda T: torch.empty((T, *self.per_second_shape))  # noqa: E731
        sample = buffer(self._file(videos[0]).length)
        nbytes = sample.element_size() * sample.numel() * (len(videos) + len(self._held))
        if not memory_holds(nbytes, HOLD_FRACTION / int(os.environ.get("LOCAL_WORLD_SIZE", "1"))):  # torchrun's processes
            return False
        for vid in videos:
            held = buffer(self._file(vid).length)
            rows = np.arange(len(held)) if self.computed is None else self.computed[self.computed < len(held)]
            if self.computed is not None:
                held.zero_()  # the seconds not computed read as zeros from the file too, but are never asked for
            for sec in rows:
                self.read_into(held[sec], vid, sec)
            self._held[vid] = held.numpy()
        return True

    def read_into(self, out: torch.Tensor, video_id: str, seconds) -> None:
        """Copy the given seconds of a video straight into ``out`` (whatever its layout and dtype)."""
        f = self._file(video_id)
        if self.computed is not None:
            self._check_computed(video_id, seconds, f.length)
        scalar = np.ndim(seconds) == 0
        rows = [int(seconds)] if scalar else [int(x) for x in seconds]
        for sec in rows:
            if not 0 <= sec < f.length:
                raise FeatureError(f"{self.path(video_id)}: second {sec} asked for, the file holds {f.length}")
        target = out.numpy()
        held = self._held.get(video_id)
        if held is not None:
            for k, sec in enumerate(rows):
                np.copyto(target if scalar else target[k], held[sec])  # numpy: one thread, as below
            return
        scratch = getattr(self._local, "row", None)
        if scratch is None or scratch.dtype != f.dtype:
            scratch = self._local.row = np.empty(self.per_second_shape, f.dtype)
        for k, sec in enumerate(rows):
            start = f.offset + sec * f.row_bytes
            if os.preadv(f.fd, [scratch], start) != f.row_bytes:
                raise FeatureError(f"{self.path(video_id)}: truncated (second {sec} cannot be read); extract it again")
            if self.drop_pages:
                os.posix_fadvise(f.fd, start, f.row_bytes, os.POSIX_FADV_DONTNEED)
            np.copyto(target if scalar else target[k], scratch)  # one thread: no pool to wait for

    def check(self, video_ids: Sequence[str], finite: bool = True, name: str = "features") -> int:
        """Every file present, float, [T, *shape] with one T for all, and (optionally) finite.

        Finiteness checks are remembered in ``<folder>.verified.json`` (by file size and mtime), so
        a large real-data folder is scanned once. Returns T.
        """
        problems, lengths = [], collections.Counter()
        by_length: dict[int, list[Path]] = collections.defaultdict(list)
        for vid in sorted(set(video_ids)):
            p = self.path(vid)
            if not p.is_file():
                problems.append(f"{p}: missing (extract it with feat_script, or check the folder flag)")
                continue
            try:
                h = read_npy_header(p)
                if p.stat().st_size < h.file_bytes:
                    raise ValueError(f"{p.stat().st_size} bytes, the header describes {h.file_bytes}")
            except (ValueError, OSError, EOFError) as e:
                problems.append(f"{p}: not a readable .npy file ({e})")
                continue
            if len(h.shape) != 1 + len(self.per_second_shape) or h.shape[1:] != self.per_second_shape:
                problems.append(f"{p}: shape {list(h.shape)}, expected [T, {', '.join(map(str, self.per_second_shape))}]")
                continue
            if h.dtype.kind != "f":
                problems.append(f"{p}: dtype {h.dtype}, expected float32")
                continue
            lengths[h.shape[0]] += 1
            by_length[h.shape[0]].append(p)
        if len(lengths) > 1:  # name the odd files: one short video among 9,288 is otherwise not to be found
            problems.insert(0, self._mixed_lengths(lengths, by_length))
        if problems:
            raise FeatureError(f"{name} in {self.folder}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:20]))
        T = next(iter(lengths)) if lengths else 0
        if finite:
            self._check_finite(sorted(set(video_ids)), name)
        return T

    def _mixed_lengths(self, lengths: collections.Counter, by_length: dict[int, list[Path]]) -> str:
        """The problem of a folder whose files have different T: the files that differ from the length its
        metadata records (``shape_per_video``), else from the most common one; with neither, every file."""
        try:
            recorded = json.loads(metadata_path(self.folder).read_text())["shape_per_video"][0]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            recorded = None
        (top, n_top), (_, n_next) = lengths.most_common(2)
        if recorded in lengths:
            common, which = recorded, f"the T={recorded} that {metadata_path(self.folder)} records"
        elif n_top > n_next:
            common, which = top, f"the T={top} of the others"
        else:
            common, which = None, "each other, and no length is the most common"
        odd = [f"{p}: T={T}" for T in sorted(lengths) if T != common for p in by_length[T]]
        more = f"\n    ... and {len(odd) - 20} more" if len(odd) > 20 else ""
        return (f"{self.folder}: videos have different lengths T {dict(lengths)}; all must have the same. "
                f"{len(odd)} file(s) differ from {which} (extract them again with the same --seconds):\n    "
                + "\n    ".join(odd[:20]) + more)

    def _verified(self) -> dict[str, list[int]]:
        """The record of the files found finite: video -> the file's stamp (utils.file_stamp) then."""
        try:
            cache = json.loads(verified_path(self.folder).read_text())
        except (OSError, ValueError):
            return {}
        return cache if isinstance(cache, dict) else {}

    def unverified(self, video_ids: Sequence[str]) -> list[str]:
        """Those of ``video_ids`` whose file is not recorded as finite as it is now (new, or changed since)."""
        cache = self._verified()
        return [vid for vid in video_ids if cache.get(vid) != file_stamp(self.path(vid))]

    def mark_verified(self, video_ids: Sequence[str]) -> None:
        """Record files as finite without reading them: only for files known to be (a benchmark's copies of
        a file that was scanned)."""
        cache = self._verified()
        cache.update({vid: file_stamp(self.path(vid)) for vid in video_ids})
        atomic_write_text(verified_path(self.folder), json.dumps(cache))

    def _check_finite(self, video_ids: list[str], name: str) -> None:
        cache = self._verified()
        todo = []
        for vid in video_ids:
            stamp = file_stamp(self.path(vid))
            if cache.get(vid) != stamp:
                todo.append((vid, stamp))
        bad = []
        for vid, stamp in progress(todo, desc=f"check {name}", unit="file", disable=len(todo) < 50):
            arr = np.load(self.path(vid), mmap_mode="r")
            rows = self.computed[self.computed < arr.shape[0]] if self.computed is not None else np.arange(arr.shape[0])
            if not all(np.isfinite(arr[rows[i:i + 8]]).all() for i in range(0, len(rows), 8)):
                bad.append(f"{self.path(vid)}: holds NaN or infinite values")
            else:
                cache[vid] = stamp
            del arr
            if self.drop_pages:  # a scan of a folder larger than the cache would only push out what is useful
                fd = os.open(self.path(vid), os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
        if todo:
            try:
                atomic_write_text(verified_path(self.folder), json.dumps(cache))
            except OSError:
                pass  # a read-only feature folder is checked again next time
        if bad:
            raise FeatureError(f"{name} in {self.folder}: {len(bad)} problem(s):\n  " + "\n  ".join(bad[:20]))


def check_stores(stores: dict[str, FeatureStore], video_ids: Sequence[str], finite: bool = True) -> dict[str, int]:
    """FeatureStore.check of every store, keyed by the flag that names its folder: {flag: T}. A SystemExit
    names the flag of the first folder with a problem and the fix."""
    lengths = {}
    for flag, store in stores.items():
        try:
            lengths[flag] = store.check(video_ids, finite=finite, name=f"{flag} features")
        except FeatureError as e:
            raise SystemExit(f"{e} (point {flag} at the folder of these features, or make them again)") from None
    return lengths
