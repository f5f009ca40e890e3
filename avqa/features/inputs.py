"""Decoding a clip into a backbone's input: the sampled frames for the image backbones, the log-mel
examples for VGGish. Public, so that answering a question about one video in memory (avqa.ask) reads
the clip exactly as the extractors do."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..media import MediaError, read_audio, read_sampled_frames, read_wav, truncation_note
from . import backbones as B
from .logmel import SAMPLE_RATE, examples

if TYPE_CHECKING:
    import torch


def short_video_note(src: Path, info: dict, seconds: int) -> str | None:
    """The warning for a video shorter than the clip length (the 1 fps sampling repeats its last second),
    or one that decodes less than it declares (truncated or damaged, not short)."""
    length = info["frames"] / info["fps"]
    damaged = truncation_note(src, length, info.get("declared_seconds"), "video")
    if length >= seconds - 1:
        return damaged
    fill = f"the last second is repeated to fill {seconds} s"
    return f"{damaged}; {fill}" if damaged else f"{src}: {length:.1f} s long, {fill}"


def load_frames(source: Path, seconds: int, spec: B.Backbone, jpeg_quality: int | None,
                rows: Sequence[int] | None = None, mirror: bool = False) -> tuple["torch.Tensor", list[str]]:
    """A clip's input to the image backbone ``spec``: its ``seconds`` frames at the 1 fps frame numbers
    (or only those of the seconds in ``rows``), and notes for a short or truncated video.

    ``source``: a video, decoded in memory, or a folder of 1 fps JPEG frames (the original layout);
    ``jpeg_quality``: pass decoded frames through JPEG at this quality, as the original's frame files;
    ``mirror``: flip every frame left-right first (a v2.0 ``_flip`` video made from its original).
    """
    notes = []
    if source.is_dir():  # the original layout: a folder of 1 fps JPEG frames
        from PIL import Image
        files = numbered_frames(source, seconds)
        frames = [np.array(Image.open(files[i]).convert("RGB")) for i in (rows if rows is not None else range(seconds))]
        frames = [mirrored(f) for f in frames] if mirror else frames
    else:
        frames, info = read_sampled_frames(source, seconds, threads=1)
        if rows is not None:
            frames = [frames[i] for i in rows]
        if mirror:
            frames = [mirrored(f) for f in frames]
        if jpeg_quality:
            frames = [jpeg_roundtrip(f, jpeg_quality) for f in frames]
        note = short_video_note(source, info, seconds)
        notes = [note] if note else []
    return B.frames_to_tensor(frames, spec), notes


FRAME_NUMBER = re.compile(r"(\d+)$")
FRAMES_FIX = "extract its frames again (feat_script/extract_visual_frames/extract_frames_adaptive_script.py)"


def numbered_frames(folder: Path, seconds: int) -> list[Path]:
    """The frame file of each second of a 1 fps frame folder, by the number its name ends in, not its rank:
    ``00000001.jpg`` shows second 0 (a folder numbered from 0 starts at ``00000000.jpg``). A second
    without its file is a MediaError naming it: the seconds after a gap are never read one place early."""
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise MediaError(f"{folder}: no .jpg frames")
    if len(files) != seconds:
        raise MediaError(f"{folder}: {len(files)} frames, expected {seconds} (one per second)")
    numbered: dict[int, Path] = {}
    for f in files:
        m = FRAME_NUMBER.search(f.stem)
        if m is None:
            raise MediaError(f"{f}: its name ends in no frame number, so the second it shows is unknown: {FRAMES_FIX}")
        numbered.setdefault(int(m.group(1)), f)
    first = 0 if 0 in numbered else 1
    missing = [s for s in range(seconds) if first + s not in numbered]
    if missing:
        s = missing[0]
        raise MediaError(f"{folder}: no frame numbered {first + s}, the frame of second {s} (seconds count from 0; the files are numbered "
                         f"{_numbers(sorted(numbered))}), so {len(missing)} second(s) have no frame: {FRAMES_FIX}")
    return [numbered[first + s] for s in range(seconds)]


def _numbers(numbers: list[int], limit: int = 8) -> str:
    return ", ".join(map(str, numbers[:limit])) + (", ..." if len(numbers) > limit else "")


def mirrored(frame: np.ndarray) -> np.ndarray:
    """A [H, W, 3] frame flipped left-right, as v2.0's ``_flip`` videos are."""
    return np.ascontiguousarray(frame[:, ::-1])


def jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """A frame as it reads back from a JPEG file of ``quality``."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


def load_sound(source: Path, seconds: int) -> tuple["torch.Tensor", list[str]]:
    """A clip's VGGish input, [seconds, 96, 64] log-mel examples, and its notes (short sound is padded).

    ``source``: a 16-bit wav, or any file FFmpeg decodes (the sound of a video).
    """
    import torch
    if source.suffix.lower() == ".wav":
        try:
            samples, rate = read_wav(source)
        except Exception:  # noqa: BLE001 - not plain 16-bit PCM: let FFmpeg decode it
            samples, rate = read_audio(source, SAMPLE_RATE)
    else:
        samples, rate = read_audio(source, SAMPLE_RATE)
    notes = []
    if len(samples) < seconds * rate:
        notes.append(f"{source}: {len(samples) / rate:.2f} s of sound for {seconds} s; padded with silence")
    return torch.from_numpy(examples(samples, rate, seconds, warn=False)), notes
