"""Uploaded videos: kept in a temporary folder of the server's own (removed when it stops), and
accepted only when they are an mp4, mov or webm with a picture, sound and at most a minute of both."""
from __future__ import annotations

import itertools
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

import av

from ..media import declared_seconds

KINDS = (".mp4", ".mov", ".webm")
MAX_SECONDS = 60
MAX_BYTES = 512 * 1024 * 1024
CHUNK = 1 << 20


class UploadError(ValueError):
    """An upload the page refuses, in one sentence for the user."""


def safe_name(name: str) -> str:
    """The file's own name, reduced to letters, digits, '-', '_' and '.' (no folders)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name).strip("._")
    return base or "upload"


def check_video(path: Path, name: str) -> float:
    """The video's length in seconds, or an UploadError saying why the page cannot ask about it."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UploadError(f"{name} has no picture: upload a video ({', '.join(KINDS)}) with sound")
            if not container.streams.audio:
                raise UploadError(f"{name} has no sound: AVST answers from what it hears as well as what it sees, "
                                  f"so upload a video with a sound track")
            stream = container.streams.video[0]
            next(container.decode(stream))  # one frame decodes: the file is a video, not just a header
            seconds = declared_seconds(container, stream)
    except (av.error.FFmpegError, UnicodeDecodeError, StopIteration):
        raise UploadError(f"{name} is not a video that can be read: upload an mp4, mov or webm file") from None
    if seconds is not None and seconds > MAX_SECONDS + 0.5:
        raise UploadError(f"{name} is {seconds:.1f} s long: the page takes videos of up to {MAX_SECONDS} s; "
                          f"cut it shorter and upload it again")
    return seconds or 0.0


def check_upload(name: str, length: int) -> None:
    """Refuse (UploadError), before reading it, a file of another kind or too large to be a minute of video."""
    if Path(name).suffix.lower() not in KINDS:
        raise UploadError(f"{name or 'the file'} is not an mp4, mov or webm video: upload one of those "
                          f"(at most {MAX_SECONDS} s, with sound)")
    if length > MAX_BYTES:
        raise UploadError(f"{name} is {length / 2**20:.0f} MiB: the page takes files of up to "
                          f"{MAX_BYTES // 2**20} MiB; upload a shorter or smaller video")


class Uploads:
    """The server's temporary folder of uploads; ``close`` removes it with everything in it."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="avqa-demo-"))
        self._count = itertools.count(1)
        self.lock = threading.Lock()

    def receive(self, name: str, body: BinaryIO, length: int) -> Path:
        """Write ``length`` bytes of ``body`` as the upload ``name``; refuse (UploadError) what cannot be asked
        about, leaving nothing behind."""
        check_upload(name, length)
        with self.lock:
            target = self.folder / f"{next(self._count)}-{safe_name(name)}"
        try:
            with open(target, "wb") as f:
                left = length
                while left > 0:
                    chunk = body.read(min(CHUNK, left))
                    if not chunk:
                        raise UploadError(f"{name}: the upload stopped before its end; upload it again")
                    f.write(chunk)
                    left -= len(chunk)
            check_video(target, name)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
