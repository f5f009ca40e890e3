"""The stamp a unit of work (a main-job stage, a ladder rung) leaves beside its outputs: the settings it
ran with, the fingerprint of the files it read (avqa.utils.fingerprint) and whether it finished.

``staleness`` compares a stamp with now and says, as a value, why the work must run again; the main
job and the ladder word it for their own output.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .utils import atomic_write_text, changes

NOT_RUN, SETTINGS, UPSTREAM, READS, INTERRUPTED = "not run", "settings", "upstream", "reads", "interrupted"


@dataclass(frozen=True)
class Staleness:
    """Why a unit must run again: ``reason`` (one of the constants above) and, for READS, what changed."""

    reason: str
    changed: tuple[str, ...] = ()

    @property
    def fresh(self) -> bool:
        """The old outputs are not of this work's inputs (only an interrupted run's are worth keeping)."""
        return self.reason != INTERRUPTED


def read(path: Path) -> dict | None:
    """The stamp at ``path``; None when there is none or it is unreadable (the work runs again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write(path: Path, **fields) -> None:
    """Write a stamp atomically (``complete=False`` before the work, True after it)."""
    atomic_write_text(path, json.dumps(fields))


def staleness(stamp: dict | None, config: dict, reads: Callable[[], dict], upstream: dict | None = None,
              older_without_reads: bool = False) -> Staleness | None:
    """None when ``stamp`` finished with ``config`` (and ``upstream``: the runs it built on) and the files
    it read are as they were (``reads()``: their fingerprint now); else why not.

    ``older_without_reads``: a stamp without a fingerprint of its reads is taken as it is.
    """
    if stamp is None:
        return Staleness(NOT_RUN)
    if stamp.get("config") != config:
        return Staleness(SETTINGS)
    if upstream is not None and stamp.get("upstream") != upstream:
        return Staleness(UPSTREAM)
    if "reads" in stamp or not older_without_reads:
        changed = changes(stamp.get("reads"), reads())
        if changed:
            return Staleness(READS, tuple(changed))
    if not stamp.get("complete", True):
        return Staleness(INTERRUPTED)
    return None
