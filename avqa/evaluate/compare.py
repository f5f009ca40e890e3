"""Is a gap real? Two models' answers to the same questions, compared question by question.

For each row of the table (a type, a group, overall) and a pair of predictions A and B:

- the difference of their accuracies, B - A, in points;
- its paired bootstrap 95 % interval: the questions are resampled with replacement within each type
  (the test file's count per type held fixed), both models' verdicts together, and the 2.5th and
  97.5th percentiles of the resampled differences are the interval. A question counts only through
  its pair of verdicts (both right or both wrong: 0; only B right: +1; only A right: -1), so a
  resample of n questions is drawn as the multinomial counts of those three outcomes, which is the
  same distribution as drawing the n questions one by one;
- McNemar's exact test on the questions one model gets right and the other wrong (b only B, c only
  A): the two-sided binomial p of min(b, c) under p = 1/2, 1 when b + c = 0;
- a verdict: "within noise" when p >= 0.05, otherwise "B ahead" or "A ahead".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .table import TABLE_ROWS, percent

ALPHA = 0.05


def mcnemar_p(only_b: int, only_a: int) -> float:
    """McNemar's exact two-sided p: twice the binomial tail of the smaller discordant count, at most 1."""
    from scipy.stats import binom  # here: scipy.stats takes 0.6 s to import, and test mode imports this package
    n = only_b + only_a
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(only_b, only_a), n, 0.5)))


def bootstrap_differences(a: np.ndarray, b: np.ndarray, types: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Resampled B - A accuracy differences (points), one column per table row, ``resamples`` rows."""
    rng = np.random.default_rng(seed)
    ntypes = len(TABLE_ROWS[-1][1])
    plus = np.zeros((resamples, ntypes))
    minus = np.zeros((resamples, ntypes))
    counts = np.bincount(types, minlength=ntypes)
    for t in range(ntypes):
        n = counts[t]
        if not n:
            continue
        mask = types == t
        nb, na = int((b[mask] & ~a[mask]).sum()), int((a[mask] & ~b[mask]).sum())
        draws = rng.multinomial(n, [nb / n, na / n, 1.0 - (nb + na) / n], size=resamples)
        plus[:, t], minus[:, t] = draws[:, 0], draws[:, 1]
    out = np.full((resamples, len(TABLE_ROWS)), np.nan)
    for j, (_, idxs) in enumerate(TABLE_ROWS):
        n = counts[idxs].sum()
        if n:
            out[:, j] = 100.0 * (plus[:, idxs].sum(1) - minus[:, idxs].sum(1)) / n
    return out


def compare_pair(a: np.ndarray, b: np.ndarray, types: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """Per table row: both accuracies, B - A, its bootstrap interval, the discordant counts, McNemar's p, a verdict."""
    a, b, types = np.asarray(a, bool), np.asarray(b, bool), np.asarray(types)
    diffs = bootstrap_differences(a, b, types, resamples, seed)
    rows = {}
    for j, (name, idxs) in enumerate(TABLE_ROWS):
        mask = np.isin(types, idxs)
        n = int(mask.sum())
        only_b, only_a = int((b & ~a & mask).sum()), int((a & ~b & mask).sum())
        p = mcnemar_p(only_b, only_a)
        low, high = (np.percentile(diffs[:, j], [2.5, 97.5]) if n else (np.nan, np.nan))
        rows[name] = {"count": n, "a": percent(int(a[mask].sum()), n), "b": percent(int(b[mask].sum()), n),
                      "difference": round(100.0 * (only_b - only_a) / n, 2) if n else None,
                      "interval": [round(float(low), 2), round(float(high), 2)] if n else None,
                      "only_b": only_b, "only_a": only_a, "p": p,
                      "verdict": "within noise" if p >= ALPHA else ("B ahead" if only_b > only_a else "A ahead")}
    return rows


def _cell(value, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{fmt}}".rjust(width)


def format_comparison(rows: dict, names: Sequence[str], title: str) -> str:
    """The side-by-side text table of one pair."""
    lines = [title, f"  A = {names[0]}", f"  B = {names[1]}",
             f"  {'':<18} {'A %':>7} {'B %':>7} {'B - A':>7}  {'95% interval':<17} {'only B':>7} {'only A':>7} "
             f"{'p':>7}  verdict"]
    for name, r in rows.items():
        interval = "-" if r["interval"] is None else f"[{r['interval'][0]:+.2f}, {r['interval'][1]:+.2f}]"
        lines.append(f"  {name:<18} {_cell(r['a'], '.2f', 7)} {_cell(r['b'], '.2f', 7)} "
                     f"{_cell(r['difference'], '+.2f', 7)}  {interval:<17} {r['only_b']:>7,} {r['only_a']:>7,} "
                     f"{r['p']:>7.3g}  {r['verdict']}")
    return "\n".join(lines)


def markdown_comparison(rows: dict, names: Sequence[str]) -> str:
    lines = [f"A = `{names[0]}`, B = `{names[1]}`.", "",
             "| | A | B | B − A | 95% interval | only B | only A | McNemar p | verdict |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for name, r in rows.items():
        if r["count"] == 0:
            lines.append(f"| {name} | - | - | - | - | 0 | 0 | - | - |")
            continue
        lines.append(f"| {name} | {r['a']:.2f} | {r['b']:.2f} | {r['difference']:+.2f} | "
                     f"[{r['interval'][0]:+.2f}, {r['interval'][1]:+.2f}] | {r['only_b']:,} | {r['only_a']:,} | "
                     f"{r['p']:.3g} | {r['verdict']} |")
    return "\n".join(lines)
