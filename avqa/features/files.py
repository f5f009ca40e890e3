"""The extractors' file bookkeeping: which inputs a folder holds, which outputs are complete, how
features are saved, and the summary of a run.

Outputs appear under their final name only when complete (written to a temporary name, then renamed),
so a killed run never leaves a partial file that a later run would take as done.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..media import read_wav
from ..store import read_npy_header
from ..utils import atomic_path, relative_hint


@dataclass
class Report:
    """What happened to every input of a run; prints the summary and gives the exit status."""

    name: str
    done: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said after the summary: what the user still has to do
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
        return s + "".join(f"\nnote: {n}" for n in self.notes)

    def exit_code(self) -> int:
        return 1 if self.failed else 0


def list_inputs(folder: Path, want_dirs: bool = False) -> list[Path]:
    """Every visible entry of the input folder (files, or frame sub-folders)."""
    if not folder.is_dir():
        raise SystemExit(f"input folder {folder} does not exist{relative_hint(folder)}; check the path flag (see --help)")
    entries = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
    return [p for p in entries if p.is_dir()] if want_dirs else [p for p in entries if p.is_file()]


@dataclass(frozen=True)
class Source:
    """One output of an extraction: its video id, the input it is made from, and whether the input's
    frames are mirrored left-right (a v2.0 ``<id>_flip`` video made from ``<id>``; its sound is the same)."""

    key: str
    path: Path
    mirror: bool = False


FLIP = "_flip"


def flip_ids(files: Sequence[str | Path] | None, flag: str = "--annotations") -> list[str]:
    """The ``<id>_flip`` video ids named by annotation files (.json, a list of rows with ``video_id``)
    or id lists (any other file: one id per line), sorted."""
    ids: set[str] = set()
    for f in files or ():
        path = Path(f)
        try:
            text = path.read_text()
        except OSError as e:
            raise SystemExit(f"{flag} {path}: cannot be read ({e.strerror}){relative_hint(path)}") from None
        if path.suffix.lower() == ".json":
            try:
                rows = json.loads(text)
                ids.update(str(r["video_id"]) for r in rows)
            except (ValueError, TypeError, KeyError):
                raise SystemExit(f"{flag} {path}: not an annotation file (a JSON list of rows with a 'video_id'); "
                                 f"give one, or a text file of video ids, one per line") from None
        else:
            ids.update(line.strip() for line in text.splitlines() if line.strip())
    return sorted(v for v in ids if v.endswith(FLIP) and len(v) > len(FLIP))


def sources(folder: Path, want_dirs: bool = False, flips: Sequence[str] = ()) -> tuple[list[Source], list[str]]:
    """The outputs to make from an input folder, and the ``flips`` that have no input to be made from.

    Every input of the folder (list_inputs, in its order) names its own output; then each of ``flips``
    without an input of its own is made from ``<id>``'s input, mirrored.
    """
    out = [Source(p.name if p.is_dir() else p.stem, p) for p in list_inputs(folder, want_dirs)]
    if not out:
        raise SystemExit(f"input folder {folder} holds no {'frame folders' if want_dirs else 'input files'}: nothing "
                         f"to extract, and nothing is written; point the input flag (see --help) at the folder of "
                         f"videos or sound files")
    have = {s.key: s.path for s in out}
    missing = []
    for vid in flips:
        if vid in have:
            continue
        base = have.get(vid[:-len(FLIP)])
        if base is None:
            missing.append(vid)
        else:
            out.append(Source(vid, base, mirror=True))
    return out, missing


def report_missing_flips(report: Report, folder: Path, missing: Sequence[str]) -> None:
    for vid in missing:
        report.fail(folder / vid, f"named by --annotations, but {folder} holds no input named {vid} or "
                                  f"{vid[:-len(FLIP)]} to mirror it from")


def flip_record(items: Sequence[Source], sound: bool = False) -> dict:
    """The metadata entry of the mirrored outputs (none when there are none)."""
    mirrored = {s.key: s.path.name for s in items if s.mirror}
    if not mirrored:
        return {}
    how = ("the sound of the named input, unchanged" if sound
           else "the named input's frames mirrored left-right")
    return {"flipped": mirrored, "flipped_from": how}


def note_other_shards(report: Report, out_dir: Path, inputs: Sequence[Source], shard: tuple[int, int] | None,
                      suffix: str = ".npy") -> Report:
    """After a shard (--shard K/N): a note when inputs of the folder still have no output, with the way to
    finish it (every K of one N: shards of another N leave some inputs to no shard)."""
    if shard is None:
        return report
    waiting = [s.key for s in inputs if not (out_dir / f"{s.key}{suffix}").exists()]
    if waiting:
        n = shard[1]
        report.notes.append(f"{out_dir} holds the outputs of {len(inputs) - len(waiting)} of the {len(inputs)} "
                            f"inputs; {len(waiting)} have none yet ({', '.join(waiting[:3])}"
                            f"{', ...' if len(waiting) > 3 else ''}): run --shard K/{n} for every K from 0 to {n - 1} "
                            f"into it, each with the same N (shards of another N leave inputs to none of them)")
    return report


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
    """A complete ``.npy`` file of ``shape`` and ``dtype`` (anything else is redone)."""
    try:
        header = read_npy_header(path)
        complete = path.stat().st_size >= header.file_bytes
    except (ValueError, OSError, EOFError):
        return False
    return complete and header.shape == shape and header.dtype == dtype


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


def shard_of(items: list, shard: tuple[int, int] | None) -> list:
    """Every N-th input from the K-th, in sorted order: each video goes to exactly one shard."""
    if shard is None:
        return items
    k, n = shard
    return items[k::n]


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

