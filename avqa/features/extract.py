"""The preprocessing and feature-extraction stage: the extractors behind the six feat_script tools.

Where the parts live: files.py (inputs, complete outputs, the run's summary), inputs.py (decoding a
clip into a backbone's input), metadata.py (what a folder's features were made with), network.py
(running a backbone over many clips), cli.py (the shared flags).

What every extractor shares:
- inputs are every non-hidden file (or, for frame folders, sub-folder) of the input folder,
  sorted; each produces ``<output>/<video_id>.<ext>``; with ``flips`` (the ``<id>_flip`` ids of
  MUSIC-AVQA v2.0 wanted, files.flip_ids), each one without an input of its own is made from
  ``<id>``'s input, frames mirrored left-right and sound unchanged, after the others;
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

import functools
import inspect
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .seconds import used_seconds
from ..media import MediaError, audio_seconds_declared, read_audio, read_sampled_frames, truncation_note, write_wav
from ..utils import atomic_dir, clean_stale_temps, metadata_path, pick_device, progress, run_lock, user_errors
from .files import (Report, flip_record, is_frame_folder, note_other_shards, report_missing_flips, shard_of, sources,
                    valid_frames, valid_npy, valid_wav)
from .inputs import load_frames, load_sound, mirrored, short_video_note
from .logmel import SAMPLE_RATE
from .metadata import check_metadata, feature_metadata
from .network import Runner, network_jobs, run_network

# the folder checks the main job uses to decide whether a stage is complete
__all__ = ["extract_audio", "extract_frames", "extract_visual", "extract_vggish", "valid_frames", "valid_npy",
           "valid_wav"]


def one_writer(flag: str) -> Callable[[Callable], Callable]:
    """One extraction at a time into an output folder (``out_dir``, given by the script's ``flag``): a second
    one is refused while the first runs. The shards of one extraction (``shard``) write to one folder
    together, each under its own lock, so only a second process of the same shard is refused."""
    def decorate(extract: Callable) -> Callable:
        signature = inspect.signature(extract)

        @functools.wraps(extract)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            shard = bound.arguments.get("shard")
            name = "extract" if shard is None else f"extract-shard-{shard[0]}-of-{shard[1]}"
            with run_lock(bound.arguments["out_dir"], name, flag):
                return extract(*args, **kwargs)
        return wrapper
    return decorate


# ----------------------------------------------------------------------------- audio and frames (no network)


def _extract_audio_one(task) -> tuple[str, str | None, str | None]:
    src, dst, rate = task
    try:
        samples, _ = read_audio(src, rate)
        write_wav(dst, samples, rate)
        return str(src), None, truncation_note(src, len(samples) / rate, audio_seconds_declared(src), "sound")
    except MediaError as e:
        return str(src), str(e), None


def _extract_frames_one(task) -> tuple[str, str | None, str | None]:
    src, dst, seconds, per_second, quality, mirror = task
    try:
        frames, info = read_sampled_frames(src, seconds, per_second)
        if mirror:
            frames = [mirrored(f) for f in frames]
        from PIL import Image
        with atomic_dir(dst) as tmp:
            for i, f in enumerate(frames):
                Image.fromarray(f).save(tmp / f"{i + 1:08d}.jpg", quality=quality)
        return str(src), None, short_video_note(src, info, seconds)
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
@one_writer("--audio_dir")
def extract_audio(video_dir: Path, out_dir: Path, sample_rate: int = SAMPLE_RATE, workers: int = 2,
                  shard: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> Report:
    """Every video's sound track as a 16-bit wav at ``sample_rate`` (channels kept); each of ``flips``
    without a video of its own gets the sound of its original."""
    report = Report("extract_audio")
    inputs, missing = sources(video_dir, flips=flips)
    report_missing_flips(report, video_dir, shard_of(missing, shard))
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    tasks = []
    for src in shard_of(inputs, shard):
        dst = out_dir / f"{src.key}.wav"
        if valid_wav(dst, sample_rate):
            report.skipped += 1
        else:
            tasks.append((src.path, dst, sample_rate))
    _map(report, tasks, _extract_audio_one, workers, "extract audio")
    return report


@user_errors
@one_writer("--dst_path")
def extract_frames(video_dir: Path, out_dir: Path, seconds: int, per_second: int = 1, workers: int = 2,
                   quality: int = 75, shard: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> Report:
    """``seconds * per_second`` JPEG frames per video, at the 1 fps frame numbers (00000001.jpg, ...;
    docs/model.md, Inputs and sampling); each of ``flips`` without a video of its own gets its
    original's frames mirrored left-right."""
    report = Report("extract_frames")
    inputs, missing = sources(video_dir, flips=flips)
    report_missing_flips(report, video_dir, shard_of(missing, shard))
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    tasks = []
    n = seconds * per_second
    for src in shard_of(inputs, shard):
        dst = out_dir / src.key
        if valid_frames(dst, n):
            report.skipped += 1
        else:
            tasks.append((src.path, dst, seconds, per_second, quality, src.mirror))
    _map(report, tasks, _extract_frames_one, workers, "extract frames")
    return report


@user_errors
@one_writer("--output_dir")
def extract_visual(name: str, video_path: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, jpeg_quality: int | None, prefetch: int,
                   overwrite: bool, batch_rows: int = 64, used_segments: int | None = None, float16: bool = False,
                   shard: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> Report:
    """``used_segments``: compute only the seconds the models read (data.used_seconds) for that many
    segments; ``float16``: store half precision; ``shard``: (K, N), this process's share of the videos;
    ``flips``: the ``<id>_flip`` ids to make from ``<id>``'s frames mirrored when they have no input."""
    frames_mode = is_frame_folder(video_path)
    rows = used_seconds(seconds, used_segments) if used_segments else None
    device = pick_device(device)
    per_core = not device.startswith("cuda")  # each clip alone through the network: no batch to keep fixed
    inputs, missing = sources(video_path, want_dirs=frames_mode, flips=flips)
    jobs = network_jobs(inputs, batch_rows if per_core else len(rows) if rows else seconds, batch_rows, shard)
    runner = Runner(name, weights, seed, device, bf16)
    report = Report(name)  # timed from here: the network is built
    spec = runner.spec
    meta = feature_metadata(name, runner, seconds, device, bf16)
    meta["input"] = "1 fps JPEG frame folders" if frames_mode else "videos, decoded in memory at the 1 fps frame numbers"
    meta["jpeg_roundtrip_quality"] = jpeg_quality
    meta["dtype"] = "float16" if float16 else "float32"
    meta["seconds_computed"] = rows if rows is not None else "all"
    meta.update(flip_record(inputs))
    if rows is not None:
        meta["used_seconds"] = (f"only the seconds AVST reads with --segments {used_segments} and grounding "
                                f"pre-training reads (the first {min(10, seconds)}); the others are holes that read "
                                f"as zeros, and this project's loaders refuse to read them")
    check_metadata(out_dir, meta, overwrite, own=[j.key for j in jobs] if shard else None)
    if runner.weights_info["weights"] is None:  # said once the metadata that records it is written
        print(f"[{name}] no --weights given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    report_missing_flips(report, video_path, shard_of(missing, shard))
    run_network(name, jobs, out_dir, (seconds, *spec.out_shape),
                lambda j: load_frames(j.source, seconds, spec, jpeg_quality, rows, j.mirror), runner, prefetch, report,
                batch_rows, per_core=per_core, rows=rows, dtype=np.float16 if float16 else np.float32)
    return note_other_shards(report, out_dir, inputs, shard)


@user_errors
@one_writer("--save_dir")
def extract_vggish(audio_dir: Path, out_dir: Path, seconds: int, weights: str | None, seed: int,
                   device: str | None, bf16: bool, prefetch: int, overwrite: bool, batch_rows: int = 64,
                   shard: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> Report:
    """``flips``: the ``<id>_flip`` ids to make from ``<id>``'s sound (unchanged) when they have no input."""
    inputs, missing = sources(audio_dir, flips=flips)
    jobs = network_jobs(inputs, seconds, batch_rows, shard)
    device = pick_device(device)
    runner = Runner("vggish", weights, seed, device, bf16)
    report = Report("vggish")  # timed from here: the network is built
    meta = feature_metadata("vggish", runner, seconds, device, bf16)
    meta.update(flip_record(inputs, sound=True))
    check_metadata(out_dir, meta, overwrite, own=[j.key for j in jobs] if shard else None)
    if runner.weights_info["weights"] is None:  # said once the metadata that records it is written
        print(f"[vggish] no --checkpoint given: using a seeded random init (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    report_missing_flips(report, audio_dir, shard_of(missing, shard))
    run_network("vggish", jobs, out_dir, (seconds, 128), lambda j: load_sound(j.source, seconds), runner,
                prefetch, report, batch_rows)
    return note_other_shards(report, out_dir, inputs, shard)

