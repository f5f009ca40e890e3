"""--by_video: accuracy per video, the videos most often answered wrong first (for error analysis)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import atomic_write_text
from .table import percent


def by_video_rows(videos: Sequence[str], correct: dict[str, np.ndarray]) -> list[dict]:
    """One row per video: its questions and, per predictions file, how many were right and wrong and the
    accuracy; sorted by the wrong answers of all files together (most first), then by the right ones (fewest
    first), then by video id."""
    ids, inverse = np.unique(np.asarray(videos), return_inverse=True)
    questions = np.bincount(inverse, minlength=len(ids))
    right = {name: np.bincount(inverse, weights=c.astype(float), minlength=len(ids)).astype(int)
             for name, c in correct.items()}
    rows = []
    for i, video in enumerate(ids):
        row = {"video_id": str(video), "questions": int(questions[i])}
        for name, r in right.items():
            prefix = "" if len(correct) == 1 else f"{name}: "
            row[prefix + "right"] = int(r[i])
            row[prefix + "wrong"] = int(questions[i] - r[i])
            row[prefix + "accuracy"] = percent(int(r[i]), int(questions[i]))
        rows.append(row)
    wrong = {row["video_id"]: sum(row["questions"] - int(right[n][i]) for n in right) for i, row in enumerate(rows)}
    good = {row["video_id"]: sum(int(right[n][i]) for n in right) for i, row in enumerate(rows)}
    return sorted(rows, key=lambda r: (-wrong[r["video_id"]], good[r["video_id"]], r["video_id"]))


def write_by_video(path: str | Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["video_id", "questions"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def format_worst(rows: list[dict], n: int = 10) -> str:
    """The first ``n`` rows as text: the videos most often wrong."""
    lines = [f"videos most often answered wrong (of {len(rows):,}):"]
    for r in rows[:n]:
        wrong = [(k[:-len("wrong")].rstrip(": "), v) for k, v in r.items() if k.endswith("wrong")]
        said = ", ".join(f"{name} {v}" if name else str(v) for name, v in wrong)
        lines.append(f"  {r['video_id']}: {said} wrong of {r['questions']} questions")
    return "\n".join(lines)
