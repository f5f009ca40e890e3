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
import functools
import inspect
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
                     metadata_path, relative_hint, progress, run_lock, user_errors)
from ..data import used_seconds
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


def valid_npy(path: Path, shape: tuple[int, ...], dtype=np.float32) -> bool:
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        return False
    return arr.shape == shape and arr.dtype == dtype


def save_npy(path: Path, array: np.ndarray, dtype=np.float32, rows: Sequence[int] | None = None,
             total: int | None = None) -> None:
    """Save [T, ...] features; with ``rows``, ``array`` holds only those seconds of ``total``: the file
    keeps the full [total, ...] shape (original code opens it as usual) and the other seconds are
    holes in a sparse file, which take no disk and read as zeros."""
    with atomic_path(path) as tmp:
        if rows is None:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(array, dtype=dtype))
        else:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total, *array.shape[1:]))
            out[list(rows)] = array
            out.flush()
            del out


def parse_shard(text: str) -> tuple[int, int]:
    """--shard K/N: this process does the K-th of N shares of the videos (K from 0)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (e.g. 0/4)") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"{text}: need 0 <= K < N")
    return k, n


def shard_of(items: list, shard: tuple[int, int] | None) -> list:
    """Every N-th input from the K-th, in sorted order: each video goes to exactly one shard."""
    if shard is None:
        return items
    k, n = shard
    return items[k::n]


def check_metadata(out_dir: Path, meta: dict, overwrite: bool, keys: Iterable[str],
                   own: Iterable[str] | None = None) -> None:
    """Refuse to mix features made with different settings in one folder (unless --overwrite).

    ``own``: the stems this process writes (a shard): --overwrite then removes only those, and a
    folder whose metadata already holds these settings keeps its file, so shards never rewrite it.
    """
    path = metadata_path(out_dir)
    existing = [p for p in out_dir.glob("*.npy")] if out_dir.is_dir() else []
    if own is not None:
        mine = set(own)
        removable = [p for p in existing if p.stem in mine]
    else:
        removable = existing
    same = False
    if path.exists() and existing:
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), meta.get(k)) for k in keys if old.get(k) != meta.get(k)}
        same = not diff
        if diff:
            if not overwrite:
                lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                raise SystemExit(f"{out_dir} holds features made with other settings ({lines}). Pass --overwrite "
                                 f"to recompute them all, or choose another output folder.")
    if overwrite:
        for p in removable:
            p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (same and own is not None):
        atomic_write_text(path, json.dumps(meta, indent=1))


def one_writer(extract: Callable) -> Callable:
    """One extraction at a time into an output folder (``out_dir``): a second one is refused while the
    first runs. The shards of one extraction (``shard``) write to one folder together, each under its
    own lock, so only a second process of the same shard is refused."""
    signature = inspect.signature(extract)

    @functools.wraps(extract)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        shard = bound.arguments.get("shard")
        name = "extract" if shard is None else f"extract-shard-{shard[0]}-of-{shard[1]}"
        with run_lock(bound.arguments["out_dir"], name):
            return extract(*args, **kwargs)
    return wrapper


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
    """The warning for a video shorter than the clip length (the 1 fps sampling repeats its last second),
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
@one_writer
def extract_audio(video_dir: Path, out_dir: Path, sample_rate: int = SAMPLE_RATE, workers: int = 2,
                  shard: tuple[int, int] | None = None) -> Report:
    """Every video's sound track as a 16-bit wav at ``sample_rate`` (channels kept)."""
    report = Report("extract_audio")
    inputs = shard_of(list_inputs(video_dir), shard)
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
@one_writer
def extract_frames(video_dir: Path, out_dir: Path, seconds: int, per_second: int = 1, workers: int = 2,
                   quality: int = 75, shard: tuple[int, int] | None = None) -> Report:
    """``seconds * per_second`` JPEG frames per video, at the 1 fps frame numbers (00000001.jpg, ...;
    docs/model.md, Inputs and sampling)."""
    report = Report("extract_frames")
    inputs = shard_of(list_inputs(video_dir), shard)
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
    group: int = 0  # clips of one group go through the network together (batched mode)


def network_jobs(inputs: list[Path], rows_per_clip: int, batch_rows: int,
                 shard: tuple[int, int] | None) -> list[Job]:
    """Jobs in sorted order, grouped into fixed runs of consecutive clips that fill about ``batch_rows``
    rows; a shard takes whole groups. Each clip then meets the same batch whether one process or N
    shards do the folder, so their outputs are byte for byte the same."""
    size = max(1, batch_rows // max(1, rows_per_clip))
    jobs = [Job(p.name if p.is_dir() else p.stem, p, i // size) for i, p in enumerate(inputs)]
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
    network that already uses every core only fights it for the cores (1.1-1.2x slower on 2
    cores), while VGGish's small inputs run better batched (28 s against 33 s for the default set).
    """
    import torch
    clean_stale_temps(out_dir)
    todo = []
    for job in jobs:
        if valid_npy(out_dir / f"{job.key}.npy", shape, dtype):
            report.skipped += 1
        else:
            todo.append(job)
    computed = (len(rows), *shape[1:]) if rows is not None else shape

    def save(job: Job, features: np.ndarray) -> None:
        if features.shape != computed:
            report.fail(job.source, f"produced shape {features.shape}, expected {computed}")
            return
        save_npy(out_dir / f"{job.key}.npy", features, dtype, rows, shape[0])
        report.done += 1

    waiting: list[tuple[Job, object]] = []
    last_of_group = {j.group: j.key for j in todo}

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
            else:
                data, notes = result  # per_core: the clip's features; otherwise: its network input
                for note in notes:
                    report.warn(note)
                if per_core:
                    save(job, data)
                else:
                    waiting.append((job, data))
            if last_of_group[job.group] == job.key:
                flush()
        flush()
    finally:
        torch.set_num_threads(workers)
    return report


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
            flag = flag or ("--checkpoint" if name == "vggish" else "--weights")
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


def _load_frames(job: Job, seconds: int, spec: B.Backbone, jpeg_quality: int | None,
                 rows: Sequence[int] | None = None):
    """A clip's network input: its ``seconds`` frames, or only those of the seconds in ``rows``."""
    notes = []
    if job.source.is_dir():  # the original layout: a folder of 1 fps JPEG frames
        from PIL import Image
        files = sorted(job.source.glob("*.jpg"))
        if not files:
            raise MediaError(f"{job.source}: no .jpg frames")
        if len(files) != seconds:
            raise MediaError(f"{job.source}: {len(files)} frames, expected {seconds} (one per second)")
        frames = [np.array(Image.open(files[i]).convert("RGB")) for i in (rows if rows is not None else range(seconds))]
    else:
        frames, info = read_sampled_frames(job.source, seconds, threads=1)
        if rows is not None:
            frames = [frames[i] for i in rows]
        if jpeg_quality:
            frames = [_jpeg_roundtrip(f, jpeg_quality) for f in frames]
        note = _short_video_note(job.source, info, seconds)
        notes = [note] if note else []
    return B.frames_to_tensor(frames, spec), notes


def _jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


@user_errors
@one_writer
def extract_visual(name: str, video_path: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, jpeg_quality: int | None, prefetch: int,
                   overwrite: bool, batch_rows: int = 64, used_segments: int | None = None, float16: bool = False,
                   shard: tuple[int, int] | None = None) -> Report:
    """``used_segments``: compute only the seconds the models read (data.used_seconds) for that many
    segments; ``float16``: store half precision; ``shard``: (K, N), this process's share of the videos."""
    frames_mode = is_frame_folder(video_path)
    rows = used_seconds(seconds, used_segments) if used_segments else None
    device = pick_device(device)
    per_core = not device.startswith("cuda")  # each clip alone through the network: no batch to keep fixed
    jobs = network_jobs(list_inputs(video_path, want_dirs=frames_mode),
                        batch_rows if per_core else len(rows) if rows else seconds, batch_rows, shard)
    runner = Runner(name, weights, seed, device, bf16)
    report = Report(name)  # timed from here: the network is built
    spec = runner.spec
    meta = _metadata(name, runner, seconds, device, bf16)
    meta["input"] = "1 fps JPEG frame folders" if frames_mode else "videos, decoded in memory at the 1 fps frame numbers"
    meta["jpeg_roundtrip_quality"] = jpeg_quality
    meta["dtype"] = "float16" if float16 else "float32"
    meta["seconds_computed"] = rows if rows is not None else "all"
    if rows is not None:
        meta["used_seconds"] = (f"only the seconds AVST reads with --segments {used_segments} and grounding "
                                f"pre-training reads (the first {min(10, seconds)}); the others are holes that read "
                                f"as zeros, and this project's loaders refuse to read them")
    if runner.weights_info["weights"] is None:
        print(f"[{name}] no --weights given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    check_metadata(out_dir, meta, overwrite, ("backbone", "weights_sha256", "init", "seconds", "precision",
                                              "preprocessing", "jpeg_roundtrip_quality", "dtype", "seconds_computed"),
                   own=[j.key for j in jobs] if shard else None)
    return run_network(name, jobs, out_dir, (seconds, *spec.out_shape),
                       lambda j: _load_frames(j, seconds, spec, jpeg_quality, rows), runner, prefetch, report,
                       batch_rows, per_core=per_core, rows=rows,
                       dtype=np.float16 if float16 else np.float32)


@user_errors
@one_writer
def extract_vggish(audio_dir: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, prefetch: int, overwrite: bool, batch_rows: int = 64,
                   shard: tuple[int, int] | None = None) -> Report:
    jobs = network_jobs(list_inputs(audio_dir), seconds, batch_rows, shard)
    device = pick_device(device)
    runner = Runner("vggish", weights, seed, device, bf16)
    report = Report("vggish")  # timed from here: the network is built
    meta = _metadata("vggish", runner, seconds, device, bf16)
    if runner.weights_info["weights"] is None:
        print(f"[vggish] no --checkpoint given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    check_metadata(out_dir, meta, overwrite, ("backbone", "weights_sha256", "init", "seconds", "precision"),
                   own=[j.key for j in jobs] if shard else None)
    return run_network("vggish", jobs, out_dir, (seconds, 128), lambda j: _load_sound(j, seconds), runner, prefetch,
                       report, batch_rows)


def _load_sound(job: Job, seconds: int):
    """A clip's VGGish input, [seconds, 96, 64] log-mel examples, and its notes (short sound is padded).

    Shared with avqa.ask, which answers a question about one video in memory from the same input.
    """
    import torch
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
                        "about 1%% relative difference; features are still saved as float32 (float16 with --float16)")
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
    shard_flag(p)


def shard_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="do only the K-th (from 0) of N shares of the videos, for several GPUs or machines writing "
                        "to one folder; each video goes to exactly one share. Under torchrun the share is the "
                        "process's rank by default")


def resolve_shard(args: argparse.Namespace) -> tuple[int, int] | None:
    """--shard, or the rank among torchrun's processes (each then takes its own GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.shard is None and world > 1:
        args.shard = (int(os.environ.get("RANK", "0")), world)
        if getattr(args, "device", None) is None:
            import torch
            if torch.cuda.is_available():
                args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return args.shard


def apply_runtime_flags(args: argparse.Namespace) -> None:
    if getattr(args, "gpu", None):
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)


def finish(report: Report) -> int:
    print(report.summary())
    return report.exit_code()
