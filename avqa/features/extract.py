"""The preprocessing and feature-extraction stage: one driver behind the six feat_script tools.

What every extractor shares:
- inputs are every non-hidden file (or, for frame folders, sub-folder) of the input folder,
  sorted; each produces ``<output>/<video_id>.<ext>``;
- outputs appear under their final name only when complete (written to a temporary name, then
  renamed), so a killed run never leaves a partial file that a later run would take as done;
  temporaries of dead runs are removed at start;
- an existing output is kept only if it is valid (readable, expected shape and dtype), and only
  if the folder's metadata says it was made with the same backbone, weights and settings;
- bad input gets a message naming the file, the run goes on, and it ends with a summary and a
  non-zero exit status if anything failed;
- for the network extractors, decoding and resizing of the next clips run in a background
  thread while the network works on the current one; frames go from the decoder to the network
  without JPEG files unless the input is a folder of frames.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from ..media import (MediaError, audio_seconds_declared, read_audio, read_sampled_frames, read_wav, truncation_note,
                     write_wav)
from ..utils import (at_least, atomic_dir, atomic_path, atomic_write_text, clean_stale_temps, pick_device,
                     metadata_path, relative_hint, progress, user_errors)
from . import backbones as B
from .logmel import SAMPLE_RATE, examples

# ----------------------------------------------------------------------------- bookkeeping


@dataclass
class Report:
    """What happened to every input of a run; prints the summary and gives the exit status."""

    name: str
    done: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def fail(self, source: Path, why: str) -> None:
        msg = why if why.startswith(f"{source}:") else f"{source}: {why}"  # MediaError names the file itself
        self.failed.append(msg)
        tqdm.write(f"[{self.name}] FAILED {msg}", file=sys.stderr)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        tqdm.write(f"[{self.name}] warning: {msg}", file=sys.stderr)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def summary(self) -> str:
        s = (f"[{self.name}] {self.done} written, {self.skipped} already complete, {len(self.warnings)} warning(s), "
             f"{len(self.failed)} failed, in {self.seconds:.1f} s")
        if self.failed:
            s += "\n  failed:\n    " + "\n    ".join(self.failed)
        return s

    def exit_code(self) -> int:
        return 1 if self.failed else 0


def list_inputs(folder: Path, want_dirs: bool = False) -> list[Path]:
    """Every visible entry of the input folder (files, or frame sub-folders)."""
    if not folder.is_dir():
        raise SystemExit(f"input folder {folder} does not exist{relative_hint(folder)}; check the path flag (see --help)")
    entries = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
    return [p for p in entries if p.is_dir()] if want_dirs else [p for p in entries if p.is_file()]


def is_frame_folder(folder: Path) -> bool:
    """True when the input folder holds one sub-folder of JPEG frames per video (the original layout)."""
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    return bool(subs) and any(next(s.glob("*.jpg"), None) for s in subs[:5])


def default_seconds(input_folder: Path) -> int:
    """60 as in the real data, or the clip length of a synthetic set found beside the input folder."""
    for manifest in (input_folder.parent / "synthetic.json", input_folder / "synthetic.json"):
        if manifest.exists():
            try:
                return int(json.loads(manifest.read_text())["flags"]["seconds"])
            except (KeyError, ValueError):
                pass
    return 60


def valid_npy(path: Path, shape: tuple[int, ...]) -> bool:
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        return False
    return arr.shape == shape and arr.dtype == np.float32


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array, dtype=np.float32))


def check_metadata(out_dir: Path, meta: dict, overwrite: bool, keys: Iterable[str]) -> None:
    """Refuse to mix features made with different settings in one folder (unless --overwrite)."""
    path = metadata_path(out_dir)
    existing = [p for p in out_dir.glob("*.npy")] if out_dir.is_dir() else []
    if path.exists() and existing:
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), meta.get(k)) for k in keys if old.get(k) != meta.get(k)}
        if diff:
            if not overwrite:
                lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                raise SystemExit(f"{out_dir} holds features made with other settings ({lines}). Pass --overwrite "
                                 f"to recompute them all, or choose another output folder.")
            for p in existing:
                p.unlink()
    elif existing and overwrite:
        for p in existing:
            p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(meta, indent=1))


# ----------------------------------------------------------------------------- audio and frames (no network)


def _extract_audio_one(task) -> tuple[str, str | None, str | None]:
    src, dst, rate = task
    try:
        samples, _ = read_audio(src, rate)
        write_wav(dst, samples, rate)
        return str(src), None, truncation_note(src, len(samples) / rate, audio_seconds_declared(src), "sound")
    except MediaError as e:
        return str(src), str(e), None


def _short_video_note(src: Path, info: dict, seconds: int) -> str | None:
    """The warning for a video shorter than the clip length (SPEC's sampling repeats its last second),
    or one that decodes less than it declares (truncated or damaged, not short)."""
    length = info["frames"] / info["fps"]
    damaged = truncation_note(src, length, info.get("declared_seconds"), "video")
    if length >= seconds - 1:
        return damaged
    fill = f"the last second is repeated to fill {seconds} s"
    return f"{damaged}; {fill}" if damaged else f"{src}: {length:.1f} s long, {fill}"


def _extract_frames_one(task) -> tuple[str, str | None, str | None]:
    src, dst, seconds, per_second, quality = task
    try:
        frames, info = read_sampled_frames(src, seconds, per_second)
        from PIL import Image
        with atomic_dir(dst) as tmp:
            for i, f in enumerate(frames):
                Image.fromarray(f).save(tmp / f"{i + 1:08d}.jpg", quality=quality)
        return str(src), None, _short_video_note(src, info, seconds)
    except MediaError as e:
        return str(src), str(e), None


def _map(report: Report, tasks: list, fn: Callable, workers: int, desc: str) -> None:
    def consume(results):
        for src, err, note in progress(results, total=len(tasks), desc=desc, unit="clip"):
            if err:
                report.fail(Path(src), err)
            else:
                report.done += 1
                if note:
                    report.warn(note)

    if workers > 1 and len(tasks) > 1:
        with mp.get_context("fork" if sys.platform.startswith("linux") else None).Pool(workers) as pool:
            consume(pool.imap(fn, tasks))
    else:
        consume(map(fn, tasks))


@user_errors
def extract_audio(video_dir: Path, out_dir: Path, sample_rate: int = SAMPLE_RATE, workers: int = 2) -> Report:
    """Every video's sound track as a 16-bit wav at ``sample_rate`` (channels kept)."""
    report = Report("extract_audio")
    inputs = list_inputs(video_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    tasks = []
    for src in inputs:
        dst = out_dir / f"{src.stem}.wav"
        if valid_wav(dst, sample_rate):
            report.skipped += 1
        else:
            tasks.append((src, dst, sample_rate))
    _map(report, tasks, _extract_audio_one, workers, "extract audio")
    return report


def valid_wav(path: Path, rate: int) -> bool:
    """A readable, non-empty wav at ``rate`` (anything else is redone)."""
    try:
        samples, sr = read_wav(path)
    except Exception:  # noqa: BLE001 - any unreadable file is simply redone
        return False
    return sr == rate and len(samples) > 0


def valid_frames(folder: Path, count: int) -> bool:
    """A frame folder holding exactly 00000001.jpg ... its ``count`` frames."""
    names = sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []
    return names == [f"{i + 1:08d}.jpg" for i in range(count)]


@user_errors
def extract_frames(video_dir: Path, out_dir: Path, seconds: int, per_second: int = 1, workers: int = 2,
                   quality: int = 75) -> Report:
    """``seconds * per_second`` JPEG frames per video, at SPEC's frame numbers (00000001.jpg, ...)."""
    report = Report("extract_frames")
    inputs = list_inputs(video_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    tasks = []
    n = seconds * per_second
    for src in inputs:
        dst = out_dir / src.stem
        if valid_frames(dst, n):
            report.skipped += 1
        else:
            tasks.append((src, dst, seconds, per_second, quality))
    _map(report, tasks, _extract_frames_one, workers, "extract frames")
    return report


# ----------------------------------------------------------------------------- network extractors


@dataclass
class Job:
    key: str       # video id, the output's stem
    source: Path   # video file, audio file or frame folder


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


def run_network(name: str, jobs: list[Job], out_dir: Path, shape: tuple[int, ...],
                load: Callable[[Job], tuple[object, list[str]]], compute: Callable[[object], np.ndarray],
                prefetch: int, report: Report, batch_rows: int = 64, per_core: bool = False) -> Report:
    """``load`` returns a clip's network input and notes to report as warnings.

    By default clips loaded ahead in a background thread are gathered until ``batch_rows`` frames
    (or seconds of sound) are waiting, run through the network together, and saved one by one.
    With ``per_core`` (video on the CPU), each of N threads (N = torch's thread count) takes whole
    clips: decode, network on one core; the main thread saves. There a decoder thread beside a
    network that already uses every core only fights it for the cores (1.1-1.2x slower on 2
    cores), while VGGish's small inputs run better batched (28 s against 33 s for the default set).
    """
    import torch
    clean_stale_temps(out_dir)
    todo = []
    for job in jobs:
        if valid_npy(out_dir / f"{job.key}.npy", shape):
            report.skipped += 1
        else:
            todo.append(job)

    def save(job: Job, rows: np.ndarray) -> None:
        if rows.shape != shape:
            report.fail(job.source, f"produced shape {rows.shape}, expected {shape}")
            return
        save_npy(out_dir / f"{job.key}.npy", rows)
        report.done += 1

    waiting: list[tuple[Job, object]] = []

    def flush():
        if not waiting:
            return
        out = compute(torch.cat([p for _, p in waiting]))
        start = 0
        for job, payload in waiting:
            save(job, out[start:start + len(payload)])
            start += len(payload)
        waiting.clear()

    def whole_clip(job: Job):
        payload, notes = load(job)
        rows = np.concatenate([compute(payload[i:i + batch_rows]) for i in range(0, len(payload), batch_rows)])
        return rows, notes

    workers = torch.get_num_threads()
    work = _in_threads(todo, whole_clip, workers) if per_core else _in_threads(todo, load, 1, ahead=prefetch)
    if per_core:
        torch.set_num_threads(1)  # each worker thread runs its clip on one core
    try:
        for job, result in progress(work, total=len(todo), desc=name, unit="clip"):
            if isinstance(result, Exception):
                report.fail(job.source, str(result) if isinstance(result, MediaError) else repr(result))
                continue
            data, notes = result  # per_core: the clip's features; otherwise: its network input
            for note in notes:
                report.warn(note)
            if per_core:
                save(job, data)
                continue
            waiting.append((job, data))
            if sum(len(p) for _, p in waiting) >= batch_rows:
                flush()
        flush()
    finally:
        torch.set_num_threads(workers)
    return report


class Runner:
    """A backbone on a device, with optional bfloat16, channels-last and folded BatchNorm."""

    def __init__(self, name: str, weights: str | None, seed: int, device: str, bf16: bool):
        import torch
        self.torch = torch
        self.spec = B.BACKBONES[name]
        try:
            model, self.weights_info = B.build(name, weights, seed)
        except (FileNotFoundError, ValueError) as e:
            flag = "--checkpoint" if name == "vggish" else "--weights"
            raise SystemExit(f"{flag}: {e}. Give the official weight file (see --help), or leave {flag} out for "
                             f"a seeded random init") from None
        if self.spec.image:
            model = B.fuse_batchnorm(model)
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.device = torch.device(device)
        self.channels_last = self.spec.channels_last
        model = model.to(self.device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def __call__(self, x) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if x.dtype == torch.uint8:
                x = B.normalise(x, self.spec, self.dtype)
            else:
                x = x.to(self.dtype)
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float().cpu().numpy()


def _load_frames(job: Job, seconds: int, spec: B.Backbone, jpeg_quality: int | None):
    if job.source.is_dir():  # the original layout: a folder of 1 fps JPEG frames
        from PIL import Image
        files = sorted(job.source.glob("*.jpg"))
        if not files:
            raise MediaError(f"{job.source}: no .jpg frames")
        frames = [np.array(Image.open(f).convert("RGB")) for f in files]
        if len(frames) != seconds:
            raise MediaError(f"{job.source}: {len(frames)} frames, expected {seconds} (one per second)")
    else:
        frames, info = read_sampled_frames(job.source, seconds, threads=1)
        if jpeg_quality:
            frames = [_jpeg_roundtrip(f, jpeg_quality) for f in frames]
        note = _short_video_note(job.source, info, seconds)
        return B.frames_to_tensor(frames, spec), [note] if note else []
    return B.frames_to_tensor(frames, spec), []


def _jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


@user_errors
def extract_visual(name: str, video_path: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, jpeg_quality: int | None, prefetch: int,
                   overwrite: bool, batch_rows: int = 64) -> Report:
    frames_mode = is_frame_folder(video_path)
    inputs = list_inputs(video_path, want_dirs=frames_mode)
    device = pick_device(device)
    runner = Runner(name, weights, seed, device, bf16)
    report = Report(name)  # timed from here: the network is built
    spec = runner.spec
    meta = _metadata(name, runner, seconds, device, bf16)
    meta["input"] = "1 fps JPEG frame folders" if frames_mode else "videos, decoded in memory at SPEC frame numbers"
    meta["jpeg_roundtrip_quality"] = jpeg_quality
    if runner.weights_info["weights"] is None:
        print(f"[{name}] no --weights given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    check_metadata(out_dir, meta, overwrite, ("backbone", "weights_sha256", "init", "seconds", "precision",
                                              "preprocessing", "jpeg_roundtrip_quality"))
    jobs = [Job(p.stem if not p.is_dir() else p.name, p) for p in inputs]
    return run_network(name, jobs, out_dir, (seconds, *spec.out_shape),
                       lambda j: _load_frames(j, seconds, spec, jpeg_quality), runner, prefetch, report, batch_rows,
                       per_core=not device.startswith("cuda"))


@user_errors
def extract_vggish(audio_dir: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, prefetch: int, overwrite: bool, batch_rows: int = 64) -> Report:
    import torch
    inputs = list_inputs(audio_dir)
    device = pick_device(device)
    runner = Runner("vggish", weights, seed, device, bf16)
    report = Report("vggish")  # timed from here: the network is built
    meta = _metadata("vggish", runner, seconds, device, bf16)
    if runner.weights_info["weights"] is None:
        print(f"[vggish] no --checkpoint given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    check_metadata(out_dir, meta, overwrite, ("backbone", "weights_sha256", "init", "seconds", "precision"))

    def load(job: Job):
        if job.source.suffix.lower() == ".wav":
            try:
                samples, rate = read_wav(job.source)
            except Exception:  # noqa: BLE001 - not plain 16-bit PCM: let FFmpeg decode it
                samples, rate = read_audio(job.source, SAMPLE_RATE)
        else:
            samples, rate = read_audio(job.source, SAMPLE_RATE)
        notes = []
        if len(samples) < seconds * rate:
            notes.append(f"{job.source}: {len(samples) / rate:.2f} s of sound for {seconds} s; padded with silence")
        return torch.from_numpy(examples(samples, rate, seconds, warn=False)), notes

    jobs = [Job(p.stem, p) for p in inputs]
    return run_network("vggish", jobs, out_dir, (seconds, 128), load, runner, prefetch, report, batch_rows)


def _metadata(name: str, runner: Runner, seconds: int, device: str, bf16: bool) -> dict:
    import torch
    return {
        "backbone": name,
        "description": runner.spec.description,
        "weights": runner.weights_info["weights"],
        "weights_sha256": runner.weights_info.get("sha256"),
        "init": runner.weights_info["init"],
        "trained_on": runner.weights_info.get("trained_on"),
        "seconds": seconds,
        "shape_per_video": [seconds, *runner.spec.out_shape],
        "dtype": "float32",
        "precision": "bfloat16 compute" if bf16 else "float32",
        "preprocessing": runner.spec.preprocessing(),
        "device": device,
        "batchnorm_folded": runner.spec.image,
        "torch": torch.__version__,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# ----------------------------------------------------------------------------- command lines


def common_flags(p: argparse.ArgumentParser, weights_flag: str = "--weights") -> None:
    p.add_argument(weights_flag, dest="weights", default=None,
                   help="official weight file; without it a seeded random init is used (and recorded)")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed of the random init when no weights are given")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")
    p.add_argument("--gpu", default=None,
                   help="original flag: sets CUDA_VISIBLE_DEVICES (e.g. '0'); prefer --device")
    p.add_argument("--bf16", action="store_true",
                   help="compute in bfloat16 (CPUs with bfloat16 units and GPUs): several times faster, "
                        "about 1%% relative difference; features are still saved as float32")
    p.add_argument("--prefetch", type=at_least(0), default=2,
                   help="clips loaded ahead in a background thread while the network runs (GPU, and VGGish "
                        "everywhere; default: 2)")
    p.add_argument("--threads", type=at_least(1), default=None,
                   help="CPU threads; for video on the CPU, the clips worked on at once, one core each "
                        "(default: all cores)")
    p.add_argument("--batch_frames", type=at_least(1), default=64,
                   help="frames (or seconds of sound) per network call, gathered across clips; lower it to "
                        "save memory (default: 64)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute every output, also when the folder holds features made with other settings")


def apply_runtime_flags(args: argparse.Namespace) -> None:
    if getattr(args, "gpu", None):
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)


def finish(report: Report) -> int:
    print(report.summary())
    return report.exit_code()
