"""The standard table of MUSIC-AVQA: nine question types, the question-weighted Audio, Visual and
Audio-Visual averages and the overall accuracy, as test mode and ``python -m avqa.evaluate`` print it,
and TSPM's text layouts of it."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..annotations import QUESTION_TYPES

TABLE_ROWS = [("Audio Counting", [0]), ("Audio Comparative", [1]), ("Audio Avg", [0, 1]),
              ("Visual Counting", [2]), ("Visual Location", [3]), ("Visual Avg", [2, 3]),
              ("AV Existential", [4]), ("AV Location", [5]), ("AV Counting", [6]), ("AV Comparative", [7]),
              ("AV Temporal", [8]), ("AV Avg", [4, 5, 6, 7, 8]), ("Overall", list(range(9)))]
assert [QUESTION_TYPES[i] for i in (4, 5, 6)] == [("Audio-Visual", "Existential"), ("Audio-Visual", "Location"),
                                                   ("Audio-Visual", "Counting")]


def percent(correct: int, total: int) -> float | None:
    """100 * correct / total rounded to 2 decimals, the fraction taken in single precision.

    Single precision is what test mode computes (a float tensor's mean); at a tie in the third
    decimal it can round the other way from the exact fraction, so this one function serves both.
    """
    if not total:
        return None
    return round(100.0 * float(np.float32(correct) / np.float32(total)), 2)


def score_table(correct: Sequence[bool] | np.ndarray, types: Sequence[int] | np.ndarray) -> dict[str, dict]:
    """Accuracy per question type, group (pooled over its questions) and overall, in the paper's order.

    ``correct[i]`` says whether question i was answered right, ``types[i]`` is its index in
    QUESTION_TYPES.
    """
    correct = np.asarray(correct, dtype=bool)
    types = np.asarray(types)
    right = np.bincount(types[correct], minlength=len(QUESTION_TYPES))
    total = np.bincount(types, minlength=len(QUESTION_TYPES))
    table = {}
    for name, idxs in TABLE_ROWS:
        k, n = int(right[idxs].sum()), int(total[idxs].sum())
        table[name] = {"accuracy": percent(k, n), "count": n}
    return table


def format_table(table: dict[str, dict], title: str = "") -> str:
    lines = [title] if title else []
    for name, row in table.items():
        acc = f"{row['accuracy']:6.2f} %" if row["accuracy"] is not None else "     - "
        lines.append(f"  {name:<18} {acc}  ({row['count']} questions)")
    return "\n".join(lines)


# TSPM's text outputs (its main_test.py): the .acc table's line names, groups separated by a blank line
RELEASE_ACC_NAMES = [("Audio Counting", "Audio Count"), ("Audio Comparative", "Audio Compt"), ("Audio Avg", "Audio Averg"),
                     None, ("Visual Counting", "Visual Count"), ("Visual Location", "Visual Local"),
                     ("Visual Avg", "Visual Averg"), None, ("AV Existential", "Audio-Visual Exist"),
                     ("AV Counting", "Audio-Visual Count"), ("AV Location", "Audio-Visual Local"),
                     ("AV Comparative", "Audio-Visual Compt"), ("AV Temporal", "Audio-Visual Templ"),
                     ("AV Avg", "Audio-Visual Averg")]


def release_acc_text(table: dict[str, dict], title: str = "TSPM") -> str:
    """``table`` in the layout of TSPM's ``results/<checkpoint>.acc`` ("n/a" for a type without questions)."""
    def acc(name: str) -> str:
        value = table[name]["accuracy"]
        return "n/a" if value is None else f"{value:.2f} %"
    lines = ["", f"--------------- {title} acc --------------- ", "", ""]
    lines += ["" if row is None else f"{row[1]} Acc: {acc(row[0])}" for row in RELEASE_ACC_NAMES]
    lines += ["", f"---->Overall Accuracy: {acc('Overall')} ", ""]
    return "\n".join(lines)


def result_line(question_id: object, correct: bool, truth: int, predicted: int) -> str:
    """One line of TSPM's ``<checkpoint>.result``: question id, True/False, truth and predicted answer index,
    separated by space-tab-space (read back by :func:`read_predictions`)."""
    return f"{question_id} \t {bool(correct)} \t {int(truth)} \t {int(predicted)}"


def markdown_table(tables: dict[str, dict[str, dict]]) -> str:
    """One column per named table: accuracy in %, question count in brackets."""
    names = list(tables)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for row in next(iter(tables.values())):
        cells = []
        for n in names:
            r = tables[n][row]
            cells.append("-" if r["accuracy"] is None else f"{r['accuracy']:.2f} ({r['count']:,})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_tables(tables: dict[str, dict[str, dict]], title: str = "") -> str:
    """Several tables of the same questions side by side, one column per name (e.g. per convention)."""
    names = list(tables)
    first = next(iter(tables.values()))
    lines = [title] if title else []
    lines.append(f"  {'':<18} " + " ".join(f"{n:>10}" for n in names))
    for row in first:
        cells = " ".join("         -" if tables[n][row]["accuracy"] is None else f"{tables[n][row]['accuracy']:8.2f} %"
                         for n in names)
        lines.append(f"  {row:<18} {cells}  ({first[row]['count']} questions)")
    return "\n".join(lines)
