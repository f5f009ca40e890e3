"""Generate the synthetic MUSIC-AVQA-format dataset (videos, annotation files, ground truth).

    python -m avqa.synthetic --out data                 # the default demo set
    python -m avqa.synthetic --out /tmp/s --num_clips 8 --seconds 4

Writes ``videos/<video_id>.mp4`` (H.264 + AAC), ``json/avqa-{train,val,test}.json`` in the
original schema, ``ground_truth/<video_id>.json`` (what each clip holds; see data/README.md) and
``synthetic.json`` (the flags and a summary). Same seed and flags give byte-identical JSON and
the same decoded frames. A finished set with the same flags is left as it is.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np

from ..annotations import (INSTRUMENTS, Vocab, format_statistics, load_annotations, statistics, tokenize,
                           validate)
from ..machine import usable_cores
from ..media import sample_frame_numbers
from ..utils import EXIT_CODES, atomic_write_text, progress, user_errors
from .balance import balance
from .questions import ask
from .render import render_clip
from .scene import MAX_POSITIONS, Scene, sample_scene, swap_sound_tracks

GENERATOR_VERSION = 5  # 3: composed clips carry the 'va' prefix; 4: x264 without mbtree (same bytes every run); 5: fast AAC coder
SPLITS = ("train", "val", "test")
FIRST_VIDEO_ID = 90000001  # 8 digits, far from the real dataset's ids


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m avqa.synthetic", epilog=EXIT_CODES,
        description="Generate a synthetic MUSIC-AVQA-format dataset: real mp4 clips with picture and "
                    "sound, annotation files in the original schema, and per-clip ground truth.")
    p.add_argument("--out", default="data", help="output folder (default: data, where every script looks)")
    p.add_argument("--num_clips", type=int, default=480, help="number of clips (default: 480)")
    p.add_argument("--seconds", type=int, default=10,
                   help="clip length in seconds; 60 matches the real data (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed and flags give the same set")
    p.add_argument("--fps", type=float, default=10.0,
                   help="video frame rate (default: 10; the features read one frame per second, and encoding "
                        "fewer frames makes the set faster)")
    p.add_argument("--width", type=int, default=320, help="frame width in pixels (default: 320)")
    p.add_argument("--height", type=int, default=240, help="frame height in pixels (default: 240)")
    p.add_argument("--sample_rate", type=int, default=22050, help="audio sample rate in Hz (default: 22050)")
    p.add_argument("--instruments", default=",".join(INSTRUMENTS),
                   help="comma-separated instrument classes to draw from (default: all 22)")
    p.add_argument("--min_instruments", type=int, default=1, help="fewest instruments in a clip (default: 1)")
    p.add_argument("--max_instruments", type=int, default=MAX_POSITIONS,
                   help=f"most instruments in a clip, at most {MAX_POSITIONS} positions (default: {MAX_POSITIONS})")
    p.add_argument("--questions_per_clip", type=int, default=14,
                   help="questions asked per clip before balancing (default: 14)")
    p.add_argument("--voiceover_rate", type=float, default=0.3, help="share of clips with a voiceover")
    p.add_argument("--swap_rate", type=float, default=0.12,
                   help="share of clips whose sound track comes from another clip (default: 0.12)")
    p.add_argument("--split", default="0.7,0.1,0.2", help="train,val,test shares of the clips, split by video")
    p.add_argument("--max_answer_share", type=float, default=0.55,
                   help="cap on the most common answer of each template in each split (default: 0.55)")
    p.add_argument("--workers", type=int, default=usable_cores(),
                   help="parallel render processes (default: the CPUs this process may use)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing set made with other flags (never needed for the same flags)")
    args = p.parse_args(argv)
    problems = check_args(args)
    if problems:
        p.error("; ".join(problems))
    return args


def check_args(args: argparse.Namespace) -> list[str]:
    problems = []
    classes = [c.strip() for c in args.instruments.split(",") if c.strip()]
    unknown = [c for c in classes if c not in INSTRUMENTS]
    if unknown:
        problems.append(f"unknown instrument(s) {', '.join(unknown)}; the 22 classes are {', '.join(INSTRUMENTS)}")
    if not classes:
        problems.append("--instruments names no class")
    if args.num_clips < 1:
        problems.append("--num_clips must be at least 1")
    if args.seconds < 2:
        problems.append("--seconds must be at least 2")
    if args.max_instruments > MAX_POSITIONS:
        problems.append(f"--max_instruments {args.max_instruments} is more than the {MAX_POSITIONS} positions in a frame")
    if not 1 <= args.min_instruments <= args.max_instruments:
        problems.append("need 1 <= --min_instruments <= --max_instruments")
    if args.fps <= 1 or args.width < 64 or args.height < 64 or args.sample_rate < 8000:
        problems.append("need --fps > 1, --width and --height >= 64, --sample_rate >= 8000")
    if args.width % 2 or args.height % 2:
        problems.append("--width and --height must be even (H.264 4:2:0)")
    try:
        shares = [float(x) for x in args.split.split(",")]
        if len(shares) != 3 or min(shares) < 0 or sum(shares) <= 0:
            raise ValueError
    except ValueError:
        problems.append("--split must be three non-negative numbers like 0.7,0.1,0.2")
    args.classes = classes
    return problems


def set_flags(args: argparse.Namespace) -> dict:
    """What makes a set what it is: the manifest records it, and a bundled checkpoint names the set it was trained on."""
    keys = ["num_clips", "seconds", "seed", "fps", "width", "height", "sample_rate", "instruments",
            "min_instruments", "max_instruments", "questions_per_clip", "voiceover_rate", "swap_rate",
            "split", "max_answer_share"]
    return {"generator_version": GENERATOR_VERSION, **{k: getattr(args, k) for k in keys}}


def plan(args: argparse.Namespace) -> tuple[list[Scene], dict[str, list[dict]]]:
    """Scenes and questions: everything that is decided before any pixel is drawn."""
    rng = np.random.default_rng(args.seed)
    shares = np.array([float(x) for x in args.split.split(",")])
    counts = np.floor(shares / shares.sum() * args.num_clips).astype(int)
    counts[0] += args.num_clips - counts.sum()
    order = rng.permutation(args.num_clips)
    split_of = {}
    for name, lo, hi in zip(SPLITS, np.cumsum([0, *counts[:-1]]), np.cumsum(counts)):
        for k in order[lo:hi]:
            split_of[int(k)] = name
    scenes = [sample_scene(rng, f"{FIRST_VIDEO_ID + k:08d}", split_of[k], args.seconds, args.classes,
                           args.min_instruments, args.max_instruments, args.voiceover_rate)
              for k in range(args.num_clips)]
    swap_sound_tracks(scenes, rng, args.swap_rate)
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for scene in scenes:
        rows[scene.split].extend(ask(scene, rng, args.questions_per_clip))
    rows["train"] = balance(rows["train"], rng, args.max_answer_share)
    # val/test only ask what the train vocabulary can express (the vocabularies come from train)
    vocab = Vocab.from_samples(rows["train"])
    words, answers = set(vocab.questions), set(vocab.answers)
    for split in SPLITS[1:]:
        rows[split] = [r for r in rows[split] if r["anser"] in answers and set(tokenize(r)) <= words]
        rows[split] = balance(rows[split], rng, args.max_answer_share)
    qid = 0
    for split in SPLITS:
        for r in rows[split]:
            qid += 1
            r["question_id"] = qid
    return scenes, rows


def ground_truth(scene: Scene, rendered: dict, args: argparse.Namespace) -> dict:
    own = scene.donor is None
    heard_from = scene.donor if scene.donor is not None else scene
    return {
        "video_id": scene.video_id,
        "split": scene.split,
        "seconds": scene.seconds,
        "fps": args.fps,
        "frames": rendered["frames"],
        "width": args.width,
        "height": args.height,
        "sample_rate": args.sample_rate,
        "sampled_frame_numbers": sample_frame_numbers(rendered["frames"], args.fps, scene.seconds),
        "background": scene.background,
        "sound_from": scene.audio_from,
        "voiceover": scene.heard_voiceover(),
        "instruments": [{
            "class": i.cls,
            "slot": i.slot,
            "position": i.side,
            "style": i.style,
            "playing": i.intervals,
            "audible": own and i.plays,
            "level_db": rendered["levels_db"].get(k) if own else None,
            "boxes": rendered["boxes"][k],
        } for k, i in enumerate(scene.instances)],
        "heard": [{
            "class": i.cls,
            "style": i.style,
            "playing": i.intervals,
            "level_db": rendered["levels_db"].get(k),
        } for k, i in enumerate(heard_from.instances) if i.plays],
        "seed": scene.seed,
    }


def _render(task):
    scene, path, args = task
    rendered = render_clip(scene, path, args.width, args.height, args.fps, args.sample_rate)
    return scene.video_id, ground_truth(scene, rendered, args)


def is_complete(args: argparse.Namespace) -> bool:
    """Whether ``args.out`` already holds the whole set these flags make."""
    manifest_path = Path(args.out) / "synthetic.json"
    if not manifest_path.exists():
        return False
    manifest = json.loads(manifest_path.read_text())
    return manifest.get("flags") == set_flags(args) and _complete(Path(args.out), manifest)


def _prepare(args: argparse.Namespace, out: Path, flags: dict, log) -> Path:
    """Clear what ``out`` holds of a set made with other flags (refused without --force, unless an older
    generator made it from the same flags), refuse annotation files this generator did not write, and mark
    the set being made (returns that mark, ``.synthetic-partial.json``)."""
    manifest_path = out / "synthetic.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        older = {**old.get("flags", {}), "generator_version": GENERATOR_VERSION} == flags
        if old.get("flags") != flags:
            if older:
                log(f"{out} holds the set these flags made with an older version of the generator; making it anew")
            elif not args.force:
                raise SystemExit(f"{out} holds a synthetic set made with other flags; pass --force to replace it "
                                 f"or choose another --out")
            for sub in ("videos", "json", "ground_truth"):
                shutil.rmtree(out / sub, ignore_errors=True)
            manifest_path.unlink()
    elif (out / "json" / "avqa-train.json").exists() and not (out / ".synthetic-partial.json").exists():
        raise SystemExit(f"{out}/json already holds annotation files that this generator did not write "
                         f"(the real dataset?); choose another --out, or --force to overwrite")
    for sub in ("videos", "json", "ground_truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    partial = out / ".synthetic-partial.json"
    if partial.exists() and json.loads(partial.read_text()) != flags:
        for f in [*(out / "videos").glob("*.mp4"), *(out / "ground_truth").glob("*.json")]:
            f.unlink()
    atomic_write_text(partial, json.dumps(flags, indent=1))
    return partial


def _render_clips(scenes: list, out: Path, args: argparse.Namespace, log) -> None:
    """Render each clip not rendered yet (its mp4 and ground truth), in ``args.workers`` processes."""
    tasks = []
    for s in scenes:
        gt_path = out / "ground_truth" / f"{s.video_id}.json"
        if not ((out / "videos" / f"{s.video_id}.mp4").exists() and gt_path.exists()):
            tasks.append((s, out / "videos" / f"{s.video_id}.mp4", args))
    if len(tasks) < len(scenes):
        log(f"resuming: {len(scenes) - len(tasks)} of {len(scenes)} clips already rendered")
    workers = max(1, min(args.workers, len(tasks)))
    with progress(total=len(tasks), desc="render clips", unit="clip", disable=not tasks) as bar:
        ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
        with ctx.Pool(workers) if workers > 1 else nullcontext() as pool:
            for vid, gt in (pool.imap_unordered(_render, tasks) if pool else map(_render, tasks)):
                atomic_write_text(out / "ground_truth" / f"{vid}.json", json.dumps(gt, indent=1))
                bar.update()


def generate(args: argparse.Namespace, log=print) -> dict:
    """Make (or finish) the set ``args`` describe in ``args.out``; returns its manifest."""
    out = Path(args.out)
    manifest_path = out / "synthetic.json"
    flags = set_flags(args)
    if is_complete(args):
        log(f"synthetic set in {out} is complete for these flags; nothing to do")
        return json.loads(manifest_path.read_text())
    partial = _prepare(args, out, flags, log)

    t0 = time.time()
    scenes, rows = plan(args)
    for split, r in rows.items():
        validate(r, f"{split} (generated)")
    _render_clips(scenes, out, args, log)
    for split in SPLITS:
        atomic_write_text(out / "json" / f"avqa-{split}.json",
                          json.dumps(rows[split], indent=1, ensure_ascii=False) + "\n")
    summary = {split: {"clips": sum(s.split == split for s in scenes),
                       "qa_pairs": len(rows[split])} for split in SPLITS}
    manifest = {
        "flags": flags,
        "videos": {split: [s.video_id for s in scenes if s.split == split] for split in SPLITS},
        "summary": summary,
        "sound_swapped": sum(s.audio_from is not None for s in scenes),
        "with_voiceover": sum(s.heard_voiceover() is not None for s in scenes),
        "instruments_per_clip": dict(sorted(Counter(s.n for s in scenes).items())),
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    partial.unlink()
    manifest["seconds_taken"] = round(time.time() - t0, 1)
    return manifest


def _complete(out: Path, manifest: dict) -> bool:
    ids = [v for vs in manifest.get("videos", {}).values() for v in vs]
    return (all((out / "json" / f"avqa-{s}.json").exists() for s in SPLITS)
            and all((out / "videos" / f"{v}.mp4").exists() and (out / "ground_truth" / f"{v}.json").exists()
                    for v in ids))


def describe(args: argparse.Namespace, manifest: dict) -> str:
    """The statistics of a generated set: per split, and (for train) per type, template and answer."""
    out = Path(args.out)
    lines = [format_statistics(f"{out}/json/avqa-{split}.json",
                               statistics(load_annotations(out / "json" / f"avqa-{split}.json")),
                               details=split == "train") for split in SPLITS]
    lines.append(f"clips: {args.num_clips} of {args.seconds} s; sound from another clip: {manifest['sound_swapped']}; "
                 f"with voiceover: {manifest['with_voiceover']}; instruments per clip: "
                 f"{manifest['instruments_per_clip']}")
    if "seconds_taken" in manifest:
        lines.append(f"generated in {manifest['seconds_taken']} s "
                     f"({args.num_clips / max(manifest['seconds_taken'], 1e-9):.1f} clips/s)")
    return "\n".join(lines)


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(describe(args, generate(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
