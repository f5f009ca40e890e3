"""What a run leaves to read: a plain-text log beside its checkpoint and TensorBoard scalars."""
from __future__ import annotations

import datetime
import json
import os
import sys
import types
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from ..utils import check_writable, metadata_path, sha256


class RunLog:
    """A plain-text log beside the checkpoint, plus TensorBoard scalars (rank 0 only)."""

    def __init__(self, path: Path | None, tensorboard_dir: str, name: str, enabled: bool, fresh: bool = False):
        """``fresh``: a run that starts from epoch 1 begins a new log (a resumed one appends)."""
        self.enabled = enabled
        self.path = path
        self.writer = None
        if enabled and fresh and path is not None:
            path.unlink(missing_ok=True)
        if enabled and tensorboard_dir:
            check_writable(tensorboard_dir, "--tensorboard_dir")
            # TensorBoard imports TensorFlow when it is installed, and the two runtimes in one process
            # can crash; this marker module makes it use its own TF-free writer
            sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
            try:
                from torch.utils.tensorboard import SummaryWriter
                stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
                self.writer = SummaryWriter(os.path.join(tensorboard_dir, name, stamp))
            except ImportError:
                print("tensorboard is not installed: no TensorBoard scalars", file=sys.stderr)

    def line(self, text: str, echo: bool = True) -> None:
        if not self.enabled:
            return
        if echo:
            tqdm.write(text)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text + "\n")

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def describe_inputs(flags: dict, files: Sequence[str], feature_dirs: Sequence[str]) -> list[str]:
    """The log's first lines: the flags, the data files by sha256 and each feature folder's metadata."""
    lines = ["flags: " + json.dumps({k: v for k, v in sorted(flags.items())}, default=str)]
    for f in files:
        p = Path(f)
        lines.append(f"data: {p} sha256 {sha256(p)[:16]}" if p.is_file() else f"data: {p} (absent)")
    for d in feature_dirs:
        meta = metadata_path(d)
        lines.append(f"features: {d} metadata " + (meta.read_text().replace("\n", " ") if meta.is_file()
                                                   else "(no metadata file)"))
    return lines
