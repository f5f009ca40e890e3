"""What ``python -m avqa.evaluate`` prints and writes: one file's tables, a comparison, the per-video CSV."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import atomic_write_text, sha256
from .by_video import by_video_rows, format_worst, write_by_video
from .compare import compare_pair, format_comparison, markdown_comparison
from .conventions import CONVENTIONS
from .predictions import Predictions
from .scoring import judge, tables
from .sets import AnnotationSet
from .table import format_table, format_tables, markdown_table


def _unmapped_line(result: dict, convention: str | None = None) -> str:
    shown = ", ".join(f"{t!r} ({n})" for t, n in list(result["unmapped_examples"].items())[:10])
    under = f" under the {convention} convention" if convention else ""
    return (f"{result['unmapped_answers']:,} answer(s) name none of the 42 answers (or several){under} and count as "
            f"wrong; most frequent: {shown}")


def _files(sets: Sequence[AnnotationSet]) -> list[dict]:
    return [{"path": str(s.path), "sha256": s.sha256, "questions": len(s.keys)} for s in sets]


def _scored_on(sets: Sequence[AnnotationSet], protocol: str) -> str:
    return (", ".join(f"`{s.path}` (sha256 `{s.sha256[:16]}`, {len(s.keys):,} questions)" for s in sets)
            + f", protocol `{protocol}`")


def _write(prefix: Path, report: dict, md: str) -> None:
    atomic_write_text(prefix.with_name(prefix.name + ".json"), json.dumps(report, indent=1))
    atomic_write_text(prefix.with_name(prefix.name + ".md"), md)
    print(f"written: {prefix.with_name(prefix.name + '.json')}, {prefix.with_name(prefix.name + '.md')}")


def write_single(preds: Predictions, sets: Sequence[AnnotationSet], args: argparse.Namespace,
                 conventions: Sequence[str], prefix: Path) -> dict[str, np.ndarray]:
    """One file's table(s): printed, and written as PREFIX.json and PREFIX.md; returns its verdicts per question."""
    marks = {c: judge(preds, sets, c) for c in conventions}
    results = {c: tables(sets, *m) for c, m in marks.items()}
    print(f"convention: {args.convention}" + (f" ({CONVENTIONS[args.convention]})" if args.convention in CONVENTIONS
                                               else f" ({', '.join(CONVENTIONS)} side by side)"))
    parts = [(str(s.path), {c: r["tables"][str(s.path)] for c, r in results.items()}) for s in sets]
    if len(sets) > 1:
        parts.append(("together", {c: r["combined"] for c, r in results.items()}))
    for name, by_convention in parts:
        count = next(iter(by_convention.values()))["Overall"]["count"]
        title = (f"{preds.path} on {name} ({count} questions):" if name != "together"
                 else f"all {len(sets)} files together ({count} questions):")
        print(format_table(by_convention[conventions[0]], title) if len(conventions) == 1
              else format_tables(by_convention, title))
    for c, r in results.items():
        if r["unmapped_answers"]:
            print(_unmapped_line(r, c if len(conventions) > 1 else None))
    report = {"predictions": str(preds.path), "predictions_sha256": sha256(preds.path), "format": preds.form,
              "annotations": _files(sets), "protocol": args.protocol, "convention": args.convention}
    report.update(results[conventions[0]] if len(conventions) == 1 else {"conventions": results})
    md = f"Predictions `{preds.path}` scored on {_scored_on(sets, args.protocol)}, convention `{args.convention}`.\n"
    if len(conventions) == 1:
        only = results[conventions[0]]
        columns = {Path(n).name if len(sets) > 1 else "accuracy % (questions)": t for n, t in only["tables"].items()}
        if only["combined"] is not None:
            columns["together"] = only["combined"]
        md += "\n" + markdown_table(columns) + "\n"
    else:
        for name, by_convention in parts:
            md += f"\n{Path(name).name}, by convention:\n\n" + markdown_table(by_convention) + "\n"
    for c, r in results.items():
        if r["unmapped_answers"]:
            md += (f"\n{r['unmapped_answers']:,} answer(s) could not be mapped onto the 42 answers"
                   + (f" under `{c}`" if len(conventions) > 1 else "") + " and count as wrong.\n")
    _write(prefix, report, md)
    return {str(preds.path): np.concatenate(marks[conventions[0]][0])}


def write_comparison(preds: Sequence[Predictions], sets: Sequence[AnnotationSet], args: argparse.Namespace,
                     conventions: Sequence[str], prefix: Path) -> dict[str, np.ndarray]:
    """Each file against the first, per convention: printed, written as PREFIX.json and PREFIX.md."""
    types = np.concatenate([s.types for s in sets])
    names = " + ".join(str(s.path) for s in sets)
    report = {"predictions": [{"path": str(p.path), "sha256": sha256(p.path), "format": p.form} for p in preds],
              "annotations": _files(sets), "protocol": args.protocol, "convention": args.convention,
              "resamples": args.resamples, "seed": args.seed, "comparisons": [], "unmapped_answers": {}}
    md = f"Compared on {_scored_on(sets, args.protocol)}: paired bootstrap 95% interval of B − A ({args.resamples:,} " \
         f"resamples, seed {args.seed}) and McNemar's exact test.\n"
    first = {}
    for c in conventions:
        correct = {str(p.path): judge(p, sets, c) for p in preds}
        first = first or {k: np.concatenate(v[0]) for k, v in correct.items()}
        report["unmapped_answers"][c] = {k: sum(v[1].values()) for k, v in correct.items()}
        a = np.concatenate(correct[str(preds[0].path)][0])
        for other in preds[1:]:
            rows = compare_pair(a, np.concatenate(correct[str(other.path)][0]), types, args.resamples, args.seed)
            title = (f"B - A on {names} ({len(types):,} questions), convention {c}: paired bootstrap 95% interval "
                     f"({args.resamples:,} resamples, seed {args.seed}), McNemar's exact test:")
            print(format_comparison(rows, [str(preds[0].path), str(other.path)], title))
            report["comparisons"].append({"convention": c, "a": str(preds[0].path), "b": str(other.path), "rows": rows})
            md += f"\nConvention `{c}`. " + markdown_comparison(rows, [str(preds[0].path), str(other.path)]) + "\n"
        for k, n in report["unmapped_answers"][c].items():
            if n:
                print(f"{k}: {n:,} answer(s) name none of the 42 answers under the {c} convention and count as wrong")
    _write(prefix, report, md)
    return first


def write_by_video_report(path: str, sets: Sequence[AnnotationSet], preds: Sequence[Predictions],
                          correct: dict[str, np.ndarray]) -> None:
    videos = [v for s in sets for v in s.videos]
    short = {k: Path(k).name for k in correct}
    named = {short[k] if len(set(short.values())) == len(short) else k: v for k, v in correct.items()}
    rows = by_video_rows(videos, named)
    write_by_video(path, rows)
    print(format_worst(rows))
    print(f"written: {path} ({len(rows):,} videos)")
