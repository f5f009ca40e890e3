"""The paper's ablation ladder in one command: Q, A+Q, V+Q, A+V+Q, +TG, +SG (= AVST).

    python -m avqa.ladder                        # the embedded default (data/, made by python -m avqa.pipeline)
    python -m avqa.ladder --data DIR --label_train ... --epochs 80 --lr 1e-4 --lr_step 8 --batch-size 64

Every rung is ``net_grd_avst/main_avst.py --model <rung>`` (see its --help, or docs/model.md, for what
each computes): the same loop, recipe, checkpoint format, test table and JSON report, one after the
other, each trained from the same seed and selected on val, then tested once. Only the top rung,
the full AVST, starts from the grounding pre-training (--pretrained_grounding), as the main job's
AVST does: the pre-training is the spatial grounding's own training (its audio encoder learns to
find the sound in the frame), so the rungs without spatial grounding start from scratch.

Outputs go to --out (default outputs/ladder), a folder the ladder owns: one checkpoint folder and
one test report per rung, ``ladder.json`` (every rung's per-type table, the paper's figures and
which of the paper's orderings hold) and ``ladder.png``, with a row for every finished rung (also
those not asked for this time). A rung that finished with the same recipe and the same files is
skipped: every file it reads (annotations, each feature file, the features' metadata, the grounding
checkpoint) by size and modification time; a rung killed midway resumes from its last epoch; a
rung whose recipe or files changed is trained again, and the ladder says which files changed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from . import checkpoint, stamps
from .models import LADDER, rung_doc
from .recipes import DEMO
from .tasks.config import RunConfig
from .utils import (EXIT_CODES, at_least, atomic_save, atomic_write_text, check_writable, fingerprint, metadata_path,
                    run_lock, sha256, user_errors)

# The paper's overall test accuracy of each rung (original json), and its AVST row per type.
PAPER_OVERALL = {"question_only": 54.09, "aq": 64.26, "vq": 65.28, "avq": 67.72, "avq_tg": 70.27, "avst": 71.52}
PAPER_AVST = {"Audio Counting": 78.18, "Audio Comparative": 67.05, "Audio Avg": 74.06,
              "Visual Counting": 71.56, "Visual Location": 76.38, "Visual Avg": 74.00,
              "AV Existential": 81.81, "AV Location": 64.51, "AV Counting": 70.80, "AV Comparative": 66.01,
              "AV Temporal": 63.23, "AV Avg": 69.54, "Overall": 71.52}
COLUMNS = [("Audio Counting", "A Cnt"), ("Audio Comparative", "A Cmp"), ("Audio Avg", "Audio"),
           ("Visual Counting", "V Cnt"), ("Visual Location", "V Loc"), ("Visual Avg", "Visual"),
           ("AV Existential", "AV Ex"), ("AV Location", "AV Loc"), ("AV Counting", "AV Cnt"),
           ("AV Comparative", "AV Cmp"), ("AV Temporal", "AV Tmp"), ("AV Avg", "AV"), ("Overall", "Overall")]
# the paper's steps up the ladder (A+Q and V+Q are two ways up from Q; each gains overall)
PAPER_ORDER = [("question_only", "aq"), ("question_only", "vq"), ("aq", "avq"), ("vq", "avq"), ("avq", "avq_tg"),
               ("avq_tg", "avst")]
RECIPE = dict(zip(DEMO["avst"][::2], DEMO["avst"][1::2]))   # the main job's AVST demo recipe


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data (defaults: the embedded default set under --data)")
    g.add_argument("--data", default="data", help="folder with json/avqa-{train,val,test}.json and feats/ (default: data)")
    g.add_argument("--label_train", help="train annotations; the vocabularies come from it (default: DATA/json/avqa-train.json)")
    g.add_argument("--label_val", help="validation annotations, which select each rung's checkpoint (default: DATA/json/avqa-val.json)")
    g.add_argument("--label_test", help="test annotations, reported once per rung (default: DATA/json/avqa-test.json)")
    g.add_argument("--audio_dir", help="VGGish features (default: DATA/feats/vggish)")
    g.add_argument("--video_res14x14_dir", help="ResNet-18 14x14 features (default: DATA/feats/res18_14x14)")
    main_jobs = checkpoint.trained_path("outputs/grounding", "main_grounding_gen", "grounding").as_posix()
    g.add_argument("--pretrained_grounding", default=main_jobs,
                   help="the grounding checkpoint the full AVST starts from, as in the main job; 'none' to start it "
                        f"from scratch too (default: the main job's, {main_jobs})")
    r = p.add_argument_group("recipe (defaults: the main job's AVST demo recipe; the original's: --epochs 80 --lr 1e-4 "
                             "--lr_step 8 --batch-size 64)")
    r.add_argument("--epochs", type=at_least(1), default=int(RECIPE["--epochs"]), help="default: %(default)s")
    r.add_argument("--lr", type=at_least(0.0, float), default=float(RECIPE["--lr"]), help="default: %(default)s")
    r.add_argument("--lr_step", type=at_least(1), default=int(RECIPE["--lr_step"]), help="default: %(default)s")
    r.add_argument("--batch-size", dest="batch_size", type=at_least(1), default=int(RECIPE["--batch-size"]),
                   help="default: %(default)s")
    r.add_argument("--seed", type=int, default=1, help="default: %(default)s")
    o = p.add_argument_group("run")
    o.add_argument("--rungs", default=",".join(LADDER),
                   help=f"comma-separated rungs to run, of {', '.join(LADDER)} (default: all)")
    o.add_argument("--out", default="outputs/ladder", help="the ladder's own folder (default: outputs/ladder)")
    o.add_argument("--plot", default=None, help="where the PNG goes (default: OUT/ladder.png)")
    o.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    o.add_argument("--amp", action="store_true", help="mixed precision (passed to every rung)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    d = Path(a.data)
    a.label_train = a.label_train or str(d / "json" / "avqa-train.json")
    a.label_val = a.label_val or str(d / "json" / "avqa-val.json")
    a.label_test = a.label_test or str(d / "json" / "avqa-test.json")
    a.audio_dir = a.audio_dir or str(d / "feats" / "vggish")
    a.video_res14x14_dir = a.video_res14x14_dir or str(d / "feats" / "res18_14x14")
    a.rungs = [r.strip() for r in a.rungs.split(",") if r.strip()]
    unknown = [r for r in a.rungs if r not in LADDER]
    if unknown or not a.rungs:
        p.error(f"--rungs: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(LADDER)}")
    a.rungs = [r for r in LADDER if r in a.rungs]  # bottom to top, whatever the order given
    a.plot = Path(a.plot) if a.plot else Path(a.out) / "ladder.png"
    return a


# ----------------------------------------------------------------------------- one rung


def _sha(path: str | Path) -> str | None:
    p = Path(path)
    return sha256(p) if p.is_file() else None


def rung_config(args: argparse.Namespace, rung: str) -> dict:
    """The settings a rung's result depends on (the files it reads are in ``rung_reads``)."""
    config = {"rung": rung, "recipe": recipe_flags(args), "amp": args.amp}
    if rung == "avst":
        config["pretrained_grounding"] = args.pretrained_grounding != "none"
    return config


def rung_reads(args: argparse.Namespace, rung: str) -> dict:
    """The fingerprint of every file a rung reads: a feature file changed in place retrains the rung."""
    cls = LADDER[rung][1]
    paths = [args.label_train, args.label_val, args.label_test]
    for folder, used in ((args.audio_dir, cls.uses_audio), (args.video_res14x14_dir, cls.uses_visual)):
        if used:
            paths += [folder, metadata_path(folder)]
    if rung == "avst" and args.pretrained_grounding != "none":
        paths.append(args.pretrained_grounding)
    return fingerprint(paths)


def recipe_flags(args: argparse.Namespace) -> list[str]:
    return ["--epochs", str(args.epochs), "--lr", str(args.lr), "--lr_step", str(args.lr_step),
            "--batch-size", str(args.batch_size), "--seed", str(args.seed)]


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
    if report is None or report.get("model") != rung or report.get("checkpoint_sha256") != _sha(ckpt):
        return "its test report is missing or not of its checkpoint: resuming"
    return None


def rung_checkpoint(args: argparse.Namespace, rung: str) -> Path:
    """The checkpoint a rung's training writes and its test reads: OUT/<rung>/<rung>.pt."""
    return checkpoint.trained_path(Path(args.out) / rung, rung)


def run_config(args: argparse.Namespace, rung: str, **settings) -> RunConfig:
    """The config of a rung's training or test: main_avst.py's defaults, the ladder's files and ``settings``."""
    out = Path(args.out)
    return RunConfig.for_script(
        "avst", audio_dir=args.audio_dir, video_res14x14_dir=args.video_res14x14_dir, label_train=args.label_train,
        label_val=args.label_val, label_test=args.label_test, model=rung, model_save_dir=str(out / rung),
        checkpoint=rung, tensorboard_dir=str(out / "runs"), device=args.device, amp=args.amp, quiet=args.quiet,
        **settings)


def run_rung(args: argparse.Namespace, rung: str, config: dict, reads: dict) -> dict:
    """Train (resuming when the config and files are those it was started with) and test one rung."""
    from .tasks import qa
    stamp = stamps.read(stamp_path(args, rung))
    stale = stamps.staleness(stamp, config, lambda: reads)
    same = stale is None or not stale.fresh
    # same settings: continue its own run (a finished one trains no further); other settings: start over
    recipe = dict(epochs=args.epochs, lr=args.lr, lr_step=args.lr_step, batch_size=args.batch_size, seed=args.seed)
    if rung == "avst":
        recipe["pretrained_grounding"] = args.pretrained_grounding
    stamps.write(stamp_path(args, rung), config=config, reads=reads, complete=False)
    t0 = time.time()
    _exit(user_errors(qa.run)(run_config(args, rung, resume=same, overwrite=not same, **recipe)), f"training {rung}")
    t1 = time.time()
    _exit(user_errors(qa.run)(run_config(args, rung, mode="test", results=str(report_path(args, rung)))),
          f"testing {rung}")
    seconds = {"train": round(t1 - t0, 1), "test": round(time.time() - t1, 1)}
    if same and stamp.get("seconds"):  # a resumed rung: its time is the time of all its runs
        seconds = {k: round(v + stamp["seconds"].get(k, 0.0), 1) for k, v in seconds.items()}
    stamps.write(stamp_path(args, rung), config=config, reads=reads, complete=True, seconds=seconds)
    return seconds


def rung_row(args: argparse.Namespace, rung: str, status: str) -> dict:
    """A finished rung's row of ladder.json, from its stamp, test report and checkpoint."""
    stamp = stamps.read(stamp_path(args, rung)) or {}
    report = json.loads(report_path(args, rung).read_text())
    ckpt = checkpoint.load_dict(rung_checkpoint(args, rung))
    return {"model": rung, "label": LADDER[rung][0], "computes": rung_doc(rung), "status": status,
            "table": report["table"], "paper_overall": PAPER_OVERALL[rung],
            "best_epoch": ckpt.get("epoch"), "val_accuracy": ckpt.get("val_accuracy"),
            "seconds": stamp.get("seconds"), "checkpoint": str(rung_checkpoint(args, rung)),
            "report": str(report_path(args, rung))}


def _exit(code: int | None, what: str) -> None:
    if code not in (0, None):
        raise SystemExit(f"ladder: {what} failed (exit code {code}); run python -m avqa.ladder again to resume")


# ----------------------------------------------------------------------------- the table


def orderings(tables: dict[str, dict]) -> dict[str, dict]:
    """Which of the paper's orderings hold on these tables (only those whose rungs were run)."""
    def acc(rung, row):
        return tables[rung][row]["accuracy"]

    checks = {}
    for rung, row, name in (("aq", "Audio Avg", "A+Q above Q on the audio questions"),
                            ("vq", "Visual Avg", "V+Q above Q on the visual questions")):
        if rung in tables and "question_only" in tables and None not in (acc(rung, row), acc("question_only", row)):
            checks[name] = {"holds": acc(rung, row) > acc("question_only", row),
                            "values": [acc("question_only", row), acc(rung, row)], "row": row}
    ran = [r for r in LADDER if r in tables]
    if "avst" in tables and len(ran) > 1:
        best = max(ran, key=lambda r: acc(r, "Overall"))
        checks["the full AVST best overall"] = {"holds": all(acc("avst", "Overall") >= acc(r, "Overall") for r in ran),
                                                "values": {r: acc(r, "Overall") for r in ran}, "best": best}
    for lower, upper in PAPER_ORDER:  # each step up the ladder gains overall, as in the paper
        if lower in tables and upper in tables:
            checks[f"{LADDER[upper][0]} above {LADDER[lower][0]} overall"] = {
                "holds": acc(upper, "Overall") > acc(lower, "Overall"),
                "values": [acc(lower, "Overall"), acc(upper, "Overall")],
                "paper": [PAPER_OVERALL[lower], PAPER_OVERALL[upper]]}
    return checks


def format_ladder(rows: list[dict], title: str) -> str:
    head = f"  {'rung':<7}{'model':<15}" + "".join(f"{short:>8}" for _, short in COLUMNS) + f"{'paper':>8}"
    lines = [title, head]
    for r in rows:
        cells = "".join(f"{r['table'][k]['accuracy']:8.2f}" if r["table"][k]["accuracy"] is not None else f"{'-':>8}"
                        for k, _ in COLUMNS)
        lines.append(f"  {r['label']:<7}{r['model']:<15}{cells}{PAPER_OVERALL[r['model']]:8.2f}")
    lines.append(f"  {'+SG':<7}{'paper AVST':<15}" + "".join(f"{PAPER_AVST[k]:8.2f}" for k, _ in COLUMNS)
                 + f"{PAPER_AVST['Overall']:8.2f}")
    lines.append("  (paper: real MUSIC-AVQA, original json; it gives each rung's overall and AVST's row per type)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the plot

SERIES = [("Overall", "Overall", (20, 20, 20)), ("Audio Avg", "Audio", (31, 119, 180)),
          ("Visual Avg", "Visual", (44, 160, 44)), ("AV Avg", "Audio-Visual", (214, 39, 40))]


def draw_plot(rows: list[dict], path: Path, subtitle: str) -> None:
    """Accuracy by rung: ours (solid) overall and per modality; the paper's (dashed, hollow) beside."""
    from .visualize import font
    W, H, left, right, top, bottom = 980, 600, 70, 200, 70, 60
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    ours = [r["table"][k]["accuracy"] for r in rows for k, _, _ in SERIES if r["table"][k]["accuracy"] is not None]
    paper = [PAPER_OVERALL[r["model"]] for r in rows] + [PAPER_AVST[k] for k, _, _ in SERIES]
    lo = 10 * int(min(ours + paper) // 10)
    hi = 10 * (int(max(ours + paper) // 10) + 1)
    pw, ph = W - left - right, H - top - bottom
    n = len(rows)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + pw * (i + 0.5) / n
        return x, top + ph * (hi - value) / (hi - lo)

    d.text((left, 12), "The ablation ladder: test accuracy by rung", fill="black", font=font(20))
    d.text((left, 40), subtitle, fill=(80, 80, 80), font=font(13))
    for v in range(lo, hi + 1, 5):
        _, y = xy(0, v)
        d.line([(left, y), (left + pw, y)], fill=(225, 225, 225) if v % 10 else (200, 200, 200))
        d.text((left - 8, y), f"{v}", fill="black", font=font(13), anchor="rm")
    d.rectangle([left, top, left + pw, top + ph], outline="black")
    for i, r in enumerate(rows):
        x, _ = xy(i, lo)
        d.text((x, top + ph + 8), r["label"], fill="black", font=font(15), anchor="ma")
        d.text((x, top + ph + 28), r["model"], fill=(90, 90, 90), font=font(12), anchor="ma")
    d.text((18, top + ph / 2), "%", fill="black", font=font(15), anchor="mm")

    def dashed(p, q, colour, dash=7):
        (x0, y0), (x1, y1) = p, q
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
        k = 0
        while k * dash < length:
            a, b = k * dash / length, min((k + 0.6) * dash / length, 1)
            d.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                   fill=colour, width=2)
            k += 1

    def marker(p, colour, filled=True, r=5):
        d.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=colour if filled else "white", outline=colour, width=2)

    paper_pts = [xy(i, PAPER_OVERALL[r["model"]]) for i, r in enumerate(rows)]
    for p, q in zip(paper_pts, paper_pts[1:]):
        dashed(p, q, (20, 20, 20))
    for p in paper_pts:
        marker(p, (20, 20, 20), filled=False)
    top_rung = next((i for i, r in enumerate(rows) if r["model"] == "avst"), None)
    if top_rung is not None:  # the paper's AVST per modality (the paper does not give the lower rungs')
        for j, (k, _, colour) in enumerate(SERIES[1:]):
            x, y = xy(top_rung, PAPER_AVST[k])
            marker((x + 12 * (j - 1), y), colour, filled=False, r=6)
    for k, _, colour in SERIES:
        pts = [xy(i, r["table"][k]["accuracy"]) for i, r in enumerate(rows) if r["table"][k]["accuracy"] is not None]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=3 if k == "Overall" else 2)
        for p in pts:
            marker(p, colour)
    lx, ly = left + pw + 18, top + 4
    d.text((lx, ly), "this run", fill="black", font=font(14))
    for j, (_, name, colour) in enumerate(SERIES):
        y = ly + 24 + 22 * j
        d.line([(lx, y + 7), (lx + 26, y + 7)], fill=colour, width=3)
        marker((lx + 13, y + 7), colour)
        d.text((lx + 34, y), name, fill="black", font=font(13))
    ly += 24 + 22 * len(SERIES) + 16
    d.text((lx, ly), "paper (real data)", fill="black", font=font(14))
    dashed((lx, ly + 31), (lx + 26, ly + 31), (20, 20, 20))
    marker((lx + 13, ly + 31), (20, 20, 20), filled=False)
    d.text((lx + 34, ly + 24), "Overall", fill="black", font=font(13))
    for j, (_, name, colour) in enumerate(SERIES[1:]):
        y = ly + 46 + 22 * j
        marker((lx + 13, y + 7), colour, filled=False, r=6)
        d.text((lx + 34, y), f"{name}, AVST", fill="black", font=font(13))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, lambda tmp: img.save(tmp, format="PNG"))


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
    if "avst" in args.rungs and args.pretrained_grounding != "none" and not Path(args.pretrained_grounding).is_file():
        raise SystemExit(f"--pretrained_grounding {args.pretrained_grounding} not found: run python -m avqa.pipeline "
                         f"(or grounding_gen/main_grd_gen.py) first, or pass --pretrained_grounding none")
    with run_lock(out, "ladder"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    t_all = time.time()
    rows = []
    for rung in LADDER:
        label = LADDER[rung][0]
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
            print(f"\n== {label} {rung} ({why}) ==\n" + rung_doc(rung), flush=True)
            run_rung(args, rung, config, reads)
            status = "ran"
        rows.append(rung_row(args, rung, status))
    tables = {r["model"]: r["table"] for r in rows}
    checks = orderings(tables)
    n_test = rows[0]["table"]["Overall"]["count"]
    title = f"the ablation ladder on {args.label_test} ({n_test} questions), test accuracy %:"
    print("\n" + format_ladder(rows, title))
    for name, c in checks.items():
        print(f"  {'holds ' if c['holds'] else 'BREAKS'}  {name}: {c['values']}")
    total = round(time.time() - t_all, 1)
    result = {"annotations": {k: {"path": getattr(args, k), "sha256": _sha(getattr(args, k))}
                              for k in ("label_train", "label_val", "label_test")},
              "features": {"audio": args.audio_dir, "visual": args.video_res14x14_dir},
              "recipe": recipe_flags(args), "pretrained_grounding": args.pretrained_grounding,
              "rungs": rows, "orderings": checks,
              "paper": {"overall": PAPER_OVERALL, "avst": PAPER_AVST,
                        "source": "the paper's ablation (overall) and AVST row, real MUSIC-AVQA, original json"},
              "seconds": total}
    atomic_write_text(out / "ladder.json", json.dumps(result, indent=1))
    subtitle = (f"{args.label_test}, {n_test} questions; recipe {' '.join(recipe_flags(args))}; "
                f"paper: real MUSIC-AVQA")
    draw_plot(rows, args.plot, subtitle)
    print(f"\n{len(rows)} rungs in {total:.0f} s; table: {out / 'ladder.json'}; plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
