"""TSPM on the real MUSIC-AVQA's shapes on this machine: disk, the per-question files, start-up, memory,
open files and training samples/s, projected to one epoch and to the 30-epoch recipe.

What it builds (under --work, deleted at the end unless --keep), for 9,288 sixty-second videos and
45,867 questions (the annotation files of benchmarks/bench_scale.py: train 32,087 / val 4,595 /
test 9,185 rows sampled from the real val and test files, question ids renumbered so that every
question has its own files), each folder with a metadata file beside it:
- per video: VGGish [60,128] float32 and CLIP frames [60,768] float32, written (random values, the
  same bytes in every file); ToMe tokens [10,14,1024] as sparse files (header written, body a hole
  that takes no disk and reads as zeros), float32 as the release saves them and float16;
- per question id: the CLIP question and QA-prompt features [1,768] float32, written with np.save
  (91,734 small files; the time to write them is measured, not the time to encode them).

A read of a hole costs the CPU a page-cache page but no disk time, so the first run's NaN scan and
the training reads of the token files are faster here than on a disk that holds 5.3 GB of real
tokens (--disk_mb_s gives the figure for a real disk).

What it measures, through TSPM's own code (avqa.tspm.run.parse, the family's open_inputs and
files_read, avqa.engine.ownership.run_record, TSPMDataset, make_loader, the model, train_step),
each training in its own process as `python net_tspm/main_train.py` would run on the full set:
- start-up until the first optimiser step: annotations and vocabularies, the run record's stamps
  of every file read, the checks of every feature file with the NaN scan (the first run's, and a
  later run's, where the video folders' scan is remembered in <folder>.verified.json), the model
  and loaders; for the float32 tokens and again for float16;
- peak resident memory (VmHWM) and open file descriptors, against the soft limit on open files;
- training samples/s at batch 64 (the release recipe) for float32 and float16 tokens: the two
  processes take turns of --block batches (the other stopped meanwhile), so that load from other
  programs falls on both alike; with the share of the time the step waited for the loader.

    python benchmarks/bench_tspm_scale.py                   # 10-15 minutes on 2 cores, 2.8 GB of disk
    python benchmarks/bench_tspm_scale.py --batches 10 --videos 500     # a quick look
    python benchmarks/bench_tspm_scale.py --keep --work /data/tmp        # keep the simulated set there
"""
import time

_T_PROCESS = time.perf_counter()  # before the heavy imports: a training process's start-up counts them

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
from avqa.machine import describe_machine
from avqa.store import verified_path
from avqa.tspm.data import AUDIO_SHAPE, FRAME_SHAPE, TEXT_DIM, TOKEN_SHAPE
from avqa.tspm.run import TSPMConfig
from avqa.utils import metadata_path
from bench_scale import (QUESTIONS, SECONDS, VIDEOS, Child, Formatter, check_annotations_and_device, clean_up, duration,
                         emit, endless, gb, make_annotations, measurement_flags, npy_header, open_files, simulated_set_flags,
                         take_turns, vid, work_root)
from bench_train_data import peak_rss_gb

TOKEN_FRAMES = 10  # token frames per video in the release's ToMe files
RECIPE_EPOCHS = TSPMConfig().epochs
# folder: (per-video shape, dtype, written or sparse, what it is, flag)
VIDEO_FOLDERS = {
    "vggish": ((SECONDS, *AUDIO_SHAPE), "float32", "written", "VGGish", "--audios_feat_dir"),
    "clip_frames": ((SECONDS, *FRAME_SHAPE), "float32", "written", "CLIP frames", "--visual_feat_dir"),
    "tome14": ((TOKEN_FRAMES, *TOKEN_SHAPE), "float32", "sparse", "ToMe tokens, float32", "--visual_patch_dir"),
    "tome14_f16": ((TOKEN_FRAMES, *TOKEN_SHAPE), "float16", "sparse", "ToMe tokens, float16", "--visual_patch_dir"),
}
QUESTION_FOLDERS = {"qst": ("CLIP question", "--qst_feat_dir"), "qa_prompt": ("CLIP QA prompt", "--qst_prompt_dir")}
TOKENS = {"f32": "tome14", "f16": "tome14_f16"}


def folder_disk(folder: Path) -> dict:
    """Files, apparent bytes and bytes on disk (allocated blocks) of the .npy files in ``folder``."""
    files = apparent = on_disk = 0
    with os.scandir(folder) as it:
        for e in it:
            if e.name.endswith(".npy"):
                st = e.stat()
                files, apparent, on_disk = files + 1, apparent + st.st_size, on_disk + st.st_blocks * 512
    return {"files": files, "apparent": apparent, "on_disk": on_disk}


def make_video_folder(folder: Path, videos: int, shape: tuple, dtype: str, how: str, seed: int) -> float:
    """One .npy file per video: random values (one block, every file) or a hole after the header."""
    t = time.time()
    folder.mkdir(parents=True)
    header = npy_header(shape, dtype)
    body = np.random.default_rng(seed).standard_normal(shape).astype(dtype).tobytes()
    for k in range(videos):
        with open(folder / f"{vid(k)}.npy", "wb") as f:
            f.write(header)
            if how == "written":
                f.write(body)
            else:
                f.truncate(len(header) + len(body))
    metadata_path(folder).write_text(json.dumps({"seconds": SECONDS, "shape_per_video": list(shape), "dtype": dtype,
                                                 "simulated": f"bench_tspm_scale.py, {how}"}, indent=1))
    return time.time() - t


def renumber(json_dir: Path) -> dict[str, list[int]]:
    """Give every question of train, val and test its own question id (bench_scale numbers train from 0,
    which the real val and test ids overlap); returns the ids of each split."""
    ids, n = {}, 0
    for split in ("train", "val", "test"):
        path = json_dir / f"avqa-{split}.json"
        rows = json.loads(path.read_text())
        for r in rows:
            r["question_id"], n = n, n + 1
        path.write_text(json.dumps(rows))
        ids[split] = [r["question_id"] for r in rows]
    return ids


def make_question_folders(feats: Path, ids: list[int], seed: int) -> dict[str, float]:
    """``<qid>.npy`` [1,768] float32 per question id in each question folder; seconds taken per folder."""
    pool = np.random.default_rng(seed).standard_normal((997, 1, TEXT_DIM)).astype(np.float32)
    took = {}
    for name in QUESTION_FOLDERS:
        folder = feats / name
        folder.mkdir(parents=True)
        t = time.time()
        for k, qid in enumerate(ids):
            np.save(folder / f"{qid}.npy", pool[k % len(pool)])
        took[name] = time.time() - t
        metadata_path(folder).write_text(json.dumps({"shape_per_question": [1, TEXT_DIM], "dtype": "float32",
                                                     "simulated": "bench_tspm_scale.py, written"}, indent=1))
    return took


# ----------------------------------------------------------------------------- child processes


def train_argv(a) -> list[str]:
    """net_tspm/main_train.py's command line for the simulated set, with the --tokens folder."""
    feats, ann = Path(a.root) / "feats", Path(a.root) / "json"
    return ["--audios_feat_dir", str(feats / "vggish"), "--visual_feat_dir", str(feats / "clip_frames"),
            "--visual_patch_dir", str(feats / TOKENS[a.tokens]), "--qst_feat_dir", str(feats / "qst"),
            "--qst_prompt_dir", str(feats / "qa_prompt"), "--label_train", str(ann / "avqa-train.json"),
            "--label_val", str(ann / "avqa-val.json"), "--model_save_dir", str(Path(a.root) / "models"),
            "--device", "cuda:0" if a.device == "cuda" else a.device, "--quiet"]


def child_train(a) -> None:
    """train_qa's start-up up to the first optimiser step, then (unless --first_only) batches on command."""
    t_main = time.perf_counter()
    from avqa.annotations import Vocab
    from avqa.engine.loop import make_optimizer, train_step
    from avqa.engine.ownership import run_record
    from avqa.engine.runtime import Runtime, make_loader, to_device
    from avqa.tasks.inputs import load_split
    from avqa.tspm import data as tspm_data
    from avqa.tspm.run import FAMILY, parse
    cfg = parse(train_argv(a), "train")
    rt = Runtime(cfg)
    torch.manual_seed(cfg.seed)
    out = {"imports_s": t_main - _T_PROCESS, "text_s": 0.0}
    load_text = tspm_data.load_text_features

    def timed_load_text(*args, **kwargs):  # open_inputs' reads of the per-question files, timed apart
        t0 = time.perf_counter()
        try:
            return load_text(*args, **kwargs)
        finally:
            out["text_s"] += time.perf_counter() - t0

    tspm_data.load_text_features = timed_load_text
    t = time.perf_counter()
    train_samples = load_split(cfg.label_train)
    vocab = Vocab.from_samples(train_samples)
    splits = {"train": load_split(cfg.label_train, vocab, train_samples), "val": load_split(cfg.label_val, vocab)}
    samples = [s for sp in splits.values() for s in sp.samples]
    out["index_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run_record(cfg, "tspm", vocab, FAMILY.feature_dirs(cfg), [s["video_id"] for s in samples],
               FAMILY.files_read(cfg, samples))
    out["record_s"] = time.perf_counter() - t
    caches = [verified_path(d) for d in (cfg.audios_feat_dir, cfg.visual_feat_dir, cfg.visual_patch_dir)]
    before = [c.stat().st_mtime_ns if c.exists() else None for c in caches]
    t = time.perf_counter()
    inputs = FAMILY.open_inputs(cfg, samples)
    out["checks_s"] = time.perf_counter() - t
    out["scan_cached"] = [c.stat().st_mtime_ns if c.exists() else None for c in caches] == before
    t = time.perf_counter()
    model = FAMILY.build(cfg, vocab).to(rt.device)
    optimizer = make_optimizer(model, cfg.lr)
    objective = FAMILY.objective(None)
    loader = make_loader(inputs.dataset(splits["train"], True, cfg.seed), rt.per_process(cfg.batch_size), True, rt,
                         cfg.num_workers, cfg.seed)
    make_loader(inputs.dataset(splits["val"], False, cfg.seed), cfg.eval_batch_size, False, rt, cfg.num_workers, cfg.seed)
    batches = endless(loader, cfg.seed)
    out["build_s"] = time.perf_counter() - t

    def step() -> tuple[int, float]:
        """One optimiser step; returns its samples and the seconds it waited for the batch."""
        t0 = time.perf_counter()
        batch = next(batches)
        waited = time.perf_counter() - t0
        batch = to_device(batch, rt.device)
        train_step(model, batch, optimizer, rt, objective)  # returns floats: the step is done
        return len(batch["label"]), waited

    t = time.perf_counter()
    max_fds = open_files()
    step()
    out["first_step_s"] = time.perf_counter() - t
    out["startup_s"] = time.perf_counter() - _T_PROCESS
    max_fds = max(max_fds, open_files())
    out.update(videos=len({s["video_id"] for s in samples}),
               questions=len(splits["train"].samples), val_questions=len(splits["val"].samples),
               device=str(rt.device), threads=torch.get_num_threads(), token_drop_pages=inputs.tokens.drop_pages,
               batch_size=cfg.batch_size, max_fds=max_fds, nofile_soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
               peak_rss_gb=peak_rss_gb()[0])
    emit(out)
    if a.first_only:
        return
    for line in sys.stdin:  # "run N" (timed), "warm N", "done"
        cmd, *rest = line.split()
        if cmd == "done":
            break
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        seen, waited, t = 0, 0.0, time.perf_counter()
        for k in range(int(rest[0])):
            n, w = step()
            seen, waited = seen + n, waited + w
            max_fds = max(max_fds, open_files())
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        emit({"samples": seen, "seconds": dt, "waited_s": waited, "max_fds": max_fds,
              "cpu_user_s": cpu1.ru_utime - cpu0.ru_utime, "cpu_sys_s": cpu1.ru_stime - cpu0.ru_stime})
    del batches, loader
    emit({"peak_rss_gb": peak_rss_gb()[0], "max_fds": max_fds,
          "gpu_peak_gb": torch.cuda.max_memory_allocated() / 2**30 if rt.device.type == "cuda" else None})


# ----------------------------------------------------------------------------- the parent


def child_argv(a, root: Path, tokens: str, first_only: bool) -> list[str]:
    return ["--child", "train", "--root", str(root), "--tokens", tokens, "--device", a.device,
            *(["--first_only"] if first_only else [])]


def startup_line(r: dict) -> str:
    return (f"start-up {r['startup_s']:.1f} s (imports {r['imports_s']:.1f}, annotations {r['index_s']:.1f}, run record's "
            f"file stamps {r['record_s']:.1f}, feature checks {r['checks_s']:.1f} of which per-question files "
            f"{r['text_s']:.1f}{'; video scans remembered' if r['scan_cached'] else '; NaN scan of the video files'}, "
            f"model and loaders {r['build_s']:.1f}, first step {r['first_step_s']:.1f}); peak RSS "
            f"{r['peak_rss_gb']:.2f} GB; {r['max_fds']} files open of {r['nofile_soft']:,}")


def first_runs(a, root: Path, logs: Path) -> dict:
    """A first run for each token folder (one process each, until the first step): the scans are made."""
    out = {}
    for tokens in TOKENS:
        child = Child(f"first-{tokens}", child_argv(a, root, tokens, True), logs, __file__)
        try:
            out[tokens] = child.reply()
        finally:
            child.close()
        print(f"  first run, {tokens} tokens: {startup_line(out[tokens])}", flush=True)
    return out


def measure_training(a, root: Path, logs: Path) -> dict:
    """A later run for each token folder, taking turns of --block batches; their start-ups timed alone."""
    children, results = {}, {}
    try:
        for tokens in TOKENS:
            children[tokens] = Child(f"train-{tokens}", child_argv(a, root, tokens, False), logs, __file__)
            r = children[tokens].reply()
            children[tokens].pause()
            results[tokens] = {"startup": r, "samples": 0, "seconds": 0.0, "waited_s": 0.0, "blocks": [],
                               "cpu_user_s": 0.0, "cpu_sys_s": 0.0}
            print(f"  later run, {tokens} tokens: {startup_line(r)}", flush=True)
        take_turns(children, results, a.warmup, a.batches, a.block)
    finally:
        for child in children.values():
            child.close()
    return results


def report(a, disk: dict, made: dict, ann: dict, first: dict, trained: dict) -> None:
    print()
    print("=" * 100)
    print(f"TSPM's inputs of the full set ({a.videos:,} videos, {sum(ann['questions'].values()):,} questions):")
    print(f"  {'folder':<14} {'what':<22} {'files':>7} {'size':>9} {'on disk here':>13}  made in")
    total_written = 0
    for name, d in disk.items():
        what = VIDEO_FOLDERS[name][3] if name in VIDEO_FOLDERS else QUESTION_FOLDERS[name][0]
        sparse = name in VIDEO_FOLDERS and VIDEO_FOLDERS[name][2] == "sparse"
        # a written file takes whole 4 KiB blocks: the real folder takes what this one would written
        full = d["on_disk"] if not sparse else d["apparent"] + d["files"] * 2048  # half a block of slack per file
        total_written += full if name != "tome14_f16" else 0
        print(f"  {name:<14} {what:<22} {d['files']:>7,} {gb(full):>9} {gb(d['on_disk']):>13}  "
              f"{duration(made[name])}{' (sparse: the body is a hole)' if sparse else ''}")
    print(f"  the real set with float32 tokens takes about {gb(total_written)} "
          f"({gb(total_written - disk['tome14']['apparent'] + disk['tome14_f16']['apparent'])} with float16 tokens)")
    print(f"  the {disk['qst']['files'] + disk['qa_prompt']['files']:,} per-question files hold "
          f"{gb(disk['qst']['apparent'] + disk['qa_prompt']['apparent'])} but take "
          f"{gb(disk['qst']['on_disk'] + disk['qa_prompt']['on_disk'])} of 4 KiB blocks")
    print()
    print("Start-up until the first optimiser step (train + val questions, every file checked):")
    for tokens in TOKENS:
        f, later = first[tokens], trained[tokens]["startup"]
        scan_bytes = sum(disk[n]["apparent"] for n in ("vggish", "clip_frames", TOKENS[tokens]))
        print(f"  {tokens} tokens, first run: {duration(f['startup_s'])}"
              f"{' (VGGish and CLIP frames already scanned by the f32 run)' if tokens != 'f32' else ''}; later runs: "
              f"{duration(later['startup_s'])}; a first run's scan reads {gb(scan_bytes)}, which a disk at "
              f"--disk_mb_s {a.disk_mb_s:g} MB/s delivers in {duration(scan_bytes / a.disk_mb_s / 1e6)}")
    per_run = 2 * (ann["questions"]["train"] + ann["questions"]["val"])
    print(f"  (every run reads the {per_run:,} per-question files of train and val: their scan is not remembered; "
          "the files were just made, so they and every header were in the page cache: on a cold disk each adds a read)")
    print()
    print(f"Training on {a.device}: TSPM, batch {trained['f32']['startup']['batch_size']}, {a.batches} timed batches per "
          f"process after {a.warmup} untimed, the two processes in turns of {a.block}:")
    for tokens, r in trained.items():
        total_cpu = max(r["cpu_user_s"] + r["cpu_sys_s"], 1e-9)
        print(f"  {tokens} tokens: {r['rate']:6.1f} samples/s (turns: min {min(r['blocks']):.1f}, max "
              f"{max(r['blocks']):.1f}); waiting for the loader {100 * r['waited_s'] / r['seconds']:.0f}% of the time; "
              f"{100 * r['cpu_sys_s'] / total_cpu:.0f}% of its CPU time in the kernel; peak RSS {r['peak_rss_gb']:.2f} GB; "
              f"open files at most {r['max_fds']} of {r['startup']['nofile_soft']:,}"
              + (f"; GPU memory peak {r['gpu_peak_gb']:.2f} GB" if r.get("gpu_peak_gb") else ""))
    print()
    print(f"The full real dataset ({QUESTIONS['train']:,} train questions), training only (the validation pass of "
          f"{QUESTIONS['val']:,} questions after each epoch not counted):")
    for tokens, r in trained.items():
        epoch = QUESTIONS["train"] / r["rate"]
        print(f"  {tokens} tokens: one epoch {duration(epoch)}, the {RECIPE_EPOCHS}-epoch recipe "
              f"{duration(RECIPE_EPOCHS * epoch)} ({r['rate']:.1f} samples/s on {a.device})")
    if a.videos != VIDEOS:
        print(f"  (simulated {a.videos} videos, not {VIDEOS}: the files per video folder are of {a.videos} videos)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    simulated_set_flags(p, "about 2.8 GB of real disk for the full set")
    m = measurement_flags(p, batches=30, block=10, warmup=3)
    m.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the training processes run")
    m.add_argument("--disk_mb_s", type=float, default=500, metavar="MB_S",
                   help="read speed of a real disk, for the first NaN scan of real (not sparse) token files")
    h = p.add_argument_group("internal")
    for flag in ("--child", "--root", "--tokens"):
        h.add_argument(flag, help=argparse.SUPPRESS)
    h.add_argument("--first_only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    if a.child == "train":
        child_train(a)
        return 0
    for flag in ("videos", "batches", "block"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    if a.warmup < 0:
        p.error("--warmup must be 0 or more")
    check_annotations_and_device(p, a)
    root, logs, t_all = work_root(a.work, "avqa-bench-tspm-scale-", "TSPM's inputs at full size")
    try:
        print("[1/5] annotation files of the real sizes ...", flush=True)
        (root / "json").mkdir()
        ann = make_annotations(root / "json", Path(a.annotations), a.videos, min(100, a.videos - 1) or 1, a.seed)
        ids = renumber(root / "json")
        print(f"  train {ann['questions']['train']:,} / val {ann['questions']['val']:,} / test "
              f"{ann['questions']['test']:,} questions over {ann['videos']:,} videos, sampled from the real val and "
              f"test files", flush=True)
        feats, made = root / "feats", {}
        print(f"[2/5] per-video feature files of {a.videos:,} videos ...", flush=True)
        for name, (shape, dtype, how, what, _) in VIDEO_FOLDERS.items():
            made[name] = make_video_folder(feats / name, a.videos, shape, dtype, how, a.seed)
            print(f"  {name:<12} {what}, {list(shape)} {dtype}, {how}: {duration(made[name])}", flush=True)
        every = [q for split in ("train", "val", "test") for q in ids[split]]
        print(f"[3/5] per-question files of {len(every):,} questions, two folders ...", flush=True)
        made.update(make_question_folders(feats, every, a.seed))
        print("  " + ", ".join(f"{name} {duration(s)}" for name, s in made.items() if name in QUESTION_FOLDERS),
              flush=True)
        disk = {name: folder_disk(feats / name) for name in (*VIDEO_FOLDERS, *QUESTION_FOLDERS)}
        print("[4/5] first runs' start-up (every file checked, the NaN scan made) ...", flush=True)
        first = first_runs(a, root, logs)
        print(f"[5/5] later runs' start-up and training on {a.device} ...", flush=True)
        trained = measure_training(a, root, logs)
        report(a, disk, made, ann, first, trained)
    finally:
        clean_up(root, a.keep, t_all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
