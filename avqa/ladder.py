"""The paper's ablation ladder in one command: Q, A+Q, V+Q, A+V+Q, +TG, +SG (= AVST); with --family
tspm, TSPM's ablation rungs: one rung per module switched off, then the full TSPM.

    python -m avqa.ladder                        # the embedded default (data/, made by python -m avqa.pipeline)
    python -m avqa.ladder --data DIR --label_train ... --epochs 80 --lr 1e-4 --lr_step 8 --batch-size 64
    python -m avqa.ladder --family tspm --top_k 3   # TSPM's rungs (features: python -m avqa.tspm.standin)

Every AVST rung is ``net_grd_avst/main_avst.py --model <rung>`` (see its --help, or docs/model.md, for what
each computes): the same loop, recipe, checkpoint format, test table and JSON report, one after the
other, each trained from the same seed and selected on val, then tested once. Only the top rung,
the full AVST, starts from the grounding pre-training (--pretrained_grounding), as the main job's
AVST does: the pre-training is the spatial grounding's own training (its audio encoder learns to
find the sound in the frame), so the rungs without spatial grounding start from scratch.

Every TSPM rung is ``net_tspm/main_train.py`` then ``main_test.py`` with one of --no-AV_Attn_Module,
--no-Temp_Selection, --no-Spatio_Perception, --no-Temp_QTGM (the rung tspm: none), on the same engine,
from the same seed. The paper's TSPM ablation figures are not known to this project: its table and
plot have no paper column; the orderings reported are the full TSPM above each rung with a module off.

Outputs go to --out (default outputs/ladder, outputs/ladder_tspm for TSPM), a folder the ladder owns:
one checkpoint folder and one test report per rung, ``ladder.json`` (every rung's per-type table, the
paper's figures where known and which orderings hold) and ``ladder.png``, with a row for every
finished rung (also those not asked for this time). A rung that finished with the same recipe and the
same files is skipped: every file it reads (annotations, each feature file, the features' metadata, the
grounding checkpoint) by size and modification time; a rung killed midway resumes from its last epoch;
a rung whose recipe or files changed is trained again, and the ladder says which files changed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from . import checkpoint, stamps
from .ladder_families import LadderFamily, ladder_families
from .ladder_plot import draw_plot
from .utils import EXIT_CODES, at_least, atomic_write_text, check_writable, fingerprint, run_lock, sha256, user_errors

COLUMNS = [("Audio Counting", "A Cnt"), ("Audio Comparative", "A Cmp"), ("Audio Avg", "Audio"),
           ("Visual Counting", "V Cnt"), ("Visual Location", "V Loc"), ("Visual Avg", "Visual"),
           ("AV Existential", "AV Ex"), ("AV Location", "AV Loc"), ("AV Counting", "AV Cnt"),
           ("AV Comparative", "AV Cmp"), ("AV Temporal", "AV Tmp"), ("AV Avg", "AV"), ("Overall", "Overall")]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    families = ladder_families()
    default = next(iter(families))
    p.add_argument("--family", choices=families, default=default,
                   help="whose rungs: " + " or ".join(f"{f.name} ({f.choice})" for f in families.values())
                   + f" (default: {default})")
    g = p.add_argument_group("data (defaults: the embedded default set under --data)")
    g.add_argument("--data", default="data", help="folder with json/avqa-{train,val,test}.json and feats/ (default: data)")
    g.add_argument("--label_train", help="train annotations; the vocabularies come from it (default: DATA/json/avqa-train.json)")
    g.add_argument("--label_val", help="validation annotations, which select each rung's checkpoint (default: DATA/json/avqa-val.json)")
    g.add_argument("--label_test", help="test annotations, reported once per rung (default: DATA/json/avqa-test.json)")
    for family in families.values():
        family.add_flags(p)
    r = p.add_argument_group("recipe (defaults: the main job's AVST demo recipe, for both families; the original's: "
                             "--epochs 80 --lr 1e-4 --lr_step 8 --batch-size 64; TSPM's release: --epochs 30 --lr 1e-4 "
                             "--lr_step 8 --batch-size 64)")
    recipe = families[default].recipe  # the default family's demo recipe, for every family's rungs
    r.add_argument("--epochs", type=at_least(1), default=recipe["epochs"], help="default: %(default)s")
    r.add_argument("--lr", type=at_least(0.0, float), default=recipe["lr"], help="default: %(default)s")
    r.add_argument("--lr_step", type=at_least(1), default=recipe["lr_step"], help="default: %(default)s")
    r.add_argument("--batch-size", dest="batch_size", type=at_least(1), default=recipe["batch_size"],
                   help="default: %(default)s")
    r.add_argument("--seed", type=int, default=1, help="default: %(default)s")
    o = p.add_argument_group("run")
    o.add_argument("--rungs", help="comma-separated rungs to run (default: all of the family's), of "
                                   + "; ".join(f"{f.name}: {', '.join(f.rungs)}" for f in families.values()))
    o.add_argument("--out", help="the ladder's own folder (default: " + ", ".join(
        f"{f.out} for {f.name}" for f in families.values()) + ")")
    o.add_argument("--plot", default=None, help="where the PNG goes (default: OUT/ladder.png)")
    o.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    o.add_argument("--amp", action="store_true", help="mixed precision (passed to every rung)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    family = a.family = families[a.family]
    for other in families.values():
        given = [flag for flag in other.flags if other is not family and getattr(a, flag) is not None]
        if given:
            p.error(f"--{given[0]} is a flag of --family {other.name}'s rungs, not {family.name}'s: add --family "
                    f"{other.name}, or leave it out")
    d = Path(a.data)
    a.label_train = a.label_train or str(d / "json" / "avqa-train.json")
    a.label_val = a.label_val or str(d / "json" / "avqa-val.json")
    a.label_test = a.label_test or str(d / "json" / "avqa-test.json")
    family.defaults(a)
    a.rungs = [r.strip() for r in (",".join(family.rungs) if a.rungs is None else a.rungs).split(",") if r.strip()]
    unknown = [r for r in a.rungs if r not in family.rungs]
    if unknown or not a.rungs:
        p.error(f"--rungs: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(family.rungs)}"
                + ("" if family.name == default else f" (the rungs of --family {family.name})"))
    a.rungs = [r for r in family.rungs if r in a.rungs]  # bottom to top, whatever the order given
    a.out = a.out or family.out
    a.plot = Path(a.plot) if a.plot else Path(a.out) / "ladder.png"
    return a


# ----------------------------------------------------------------------------- one rung


def _sha(path: str | Path) -> str | None:
    p = Path(path)
    return sha256(p) if p.is_file() else None


def rung_config(args: argparse.Namespace, rung: str) -> dict:
    """The settings a rung's result depends on (the files it reads are in ``rung_reads``)."""
    return args.family.settings(args, rung)


def rung_reads(args: argparse.Namespace, rung: str) -> dict:
    """The fingerprint of every file a rung reads: a feature file changed in place retrains the rung."""
    return fingerprint(args.family.reads(args, rung))


def report_path(args: argparse.Namespace, rung: str) -> Path:
    return Path(args.out) / f"{rung}_test.json"


def stamp_path(args: argparse.Namespace, rung: str) -> Path:
    return Path(args.out) / "stamps" / f"{rung}.json"


def finished(args: argparse.Namespace, rung: str, config: dict, reads: dict) -> str | None:
    """None when the rung finished with this config and these files, and its report is of its checkpoint
    as it is; else why not."""
    stale = stamps.staleness(stamps.read(stamp_path(args, rung)), config, lambda: reads)
    if stale is not None:
        return {stamps.NOT_RUN: "not run yet", stamps.SETTINGS: "its recipe changed: training it again",
                stamps.INTERRUPTED: "interrupted last time: resuming"}.get(stale.reason) or \
            f"the files it reads changed ({'; '.join(stale.changed)}): training it again"
    report = stamps.read(report_path(args, rung))
    ckpt = rung_checkpoint(args, rung)
    if report is None or report.get("model") != args.family.report_model(rung) or \
            report.get("checkpoint_sha256") != _sha(ckpt):
        return "its test report is missing or not of its checkpoint: resuming"
    return None


def rung_checkpoint(args: argparse.Namespace, rung: str) -> Path:
    """The checkpoint a rung's training writes and its test reads: OUT/<rung>/<rung>.pt."""
    return checkpoint.trained_path(Path(args.out) / rung, rung)


def run_rung(args: argparse.Namespace, rung: str, config: dict, reads: dict) -> dict:
    """Train (resuming when the config and files are those it was started with) and test one rung."""
    family = args.family
    stamp = stamps.read(stamp_path(args, rung))
    stale = stamps.staleness(stamp, config, lambda: reads)
    same = stale is None or not stale.fresh
    # same settings: continue its own run (a finished one trains no further); other settings: start over
    recipe = family.training(args, rung)
    stamps.write(stamp_path(args, rung), config=config, reads=reads, complete=False)
    t0 = time.time()
    _exit(user_errors(family.run)(family.config(args, rung, resume=same, overwrite=not same, **recipe)),
          f"training {rung}")
    t1 = time.time()
    _exit(user_errors(family.run)(family.config(args, rung, mode="test", results=str(report_path(args, rung)))),
          f"testing {rung}")
    seconds = {"train": round(t1 - t0, 1), "test": round(time.time() - t1, 1)}
    if same and stamp.get("seconds"):  # a resumed rung: its time is the time of all its runs
        seconds = {k: round(v + stamp["seconds"].get(k, 0.0), 1) for k, v in seconds.items()}
    stamps.write(stamp_path(args, rung), config=config, reads=reads, complete=True, seconds=seconds)
    return seconds


def rung_row(args: argparse.Namespace, rung: str, status: str) -> dict:
    """A finished rung's row of ladder.json, from its stamp, test report and checkpoint."""
    family = args.family
    stamp = stamps.read(stamp_path(args, rung)) or {}
    report = json.loads(report_path(args, rung).read_text())
    ckpt = checkpoint.load_dict(rung_checkpoint(args, rung))
    row = {"model": rung, "label": family.rungs[rung], "computes": family.doc(rung), "status": status,
           "table": report["table"]}
    if family.paper_overall:
        row["paper_overall"] = family.paper_overall[rung]
    return {**row, "best_epoch": ckpt.get("epoch"), "val_accuracy": ckpt.get("val_accuracy"),
            "seconds": stamp.get("seconds"), "checkpoint": str(rung_checkpoint(args, rung)),
            "report": str(report_path(args, rung))}


def _exit(code: int | None, what: str) -> None:
    if code not in (0, None):
        raise SystemExit(f"ladder: {what} failed (exit code {code}); run python -m avqa.ladder again to resume")


# ----------------------------------------------------------------------------- the table


def format_ladder(rows: list[dict], title: str, family: LadderFamily) -> str:
    """The per-type table of the rungs in ``rows``, with the paper's overall and full-model row where known."""
    lw, mw = max([7] + [len(r["label"]) + 1 for r in rows]), max([15] + [len(r["model"]) + 2 for r in rows])
    paper = family.paper_overall
    head = f"  {'rung':<{lw}}{'model':<{mw}}" + "".join(f"{short:>8}" for _, short in COLUMNS) + \
        (f"{'paper':>8}" if paper else "")
    lines = [title, head]
    for r in rows:
        cells = "".join(f"{r['table'][k]['accuracy']:8.2f}" if r["table"][k]["accuracy"] is not None else f"{'-':>8}"
                        for k, _ in COLUMNS)
        lines.append(f"  {r['label']:<{lw}}{r['model']:<{mw}}{cells}" + (f"{paper[r['model']]:8.2f}" if paper else ""))
    if family.paper_top:
        top = family.paper_top
        lines.append(f"  {family.rungs[family.top]:<{lw}}{'paper ' + family.title:<{mw}}"
                     + "".join(f"{top[k]:8.2f}" for k, _ in COLUMNS) + f"{top['Overall']:8.2f}")
    lines.append(family.paper_note)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    check_writable(out, "--out")
    for flag in ("label_train", "label_val", "label_test"):
        if not Path(getattr(args, flag)).is_file():
            raise SystemExit(f"--{flag} {getattr(args, flag)} not found: make the default set with python -m "
                             f"avqa.pipeline, or point --data / --{flag} at the annotations")
    for other in ladder_families().values():  # one folder, one family's ladder.json
        found = next((stamp_path(args, r) for r in other.rungs if other is not args.family
                      and stamp_path(args, r).is_file()), None)
        if found:
            raise SystemExit(f"--out {out} holds the {other.name} ladder ({found}): pass --family {other.name} to "
                             f"continue it, or another --out for the {args.family.name} rungs")
    args.family.check(args)
    with run_lock(out, "ladder", "--out"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    out, family = Path(args.out), args.family
    t_all = time.time()
    rows = []
    for rung, label in family.rungs.items():
        config, reads = rung_config(args, rung), rung_reads(args, rung)
        why = finished(args, rung, config, reads)
        if rung not in args.rungs:  # not asked for: its row stays in ladder.json while it holds
            if why is None:
                rows.append(rung_row(args, rung, "kept (finished earlier)"))
            continue
        if why is None:
            print(f"[{label} {rung}] complete, skipped", flush=True)
            status = "skipped (complete)"
        else:
            print(f"\n== {label} {rung} ({why}) ==\n" + family.doc(rung), flush=True)
            run_rung(args, rung, config, reads)
            status = "ran"
        rows.append(rung_row(args, rung, status))
    tables = {r["model"]: r["table"] for r in rows}
    checks = family.orderings(tables)
    n_test = rows[0]["table"]["Overall"]["count"]
    title = f"{family.heading} on {args.label_test} ({n_test} questions), test accuracy %:"
    print("\n" + format_ladder(rows, title, family))
    for name, c in checks.items():
        print(f"  {'holds ' if c['holds'] else 'BREAKS'}  {name}: {c['values']}")
    total = round(time.time() - t_all, 1)
    paper = {"overall": family.paper_overall, family.name: family.paper_top, "source": family.paper_source} \
        if family.paper_overall else None
    result = {"annotations": {k: {"path": getattr(args, k), "sha256": _sha(getattr(args, k))}
                              for k in ("label_train", "label_val", "label_test")},
              **family.header(args), "rungs": rows, "orderings": checks, "paper": paper, "seconds": total}
    atomic_write_text(out / "ladder.json", json.dumps(result, indent=1))
    subtitle = f"{args.label_test}, {n_test} questions; recipe {' '.join(family.recipe_flags(args))}" + \
        ("; paper: real MUSIC-AVQA" if family.paper_overall else "")
    draw_plot(rows, args.plot, subtitle, f"{family.heading[0].upper()}{family.heading[1:]}: test accuracy by rung",
              family.paper_overall, family.paper_top, family.top, family.title)
    print(f"\n{len(rows)} rungs in {total:.0f} s; table: {out / 'ladder.json'}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
