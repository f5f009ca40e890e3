"""Datasets for grounding pre-training and question answering, reading features by slicing.

Features stay in their per-video ``.npy`` files, which stay open; a sample reads (pread) only the
seconds it uses (the sampled seconds of its own video, and one second of another video per
negative). The original loaded the whole 24 MB 14x14 file of a negative
video for each of the 10 negatives of each sample.

Negatives are drawn from a generator seeded by (seed, epoch, sample index), so a run and its
resumption see the same negatives whatever the number of loader workers.
"""
from __future__ import annotations

import collections
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .utils import atomic_write_text, file_stamp, metadata_path, progress
from .annotations import Vocab, type_index

AUDIO_SHAPE = (128,)
VISUAL_SHAPE = (512, 14, 14)


def visual_buffer(*lead: int, pin: bool = False) -> torch.Tensor:
    """[*lead, 512, 14, 14] stored channels-last ([*lead, 14, 14, 512] in memory).

    The spatial grounding reads each position's 512 channels and sums over positions; with the
    channels contiguous both of its matrix products stream through memory.
    """
    n = len(lead)
    return torch.empty((*lead, 14, 14, 512), pin_memory=pin).permute(*range(n), n + 2, n, n + 1)


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


def page_cache_holds(nbytes: int) -> bool:
    """Whether ``nbytes`` of features read again and again can stay in the page cache (half the memory)."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return nbytes <= memory // 2


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

    When ``check`` finds more features than the page cache can hold (the real data's 9,288 videos),
    each second read is dropped from the cache at once (``drop_pages``): nothing read would still be
    there when read again, and handing the kernel its pages back is cheaper than making it reclaim
    them (3 to 5 times faster reads in our measurements, see benchmarks/bench_scale.py).
    """

    def __init__(self, folder: str | Path, per_second_shape: tuple[int, ...], max_open: int | None = None):
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
        self.drop_pages = False

    def path(self, video_id: str) -> Path:
        return self.folder / f"{video_id}.npy"

    def _file(self, video_id: str) -> _File:
        f = self._open.get(video_id)
        if f is not None:
            self._open.move_to_end(video_id)
            return f
        path = self.path(video_id)
        with open(path, "rb") as fp:
            version = np.lib.format.read_magic(fp)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fp)
            offset = fp.tell()
        if fortran or tuple(shape[1:]) != self.per_second_shape:
            raise FeatureError(f"{path}: shape {list(shape)}, expected [T, {', '.join(map(str, self.per_second_shape))}]")
        f = _File(os.open(path, os.O_RDONLY), offset, shape[0], dtype,
                  dtype.itemsize * int(np.prod(self.per_second_shape)))
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

    def __getstate__(self):  # loader workers open their own files
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()
        state["_local"] = None
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

    def read_into(self, out: torch.Tensor, video_id: str, seconds) -> None:
        """Copy the given seconds of a video straight into ``out`` (whatever its layout and dtype)."""
        f = self._file(video_id)
        if self.computed is not None:
            self._check_computed(video_id, seconds, f.length)
        scalar = np.ndim(seconds) == 0
        rows = [int(seconds)] if scalar else [int(x) for x in seconds]
        scratch = getattr(self._local, "row", None)
        if scratch is None or scratch.dtype != f.dtype:
            scratch = self._local.row = np.empty(self.per_second_shape, f.dtype)
        target = out.numpy()
        for k, sec in enumerate(rows):
            if not 0 <= sec < f.length:
                raise FeatureError(f"{self.path(video_id)}: second {sec} asked for, the file holds {f.length}")
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
        problems, lengths, row_bytes = [], collections.Counter(), 0
        by_length: dict[int, list[Path]] = collections.defaultdict(list)
        for vid in sorted(set(video_ids)):
            p = self.path(vid)
            if not p.is_file():
                problems.append(f"{p}: missing (extract it with feat_script, or check the folder flag)")
                continue
            try:
                arr = np.load(p, mmap_mode="r")
            except (ValueError, OSError, EOFError) as e:
                problems.append(f"{p}: not a readable .npy file ({e})")
                continue
            if arr.ndim != 1 + len(self.per_second_shape) or arr.shape[1:] != self.per_second_shape:
                problems.append(f"{p}: shape {list(arr.shape)}, expected [T, {', '.join(map(str, self.per_second_shape))}]")
                continue
            if arr.dtype.kind != "f":
                problems.append(f"{p}: dtype {arr.dtype}, expected float32")
                continue
            lengths[arr.shape[0]] += 1
            by_length[arr.shape[0]].append(p)
            row_bytes = max(row_bytes, arr.dtype.itemsize * int(np.prod(self.per_second_shape)))
        if len(lengths) > 1:  # name the odd files: one short video among 9,288 is otherwise not to be found
            common = lengths.most_common(1)[0][0]
            odd = [f"{p}: T={T}" for T in sorted(lengths) if T != common for p in by_length[T]]
            more = f"\n    ... and {len(odd) - 20} more" if len(odd) > 20 else ""
            problems.insert(0, f"{self.folder}: videos have different lengths T {dict(lengths)}; all must have the same. "
                            f"{len(odd)} file(s) differ from the T={common} of the others (extract them again with "
                            f"the same --seconds):\n    " + "\n    ".join(odd[:20]) + more)
        if problems:
            raise FeatureError(f"{name} in {self.folder}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:20]))
        T = next(iter(lengths)) if lengths else 0
        rows = len(self.computed) if self.computed is not None else T
        self.drop_pages = hasattr(os, "posix_fadvise") and not page_cache_holds(sum(lengths.values()) * rows * row_bytes)
        if finite:
            self._check_finite(sorted(set(video_ids)), name)
        return T

    def _check_finite(self, video_ids: list[str], name: str) -> None:
        cache_path = self.folder.parent / f"{self.folder.name}.verified.json"
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
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
                atomic_write_text(cache_path, json.dumps(cache))
            except OSError:
                pass  # a read-only feature folder is checked again next time
        if bad:
            raise FeatureError(f"{name} in {self.folder}: {len(bad)} problem(s):\n  " + "\n  ".join(bad[:20]))


def segment_seconds(total_seconds: int, segments: int = 10) -> np.ndarray:
    """The seconds a model sees: every (T // segments)-th second, e.g. [::6] for T = 60."""
    stride = max(1, total_seconds // segments)
    return np.arange(0, total_seconds, stride)[:segments]


GROUNDING_SECONDS = 10  # grounding pre-training reads the first 10 seconds of each video


def used_seconds(total_seconds: int, segments: int = 10) -> list[int]:
    """Every second a model here reads: AVST's (every T // segments-th) and grounding's (the first 10).

    18 of 60 for the real data; AVST's negatives are then drawn from these seconds too.
    """
    return sorted(set(segment_seconds(total_seconds, segments).tolist())
                  | set(range(min(GROUNDING_SECONDS, total_seconds))))


@dataclass
class QASplit:
    samples: list[dict]
    questions: torch.Tensor      # [N, 14] word ids
    answers: torch.Tensor        # [N]
    types: torch.Tensor          # [N] index into QUESTION_TYPES


def encode_split(samples: list[dict], vocab: Vocab, path: str | Path) -> QASplit:
    q, a = vocab.encode(samples, path)
    return QASplit(samples, torch.tensor(q, dtype=torch.long), torch.tensor(a, dtype=torch.long),
                   torch.tensor([type_index(s) for s in samples], dtype=torch.long))


class AVQADataset:
    """Questions with the features of their sampled seconds; batches are filled by slicing.

    ``batch(indices)`` writes each array of the batch once, straight from the memory maps into
    preallocated buffers: audio [B,T,128], visual_posi and visual_nega [B,T,512,14,14],
    question [B,14], label, type and index [B].
    """

    def __init__(self, split: QASplit, audio: FeatureStore | None, visual: FeatureStore | None,
                 total_seconds: int, segments: int = 10, negatives: bool = False, seed: int = 1):
        self.split = split
        self.audio, self.visual = audio, visual
        self.total_seconds = total_seconds
        self.seconds = segment_seconds(total_seconds, segments) if total_seconds else np.arange(segments)
        self.negatives = negatives
        # a negative is one random second of another video: of all T, or of those computed (--used_seconds)
        self.negative_seconds = (visual.computed[visual.computed < total_seconds]
                                 if visual is not None and visual.computed is not None else None)
        self.seed = seed
        self.epoch = 0
        self.videos = sorted({s["video_id"] for s in split.samples})
        self._video_index = {v: i for i, v in enumerate(self.videos)}
        if negatives and len(self.videos) < 2:
            raise ValueError("negatives need at least two videos in the split")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def negatives_of(self, index: int, video_id: str) -> list[tuple[str, int]]:
        """(video, second) of one random second of another random video, per sampled second."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        own = self._video_index[video_id]
        out = []
        for _ in range(len(self.seconds)):
            other = int(rng.integers(len(self.videos) - 1))
            other += other >= own
            if self.negative_seconds is None:
                out.append((self.videos[other], int(rng.integers(self.total_seconds))))
            else:
                out.append((self.videos[other], int(self.negative_seconds[rng.integers(len(self.negative_seconds))])))
        return out

    def buffers(self, batch_size: int, pin: bool = False) -> dict[str, torch.Tensor]:
        T = len(self.seconds)
        out = {}
        if self.audio is not None:
            out["audio"] = torch.empty((batch_size, T, *AUDIO_SHAPE), pin_memory=pin)
        if self.visual is not None:
            out["visual_posi"] = visual_buffer(batch_size, T, pin=pin)
            if self.negatives:
                out["visual_nega"] = visual_buffer(batch_size, T, pin=pin)
        return out

    def batch(self, indices: Sequence[int], buffers: dict[str, torch.Tensor] | None = None) -> dict:
        """The batch of ``indices``; feature arrays are written into ``buffers`` when given."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        B = len(idx)
        bufs = buffers if buffers is not None else self.buffers(B)
        out = {k: v[:B] for k, v in bufs.items()}
        out.update({"question": self.split.questions[idx], "label": self.split.answers[idx],
                    "type": self.split.types[idx], "index": idx})
        for b, i in enumerate(idx.tolist()):
            vid = self.split.samples[i]["video_id"]
            if self.audio is not None:
                self.audio.read_into(out["audio"][b], vid, self.seconds)
            if self.visual is not None:
                self.visual.read_into(out["visual_posi"][b], vid, self.seconds)
                if self.negatives:
                    for t, (other, second) in enumerate(self.negatives_of(i, vid)):
                        self.visual.read_into(out["visual_nega"][b, t], other, second)
        return out


def real_videos(samples: list[dict]) -> list[str]:
    """Videos of a split in file order, without the dataset's composed ones ('sa', 'va', ... prefixes)."""
    return list(dict.fromkeys(s["video_id"] for s in samples if s["video_id"].isdigit()))


class GroundingDataset:
    """One item per (video, second) of the first ``seconds`` seconds of each video.

    The sound of second s with the frame of second s (label 1) and with a random one of the first
    ``seconds`` frames of another video (label 0): audio [B,2,128], visual [B,2,512,14,14].
    """

    def __init__(self, videos: list[str], audio: FeatureStore, visual: FeatureStore, seconds: int = 10,
                 seed: int = 1):
        if len(videos) < 2:
            raise ValueError("grounding needs at least two videos")
        self.videos, self.audio, self.visual = videos, audio, visual
        self.seconds, self.seed, self.epoch = seconds, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) * self.seconds

    def pair(self, index: int) -> tuple[str, int, str, int]:
        v, s = divmod(index, self.seconds)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        other = int(rng.integers(len(self.videos) - 1))
        other += other >= v
        return self.videos[v], s, self.videos[other], int(rng.integers(self.seconds))

    def buffers(self, batch_size: int, pin: bool = False) -> dict[str, torch.Tensor]:
        return {"audio": torch.empty((batch_size, 2, *AUDIO_SHAPE), pin_memory=pin),
                "visual": visual_buffer(batch_size, 2, pin=pin)}

    def batch(self, indices: Sequence[int], buffers: dict[str, torch.Tensor] | None = None) -> dict:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        B = len(idx)
        bufs = buffers if buffers is not None else self.buffers(B)
        audio, visual = bufs["audio"][:B], bufs["visual"][:B]
        for b, i in enumerate(idx.tolist()):
            vid, s, other, neg_second = self.pair(i)
            self.audio.read_into(audio[b, 0], vid, s)
            audio[b, 1] = audio[b, 0]
            self.visual.read_into(visual[b, 0], vid, s)
            self.visual.read_into(visual[b, 1], other, neg_second)
        return {"audio": audio, "visual": visual, "label": torch.tensor([[1, 0]] * B), "index": idx}


class BatchLoader:
    """Batches of a dataset in sampler order, filled by ``dataset.batch`` in a prefetch thread.

    Slicing memory maps into a small ring of reused buffers costs one copy per byte and no page
    faults; loader processes would add a second copy through shared memory, which on a small
    machine is slower than the model step itself. A yielded batch stays valid until the next
    one is taken (its feature tensors are then reused).
    """

    def __init__(self, dataset, batch_size: int, sampler, prefetch: int = 2, pin: bool = False):
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.prefetch, self.pin = max(0, prefetch), pin
        self._ring: list[dict] = []

    def __len__(self) -> int:
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

    def _chunks(self):
        order = list(iter(self.sampler))
        for k in range(0, len(order), self.batch_size):
            yield order[k:k + self.batch_size]

    def _buffers(self, n: int) -> dict:
        while len(self._ring) <= n:
            self._ring.append(self.dataset.buffers(self.batch_size, self.pin))
        return self._ring[n]

    def __iter__(self):
        ring = self.prefetch + 2  # batch in use + prefetched ones + the one being filled
        if self.prefetch == 0:
            for n, chunk in enumerate(self._chunks()):
                yield self.dataset.batch(chunk, self._buffers(n % 2))
            return
        import concurrent.futures as cf
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            pending: collections.deque = collections.deque()
            for n, chunk in enumerate(self._chunks()):
                pending.append(pool.submit(self.dataset.batch, chunk, self._buffers(n % ring)))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
