"""Running a backbone over many clips: the jobs, their order and batches, the background decoding,
and the runner that puts a backbone on a device."""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from ..media import MediaError
from ..utils import clean_stale_temps, progress
from . import backbones as B
from .files import Report, Source, save_npy, valid_npy


@dataclass
class Job:
    """One clip to run through a backbone."""

    key: str       # video id, the output's stem
    source: Path   # video file, audio file or frame folder
    group: int = 0  # clips of one group go through the network together (batched mode)
    mirror: bool = False  # the source's frames mirrored left-right (a _flip video)


def network_jobs(inputs: list[Source], rows_per_clip: int, batch_rows: int,
                 shard: tuple[int, int] | None) -> list[Job]:
    """Jobs in sorted order, grouped into fixed runs of consecutive clips that fill about ``batch_rows``
    rows; a shard takes whole groups. Each clip then meets the same batch whether one process or N
    shards do the folder, so their outputs are byte for byte the same."""
    size = max(1, batch_rows // max(1, rows_per_clip))
    jobs = [Job(s.key, s.path, i // size, s.mirror) for i, s in enumerate(inputs)]
    if shard is None:
        return jobs
    k, n = shard
    return [j for j in jobs if j.group % n == k]


def _in_threads(jobs: Sequence[Job], work: Callable[[Job], object], threads: int, ahead: int | None = None):
    """Yield (job, result or exception) in order; ``threads`` threads work up to ``ahead`` jobs ahead.

    ``threads`` 0, or ``ahead`` 0, runs each job in the calling thread when it is asked for.
    """
    ahead = threads if ahead is None else ahead
    if threads <= 0 or ahead <= 0:
        for job in jobs:
            try:
                yield job, work(job)
            except Exception as e:  # noqa: BLE001 - reported per file by the caller
                yield job, e
        return
    with cf.ThreadPoolExecutor(max_workers=threads) as pool:
        pending = [pool.submit(work, j) for j in jobs[:ahead + 1]]
        for i, job in enumerate(jobs):
            fut = pending[i]
            if i + ahead + 1 < len(jobs):
                pending.append(pool.submit(work, jobs[i + ahead + 1]))
            try:
                yield job, fut.result()
            except Exception as e:  # noqa: BLE001
                yield job, e
            pending[i] = None  # free the loaded data


def unfinished(jobs: list[Job], out_dir: Path, shape: tuple[int, ...], dtype, report: Report) -> list[Job]:
    """The jobs whose output is not complete yet; the others are counted as skipped."""
    todo = []
    for job in jobs:
        if valid_npy(out_dir / f"{job.key}.npy", shape, dtype):
            report.skipped += 1
        else:
            todo.append(job)
    return todo


@dataclass
class _Writer:
    """run_network's saving: each clip's features checked against the shape the network computes (``rows``
    of ``shape``) and saved; ``waiting``: a group's network inputs, run through ``compute`` together on
    ``flush``."""

    out_dir: Path
    shape: tuple[int, ...]
    dtype: object
    rows: Sequence[int] | None
    report: Report
    compute: Callable[[object], np.ndarray]
    waiting: list[tuple[Job, object]] = field(default_factory=list)

    def save(self, job: Job, features: np.ndarray) -> None:
        computed = (len(self.rows), *self.shape[1:]) if self.rows is not None else self.shape
        if features.shape != computed:
            self.report.fail(job.source, f"produced shape {features.shape}, expected {computed}")
            return
        save_npy(self.out_dir / f"{job.key}.npy", features, self.dtype, self.rows, self.shape[0])
        self.report.done += 1

    def flush(self) -> None:
        if not self.waiting:
            return
        import torch
        out = self.compute(torch.cat([p for _, p in self.waiting]))
        start = 0
        for job, payload in self.waiting:
            self.save(job, out[start:start + len(payload)])
            start += len(payload)
        self.waiting.clear()


def run_network(name: str, jobs: list[Job], out_dir: Path, shape: tuple[int, ...],
                load: Callable[[Job], tuple[object, list[str]]], compute: Callable[[object], np.ndarray],
                prefetch: int, report: Report, batch_rows: int = 64, per_core: bool = False,
                rows: Sequence[int] | None = None, dtype=np.float32) -> Report:
    """``load`` returns a clip's network input and notes to report as warnings.

    ``rows``: ``load`` returns only these seconds, and the file keeps ``shape`` (see save_npy);
    ``dtype``: the stored precision.

    By default clips loaded ahead in a background thread are gathered by group (network_jobs: about
    ``batch_rows`` frames or seconds of sound), run through the network together, and saved one by one.
    With ``per_core`` (video on the CPU), each of N threads (N = torch's thread count) takes whole
    clips: decode, network on one core; the main thread saves. There a decoder thread beside a
    network that already uses every core only fights it for the cores, while VGGish's small inputs
    run better batched (docs/speed.md, Feature extraction).
    """
    import torch
    clean_stale_temps(out_dir)
    todo = unfinished(jobs, out_dir, shape, dtype, report)
    writer = _Writer(out_dir, shape, dtype, rows, report, compute)
    last_of_group = {j.group: j.key for j in todo}

    def whole_clip(job: Job):
        payload, notes = load(job)
        rows = np.concatenate([compute(payload[i:i + batch_rows]) for i in range(0, len(payload), batch_rows)])
        return rows, notes

    # numpy's BLAS (the log-mel's mel projection, in the loader thread) on one thread: OpenBLAS's idle
    # workers spin, taking the cores the network's threads run on (docs/speed.md). Only the BLAS libraries
    # are selected, so that giving their limits back leaves PyTorch's OpenMP threads alone.
    blas = ThreadpoolController().select(user_api="blas").limit(limits=1)
    workers = torch.get_num_threads()
    work = _in_threads(todo, whole_clip, workers) if per_core else _in_threads(todo, load, 1, ahead=prefetch)
    if per_core:
        torch.set_num_threads(1)  # each worker thread runs its clip on one core
    try:
        for job, result in progress(work, total=len(todo), desc=name, unit="clip"):
            if isinstance(result, Exception):
                report.fail(job.source, str(result) if isinstance(result, MediaError) else repr(result))
            else:
                data, notes = result  # per_core: the clip's features; otherwise: its network input
                for note in notes:
                    report.warn(note)
                if per_core:
                    writer.save(job, data)
                else:
                    writer.waiting.append((job, data))
            if last_of_group[job.group] == job.key:
                writer.flush()
        writer.flush()
    finally:
        blas.restore_original_limits()
        torch.set_num_threads(workers)
    return report


def weights_error(flag: str, error: Exception) -> SystemExit:
    """The message for a weights file that is missing or does not fit, naming the flag that gave it."""
    return SystemExit(f"{flag}: {error}. Give the official weight file (see --help), or leave {flag} out for "
                      f"a seeded random init")


class Runner:
    """A backbone on a device, with optional bfloat16, channels-last and folded BatchNorm."""

    def __init__(self, name: str, weights: str | None, seed: int, device: str, bf16: bool, flag: str | None = None):
        """``flag``: the command-line flag that gave ``weights``, named in errors (default: the extractors')."""
        import torch
        self.torch = torch
        self.spec = B.BACKBONES[name]
        try:
            model, self.weights_info = B.build(name, weights, seed)
        except (FileNotFoundError, ValueError) as e:
            raise weights_error(flag or ("--checkpoint" if name == "vggish" else "--weights"), e) from None
        if self.spec.has_batchnorm:
            model = B.fuse_batchnorm(model)
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.device = torch.device(device)
        self.channels_last = self.spec.channels_last
        model = model.to(self.device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    @classmethod
    def of(cls, model, spec: B.Backbone, weights_info: dict, device: str, bf16: bool) -> "Runner":
        """A runner for a network built elsewhere (the ToMe ViT): ``spec`` gives its preprocessing."""
        import torch
        runner = cls.__new__(cls)
        runner.torch, runner.spec, runner.weights_info = torch, spec, weights_info
        runner.dtype = torch.bfloat16 if bf16 else torch.float32
        runner.device = torch.device(device)
        runner.channels_last = spec.channels_last
        runner.model = model.to(runner.device, runner.dtype)
        return runner

    def __call__(self, x) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if x.dtype == torch.uint8:
                x = B.normalise(x, self.spec, self.dtype)
            elif x.is_floating_point():  # token ids (CLIP's text) stay integers
                x = x.to(self.dtype)
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float().cpu().numpy()
