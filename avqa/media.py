"""Reading videos and sound: the 1 fps frame sampling (docs/model.md, Inputs and sampling), audio decoding, wav files.

All decoding goes through PyAV (FFmpeg's libraries), in-process: no subprocess per clip and no
intermediate files unless a caller asks for them.
"""
from __future__ import annotations

import collections
import wave
from pathlib import Path

import av
import numpy as np

from .utils import atomic_path, file_kind

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv"}


class MediaError(RuntimeError):
    """A file that cannot be decoded as the step needs (named in the message)."""


def sample_frame_numbers(total_frames: int, fps: float, seconds: int, per_second: int = 1) -> list[int]:
    """1-based frame numbers of the original's adaptive sampling (the middle of each second).

    Frame i of ``seconds * per_second`` is ``round((1/(2*per_second) + i/per_second) * fps)``;
    numbers past the end wrap into the last partial second, so short videos repeat their tail.
    """
    if total_frames <= 0:
        raise ValueError("a video with no frames cannot be sampled")
    last = int(total_frames % fps) or int(fps)
    last = max(1, min(last, total_frames))
    start = total_frames - last
    out = []
    for i in range(seconds * per_second):
        n = max(1, round((1 / (2 * per_second) + i / per_second) * fps))
        if n > total_frames:
            n = start + 1 + ((n - start - 1) % last)
        out.append(n)
    return out


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise MediaError(f"{path}: not a readable video or audio file ({e})") from None
    if not container.streams.audio and not container.streams.video:  # FFmpeg opens a JSON file as lyrics
        container.close()
        raise MediaError(f"{path}: not a readable video or audio file: it is {file_kind(path)}")
    return container


def video_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise MediaError("the video stream has no frame rate")
    return float(rate)


# PyAV 17 and later convert with a pool of swscale threads unless told otherwise (``threads``); before
# 17 there is no pool and no such argument
_ONE_THREAD = {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


def rgb_array(frame) -> np.ndarray:
    """A decoded frame as uint8 RGB [H, W, 3], converted on the calling thread.

    A worker process forked from a process that has converted a frame with swscale's thread pool
    inherits that pool without its threads, and its first conversion then waits for them for ever (the
    extractors' and the generator's workers are forked). One thread gives the same pixels."""
    return frame.to_ndarray(format="rgb24", **_ONE_THREAD)


def read_sampled_frames(path: str | Path, seconds: int, per_second: int = 1,
                        threads: int = 0) -> tuple[list[np.ndarray], dict]:
    """Decode a video once and return its sampled RGB frames (uint8 [H, W, 3]) in order.

    ``threads``: decoder threads (0: one per core). Feature extraction decodes on one thread, as
    the network already keeps every core busy.

    Frames are numbered from 1 in decoding order. Because the wrap rule needs the frame count,
    which containers often misreport, the last second of decoded frames is kept in a small ring
    buffer until the end of the stream is reached.
    """
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads  # 0: FFmpeg picks (one per core)
        fps = video_fps(stream)
        # numbers we need if the video is long enough (no wrapping)
        wanted_plain = collections.defaultdict(list)
        for idx, n in enumerate(sample_frame_numbers(10**9, fps, seconds, per_second)):
            wanted_plain[n].append(idx)
        keep: dict[int, np.ndarray] = {}
        ring: collections.deque = collections.deque(maxlen=int(np.ceil(fps)) + 1)
        count = 0
        try:
            for frame in container.decode(stream):
                count += 1
                if count in wanted_plain:
                    keep[count] = rgb_array(frame)
                ring.append((count, frame))
        except av.error.FFmpegError as e:
            if count == 0:
                raise MediaError(f"{path}: video cannot be decoded ({e})") from None
            # a truncated file: use what decoded, as the original's reader would
        if count == 0:
            raise MediaError(f"{path}: video has no decodable frames")
        numbers = sample_frame_numbers(count, fps, seconds, per_second)
        tail = {n: f for n, f in ring}
        frames = []
        for n in numbers:
            if n not in keep:
                if n not in tail:  # pragma: no cover - ring is always long enough
                    raise MediaError(f"{path}: frame {n} was not kept while decoding")
                keep[n] = rgb_array(tail[n])
            frames.append(keep[n])
        info = {"fps": fps, "frames": count, "numbers": numbers, "height": frames[0].shape[0],
                "width": frames[0].shape[1], "declared_seconds": declared_seconds(container, stream)}
        return frames, info


def declared_seconds(container, stream) -> float | None:
    """The length the file claims (stream, else container); a damaged file decodes less than this."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def truncation_note(path: str | Path, decoded: float, declared: float | None, what: str) -> str | None:
    """A warning when a file decodes at least a second less than it declares: truncated or damaged,
    which padding would otherwise pass off as a short clip."""
    if declared is None or declared - decoded < 1.0:
        return None
    return f"{path}: truncated or damaged: it declares {declared:.1f} s of {what} but only {decoded:.1f} s decode"


def audio_seconds_declared(path: str | Path) -> float | None:
    """The declared length of the first audio stream (None when unknown)."""
    with _open(path) as container:
        if not container.streams.audio:
            return None
        return declared_seconds(container, container.streams.audio[0])


def read_audio(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to int16 samples [n, channels] at ``sample_rate``.

    A 16-bit wav already at the rate is returned sample for sample; anything else is converted
    by FFmpeg's resampler. Raises MediaError for a file without an audio stream.
    """
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        layout = "mono" if channels == 1 else "stereo"
        resampler = av.AudioResampler(format="s16", layout=layout, rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, 1 if layout == "mono" else 2))
        except av.error.FFmpegError as e:
            if not chunks:
                raise MediaError(f"{path}: audio cannot be decoded ({e})") from None
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1, 1 if layout == "mono" else 2))
    if not chunks:
        raise MediaError(f"{path}: audio track holds no samples")
    return np.concatenate(chunks).astype(np.int16, copy=False), sample_rate


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """int16 samples [n, channels] and rate of a PCM wav (fast path, no resampling)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise MediaError(f"{path}: only 16-bit PCM wav files are read directly")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write int16 samples [n, channels] to a wav file atomically."""
    samples = np.asarray(samples, dtype="<i2")
    if samples.ndim == 1:
        samples = samples[:, None]
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(samples).tobytes())
