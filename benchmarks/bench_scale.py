"""The real MUSIC-AVQA dataset at full size on this machine: disk, extraction time, loader start-up,
memory, open files and AVST training speed, projected to one epoch and to the 80-epoch recipe.

What it builds (under --work, deleted at the end unless --keep):
- feature files of 9,288 sixty-second videos at the real data's shapes, as sparse .npy files: the header is
  written and the file extended to its full size without writing the body, so a 24.1 MB 14x14
  file takes no disk and reads as zeros. Reading a page of such a file still costs the CPU about
  what a page read from disk costs it (the kernel allocates and fills a page-cache page, and
  reclaims others when memory is full), and 223 GB do not fit in the page cache, so random reads
  across the set miss it as they would on the real set; only the disk's own time is missing. VGGish [60,128] float32, and ResNet-18 14x14
  [60,512,14,14] in four layouts, each folder with the metadata file the extractors write beside
  it: every second in float32 (what the original scripts make: 24.1 MB a video, 223 GB), every
  second in float16, and only the seconds the models read (--used_seconds: avqa.data.used_seconds,
  18 of 60; the others are holes) in float32 and in float16;
- annotation files of the real sizes (train 32,087 / val 4,595 / test 9,185 questions): rows
  sampled from the real val and test files (real question types, templates, fillers and answers;
  the real train file is not available), every row of them in train so that val and test words
  are in its vocabulary, with 8-digit video ids that use every one of the 9,288 videos.

What it measures, through the project's own training code (avqa.tasks.cli.build_parser, Runtime,
feature_stores, make_loader, train_step; avqa.data.AVQADataset; the AVST model), each training in
its own process, as `python net_grd_avst/main_avst.py` would run on the full set:
- loader start-up: reading the annotations and building the vocabularies, shape checks of every
  feature file, and the NaN/inf scan: on the first run (the scan of the 14x14 files is measured on
  --scan_sample videos and projected, unless --scan_sample 0) and on later runs (the scan is
  remembered in <folder>.verified.json); until the first optimiser step is done;
- peak resident memory (VmHWM) and open file descriptors (/proc/self/fd) of the training process,
  against the soft limit on open files; and the loader under a soft limit of --nofile_check (1024 is
  a common default) over the full set;
- AVST training samples/s at the real data's shapes (T=60, 10 segments, negatives on, batch 64, samples drawn
  at random across all 9,288 videos), and in the same run the same on a --subset-video set (what
  bench_train_data.py uses): the processes take turns of --block batches (the others stopped
  meanwhile), so that load from other programs on the machine falls on all of them alike; with
  the share of each process's CPU time spent in the kernel (page-cache misses).

Then it prints, for the full dataset, the disk the 14x14 features take, their extraction time on
this CPU (from bench_features.py's frames/s, flags), the time of one AVST epoch and of the 80-epoch
recipe, for the original route and for this project; again for a CUDA GPU when one is present; and
the targets with PASS/FAIL.

    python benchmarks/bench_scale.py                  # 15-25 minutes on 2 cores, depending on their load
    python benchmarks/bench_scale.py --batches 40 --measure all_f32 --scan_sample 100   # quicker, noisier
    python benchmarks/bench_scale.py --keep --work /data/tmp          # keep the simulated set there
"""
import time

_T_PROCESS = time.perf_counter()  # before the heavy imports: a training process's start-up counts them

import argparse
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
from avqa.data import AUDIO_SHAPE, VISUAL_SHAPE, FeatureStore
from avqa.features.seconds import used_seconds
from avqa.store import verified_path
from avqa.utils import metadata_path
from avqa.machine import describe_machine, usable_cores
from bench_train_data import peak_rss_gb

# the real dataset: 9,288 videos of 60 s, 10 sampled seconds (docs/model.md, Inputs and sampling), and
# the question counts of the original avqa-train/val/test.json
VIDEOS, SECONDS, SEGMENTS = 9288, 60, 10
QUESTIONS = {"train": 32087, "val": 4595, "test": 9185}
RECIPE_EPOCHS = 80
FRAME_BYTES = int(np.prod(VISUAL_SHAPE))  # values per second of a 14x14 file

# the 14x14 layouts: folder, dtype, seconds computed
USED = used_seconds(SECONDS, SEGMENTS)
LAYOUTS = {
    "all_f32": ("res18_14x14", "float32", "all", "all seconds, float32"),
    "all_f16": ("res18_14x14_f16", "float16", "all", "all seconds, float16"),
    "used_f32": ("res18_14x14_used", "float32", USED, f"used seconds ({len(USED)} of {SECONDS}), float32"),
    "used_f16": ("res18_14x14_used_f16", "float16", USED, f"used seconds ({len(USED)} of {SECONDS}), float16"),
}


def vid(k: int) -> str:
    return f"{k + 1:08d}"


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 72 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def layout_bytes(layout: str, videos: int = VIDEOS) -> int:
    """Disk the 14x14 features of the full set take (the held seconds of a sparse file)."""
    _, dtype, computed, _ = LAYOUTS[layout]
    seconds = SECONDS if computed == "all" else len(computed)
    return videos * seconds * FRAME_BYTES * np.dtype(dtype).itemsize


# ----------------------------------------------------------------------------- the simulated set


def npy_header(shape: tuple, dtype: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def make_sparse_folder(folder: Path, videos: int, shape: tuple, dtype: str, meta: dict) -> None:
    """``videos`` .npy files of ``shape``: header written, body a hole (no disk, reads as zeros)."""
    folder.mkdir(parents=True)
    header = npy_header(shape, dtype)
    size = len(header) + int(np.prod(shape)) * np.dtype(dtype).itemsize
    for k in range(videos):
        with open(folder / f"{vid(k)}.npy", "wb") as f:
            f.write(header)
            f.truncate(size)
    metadata_path(folder).write_text(json.dumps(meta, indent=1))


def make_features(feats: Path, videos: int) -> dict:
    t = time.time()
    common = {"seconds": SECONDS, "simulated": "bench_scale.py: sparse files, every value reads as 0"}
    make_sparse_folder(feats / "vggish", videos, (SECONDS, *AUDIO_SHAPE), "float32",
                       {"backbone": "vggish", **common, "shape_per_video": [SECONDS, *AUDIO_SHAPE], "dtype": "float32"})
    for layout, (folder, dtype, computed, label) in LAYOUTS.items():
        make_sparse_folder(feats / folder, videos, (SECONDS, *VISUAL_SHAPE), dtype,
                           {"backbone": "res18_14x14", **common, "shape_per_video": [SECONDS, *VISUAL_SHAPE],
                            "dtype": dtype, "seconds_computed": computed})
        print(f"  {folder:<22} {videos} files, {label}", flush=True)
    apparent = on_disk = files = 0
    for p in feats.rglob("*.npy"):
        st = p.stat()
        apparent, on_disk, files = apparent + st.st_size, on_disk + st.st_blocks * 512, files + 1
    return {"seconds": time.time() - t, "files": files, "apparent": apparent, "on_disk": on_disk}


def make_annotations(out: Path, source: Path, videos: int, subset: int, seed: int) -> dict:
    """Real-size annotation files over ``videos`` ids, and the same questions over the first ``subset``."""
    rng = random.Random(seed)
    real = {s: json.loads((source / f"avqa-{s}.json").read_text()) for s in ("val", "test")}
    pool = real["val"] + real["test"]
    # every real row once (so train's vocabularies hold every val/test word and answer), then random draws
    train = [dict(r) for r in pool] + [dict(rng.choice(pool)) for _ in range(QUESTIONS["train"] - len(pool))]
    rng.shuffle(train)
    order = list(range(videos))
    rng.shuffle(order)
    for i, row in enumerate(train):  # every video gets 3 or 4 train questions
        row["video_id"], row["question_id"] = vid(order[i % videos]), i
    splits = {"train": train}
    for s in ("val", "test"):
        rows = [dict(r) for r in real[s]][: QUESTIONS[s]]
        originals = list(dict.fromkeys(r["video_id"] for r in rows))
        new = rng.sample(range(videos), min(len(originals), videos))
        mapping = {o: vid(new[i % len(new)]) for i, o in enumerate(originals)}
        for r in rows:  # a real video's questions stay together on one simulated video
            r["video_id"] = mapping[r["video_id"]]
        splits[s] = rows
    for s, rows in splits.items():
        (out / f"avqa-{s}.json").write_text(json.dumps(rows))
        sub = [dict(r, video_id=vid(i % subset)) for i, r in enumerate(rows)]
        (out / f"avqa-{s}-{subset}videos.json").write_text(json.dumps(sub))
    used = set().union(*({r["video_id"] for r in rows} for rows in splits.values()))
    types = {r["type"] for r in train}
    return {"questions": {s: len(r) for s, r in splits.items()}, "videos": len(used),
            "train_videos": len({r["video_id"] for r in train}), "types": len(types),
            "templates": len({r["question_content"] for r in pool})}


# ----------------------------------------------------------------------------- child processes


def emit(obj: dict) -> None:
    print("@@" + json.dumps(obj), flush=True)


def note(text: str) -> None:
    """A progress line the parent prints as it comes."""
    print("##" + text, flush=True)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the one listing the folder


def train_args(a, subset: bool):
    from avqa.tasks.cli import build_parser
    folder = LAYOUTS[a.layout][0]
    suffix = f"-{a.subset}videos" if subset else ""
    ann, feats = Path(a.root) / "json", Path(a.root) / "feats"
    return build_parser("avst", "").parse_args([
        "--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / folder),
        "--label_train", str(ann / f"avqa-train{suffix}.json"), "--label_val", str(ann / f"avqa-val{suffix}.json"),
        # cuda:0, not cuda: avqa.engine.runtime.Runtime passes the device to torch.cuda.set_device, which refuses an
        # index-less device on recent torch (2.11)
        "--device", "cuda:0" if a.device == "cuda" else a.device, "--quiet"])


def child_startup(a) -> None:
    """A first run's start-up, in stages: annotations, audio check and scan, 14x14 shape checks and scan."""
    from avqa.annotations import Vocab
    from avqa.tasks.inputs import load_split
    args = train_args(a, subset=False)
    out = {}
    t = time.perf_counter()
    samples = load_split(args.label_train)
    vocab = Vocab.from_samples(samples)
    splits = [load_split(args.label_train, vocab, samples), load_split(args.label_val, vocab)]
    videos = sorted({s["video_id"] for sp in splits for s in sp.samples})
    out["index_s"] = time.perf_counter() - t
    out["videos"], out["vocab"] = len(videos), [len(vocab.questions), len(vocab.answers)]
    t = time.perf_counter()
    FeatureStore(args.audio_dir, AUDIO_SHAPE).check(videos, finite=True, name="audio features")
    out["audio_check_scan_s"] = time.perf_counter() - t
    rng = random.Random(a.seed)
    sample = videos if a.scan_sample <= 0 else sorted(rng.sample(videos, min(a.scan_sample, len(videos))))
    stores, out["layouts"] = {}, {}
    for layout, (folder, dtype, computed, _) in LAYOUTS.items():
        stores[layout] = FeatureStore(Path(args.video_res14x14_dir).parent / folder, VISUAL_SHAPE)
        t = time.perf_counter()
        stores[layout].check(videos, finite=False, name="visual features")
        rows = SECONDS if computed == "all" else len(computed)
        out["layouts"][layout] = {"shape_checks_s": time.perf_counter() - t, "scan_sample_s": 0.0,
                                  "sampled": len(sample),
                                  "scan_bytes": len(videos) * rows * FRAME_BYTES * np.dtype(dtype).itemsize}
    note(f"  shape checks of {len(videos):,} files per 14x14 layout: " + ", ".join(
        f"{r['shape_checks_s']:.1f} s" for r in out["layouts"].values()))
    # the layouts take turns over chunks of the sample, so that a change in the machine's load or memory
    # pressure (the scan fills the page cache) falls on all of them alike
    chunk = 20
    for k in range(0, len(sample), chunk):
        part = sample[k:k + chunk]
        for layout, store in stores.items():
            r = out["layouts"][layout]
            t = time.perf_counter()
            store.check(part, finite=True, name="visual features")  # also the shape checks of the part: subtracted
            r["scan_sample_s"] += max(time.perf_counter() - t - r["shape_checks_s"] * len(part) / len(videos), 0.0)
        if (k // chunk) % 5 == 4 or k + chunk >= len(sample):
            note(f"  NaN scan: {min(k + chunk, len(sample))} of {len(sample)} videos in each layout")
    for layout, store in stores.items():
        r = out["layouts"][layout]
        r["scan_projected_s"] = r["scan_sample_s"] * len(videos) / len(sample)
        if len(sample) < len(videos):
            r["cache_filled"] = mark_verified(store, sample, videos)
            if not r["cache_filled"]:  # the record does not hold the sample's scan: scan the rest for real
                note(f"  {verified_path(store.folder).name} does not hold the sample's scan: scanning every file")
                t = time.perf_counter()
                store.check(videos, finite=True, name="visual features")
                r["scan_rest_s"] = time.perf_counter() - t
    emit(out)


def mark_verified(store: FeatureStore, scanned: list[str], videos: list[str]) -> bool:
    """Record the files the sample scan left out as scanned, in the store's record of finite files.

    Every simulated file is zeros like the scanned ones, so a full scan would record them all; this
    only spares the benchmark reading them. False when the record does not hold the scanned files.
    """
    if store.unverified(scanned):
        return False
    store.mark_verified(store.unverified(videos))
    return True


def child_train(a) -> None:
    """A training process on the full set or the subset: start-up, then batches on command."""
    t_main = time.perf_counter()
    if a.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    from avqa.annotations import Vocab
    from avqa.data import AVQADataset, segment_seconds
    from avqa.engine.loop import make_optimizer, train_step
    from avqa.engine.runtime import Runtime, make_loader, to_device
    from avqa.tasks.inputs import feature_stores, load_split
    from avqa import registry
    args = train_args(a, subset=a.set == "subset")
    rt = Runtime(args)
    torch.manual_seed(args.seed)
    out = {"imports_s": t_main - _T_PROCESS}
    t = time.perf_counter()
    samples = load_split(args.label_train)
    vocab = Vocab.from_samples(samples)
    splits = {"train": load_split(args.label_train, vocab, samples), "val": load_split(args.label_val, vocab)}
    videos = [s["video_id"] for sp in splits.values() for s in sp.samples]
    out["index_s"] = time.perf_counter() - t
    caches = [verified_path(d) for d in (args.audio_dir, args.video_res14x14_dir)]
    before = [c.stat().st_mtime_ns if c.exists() else None for c in caches]
    t = time.perf_counter()
    # hold=False: both sets read through their files, so the ratio of their speeds is the cost of reading at scale
    # (the small set would otherwise be held in memory, FeatureStore.hold; the full set never fits)
    audio, visual, total = feature_stores(args, videos, True, reads=lambda T: segment_seconds(T, args.segments),
                                          hold=False)
    out["checks_s"] = time.perf_counter() - t
    out["scan_cached"] = [c.stat().st_mtime_ns if c.exists() else None for c in caches] == before
    t = time.perf_counter()
    family = registry.qa_models()["avst"]
    cls, objective = family.cls, family.objective(args.match_weight)
    model = cls(len(vocab.questions), len(vocab.answers)).to(rt.device)
    optimizer = make_optimizer(model, args.lr)
    train_set = AVQADataset(splits["train"], audio, visual, total, args.segments, negatives=cls.uses_negatives,
                            seed=args.seed)
    loader = make_loader(train_set, rt.per_process(args.batch_size), True, rt, args.num_workers, args.seed)
    batches = endless(loader, args.seed)
    out["build_s"] = time.perf_counter() - t

    def step() -> int:
        batch = to_device(next(batches), rt.device)
        train_step(model, batch, optimizer, rt, objective)  # returns floats: the step is done
        return len(batch["label"])

    t = time.perf_counter()
    max_fds = open_files()
    try:
        step()
        out["first_step_s"] = time.perf_counter() - t
        out["startup_s"] = time.perf_counter() - _T_PROCESS
        out.update(videos=len(train_set.videos), questions=len(train_set), device=str(rt.device),
                   threads=torch.get_num_threads(), drop_pages=visual.drop_pages)
        if a.loader_only:  # the open-files check: only the loader, until it has opened more files than the limit
            seen = 0
            for n in range(a.batches):
                batch = next(batches)
                seen += len(batch["label"])
                max_fds = max(max_fds, open_files())
            out.update(batches=a.batches + 1, samples=seen, max_fds=max_fds, error=None)
    except OSError as e:
        out.update(error=f"{type(e).__name__}: {e}", max_fds=max(max_fds, open_files()))
        if not a.loader_only:
            raise
    out["nofile_soft"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    emit(out)
    if a.loader_only:
        return
    for line in sys.stdin:  # "run N" (timed), "warm N", "done"
        cmd, *rest = line.split()
        if cmd == "done":
            break
        n = int(rest[0])
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        seen, t = 0, time.perf_counter()
        for k in range(n):
            seen += step()
            if k % 5 == 4:
                max_fds = max(max_fds, open_files())
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        max_fds = max(max_fds, open_files())
        emit({"samples": seen, "seconds": dt, "max_fds": max_fds, "cpu_user_s": cpu1.ru_utime - cpu0.ru_utime,
              "cpu_sys_s": cpu1.ru_stime - cpu0.ru_stime})
    del batches, loader
    main_gb, _ = peak_rss_gb()
    emit({"peak_rss_gb": main_gb, "max_fds": max_fds, "nofile_soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
          "gpu_peak_gb": torch.cuda.max_memory_allocated() / 2**30 if rt.device.type == "cuda" else None})


# ----------------------------------------------------------------------------- the parent


class Child:
    """A child process of ``script`` (this one unless given) that answers with @@-prefixed JSON lines."""

    def __init__(self, name: str, argv: list[str], logs: Path, script: str | Path = __file__):
        self.name = name
        self.log = logs / f"{name}.log"
        self.proc = subprocess.Popen([sys.executable, str(script), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.log, "w"), text=True, bufsize=1, cwd=REPO)

    def reply(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
            if line.startswith("##"):
                print(line[2:].rstrip(), flush=True)
        self.proc.wait()
        tail = self.log.read_text()[-3000:]
        raise RuntimeError(f"the {self.name} process ended (exit {self.proc.returncode}):\n{tail}")

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def pause(self) -> None:
        """Stop the process between its turns: its loader thread must not prepare batches in another's turn."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def turn(self, command: str) -> dict:
        self.resume()
        try:
            return self.ask(command)
        finally:
            self.pause()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def child_argv(a, root: Path, mode: str, layout: str, which: str, device: str, extra: tuple = ()) -> list[str]:
    return ["--child", mode, "--root", str(root), "--layout", layout, "--set", which, "--device", device,
            "--subset", str(a.subset), "--seed", str(a.seed), "--scan_sample", str(a.scan_sample), *extra]


def take_turns(children: dict, results: dict, warmup: int, batches: int, block: int) -> None:
    """Training processes run ``warmup`` untimed batches, then ``batches`` timed ones in turns of ``block``
    (the others stopped meanwhile); each reply's figures are summed into ``results[name]``, which holds
    "samples", "seconds", "blocks" and any other sums the children report (e.g. "cpu_user_s")."""
    for child in children.values():
        child.turn(f"warm {warmup}")
    done = 0
    while done < batches:
        n = min(block, batches - done)
        line = []
        for name, child in children.items():
            r = child.turn(f"run {n}")
            res = results[name]
            for k, v in r.items():
                if k in res and k not in ("blocks", "max_fds") and isinstance(v, (int, float)):
                    res[k] += v
            res["blocks"].append(r["samples"] / r["seconds"])
            res["max_fds"] = r["max_fds"]
            line.append(f"{name} {r['samples'] / r['seconds']:6.1f}")
        done += n
        print(f"    batches {done:4d}/{batches}: samples/s  " + "   ".join(line), flush=True)
    for name, child in children.items():
        child.resume()
        results[name].update(child.ask("done"))
        results[name]["rate"] = results[name]["samples"] / results[name]["seconds"]


def measure_training(a, root: Path, device: str, logs: Path) -> dict:
    """Full-set processes (one per --measure layout) and the subset one, in turns of --block batches."""
    runs = [(f"full {layout}", layout, "full") for layout in a.measure] + [(f"{a.subset} videos all_f32", "all_f32", "subset")]
    children, results = {}, {}
    try:
        for name, layout, which in runs:  # start-ups one at a time, so that each is timed alone
            print(f"  starting the training process: {name} ({device}) ...", flush=True)
            children[name] = Child(f"train-{device}-{layout}-{which}", child_argv(a, root, "train", layout, which, device),
                                   logs)
            r = children[name].reply()
            children[name].pause()
            results[name] = {"startup": r, "samples": 0, "seconds": 0.0, "blocks": [], "cpu_user_s": 0.0,
                             "cpu_sys_s": 0.0}
            print(f"    ready: {r['videos']} videos, {r['questions']} train questions; start-up {r['startup_s']:.1f} s "
                  f"(imports {r['imports_s']:.1f}, annotations {r['index_s']:.1f}, feature checks {r['checks_s']:.1f}"
                  f"{' with the NaN scan cached' if r['scan_cached'] else ', NaN scan included'}, model and loader "
                  f"{r['build_s']:.1f}, first step {r['first_step_s']:.1f}); "
                  + ("each second read is dropped from the page cache (more features than it holds)"
                     if r["drop_pages"] else "features kept in the page cache"), flush=True)
        take_turns(children, results, a.warmup, a.batches, a.block)
    finally:
        for child in children.values():
            child.close()
    return results


def file_limit_check(a, root: Path, logs: Path) -> dict:
    child = Child("nofile", child_argv(a, root, "train", "all_f32", "full", "cpu",
                                       ("--nofile", str(a.nofile_check), "--loader_only", "--batches", "24")), logs)
    try:
        return child.reply()
    finally:
        child.close()


def table(title: str, rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [title] if title else []
    for r in rows:
        lines.append(f"  {r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}")
    return "\n".join(lines)


def projection(a, rates: dict, original_rate: float | None, fps: dict, note: str) -> str:
    """The full-set table: rows per quantity and layout; columns: the original route, this project."""
    rows = [("", "original route", "this project")]
    rows.append(("14x14 features on disk", "", ""))
    for layout, (_, _, _, label) in LAYOUTS.items():
        rows.append((f"  {label}", gb(layout_bytes(layout)) if layout == "all_f32" else "-", gb(layout_bytes(layout))))
    rows.append((f"14x14 extraction{note}", "", ""))
    for layout, (_, dtype, computed, label) in LAYOUTS.items():
        frames = VIDEOS * (SECONDS if computed == "all" else len(computed))
        rate = fps["ours_bf16"] if dtype == "float16" else fps["ours"]
        orig = "-"
        if layout == "all_f32":
            orig = f"{duration(frames / fps['original'])} ({fps['original']:g} f/s)" if fps["original"] else "?"
        ours = f"{duration(frames / rate)} ({rate:g} f/s)" if rate else "? (no frames/s given)"
        rows.append((f"  {label}", orig, ours))
    for title, epochs in (("one AVST epoch (32,087 questions)", 1), (f"the {RECIPE_EPOCHS}-epoch recipe", RECIPE_EPOCHS)):
        rows.append((title, "", ""))
        for layout, (_, _, _, label) in LAYOUTS.items():
            orig = "-"
            if layout == "all_f32":
                orig = f"{duration(epochs * QUESTIONS['train'] / original_rate)} ({original_rate:g}/s)" if original_rate else "?"
            rate, measured = rates.get(layout), True
            if rate is None:
                rate, measured = rates["all_f32"], False
            ours = f"{duration(epochs * QUESTIONS['train'] / rate)} ({rate:.1f}/s{'' if measured else ', assumed'})"
            rows.append((f"  {label}", orig, ours))
    return table("", rows)


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def simulated_set_flags(p: argparse.ArgumentParser, disk: str) -> None:
    """The flags of the simulated set, shared with bench_tspm_scale.py; ``disk``: the real disk it needs."""
    g = p.add_argument_group("the simulated set")
    g.add_argument("--work", default=None, metavar="DIR",
                   help="folder to build the simulated set in (a new folder is made inside it; None: the system's "
                        f"temporary folder); it needs {disk}")
    g.add_argument("--keep", action="store_true", help="keep the simulated set instead of deleting it at the end")
    g.add_argument("--videos", type=int, default=VIDEOS, metavar="N", help="videos to simulate (the real set has 9,288)")
    g.add_argument("--annotations", default=str(REPO.parent / "shared/data/music_avqa/json"), metavar="DIR",
                   help="folder of the real avqa-val.json and avqa-test.json the questions are sampled from")
    g.add_argument("--seed", type=int, default=1, help="seed of the sampling and of training")




def endless(loader, seed: int):
    """The loader's batches epoch after epoch, each epoch's order set as training sets it."""
    from avqa.engine.runtime import set_loader_epoch
    epoch = 1
    while True:
        set_loader_epoch(loader, epoch, seed)
        yield from loader
        epoch += 1

def check_annotations_and_device(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """The flags both full-size benchmarks share: the real annotation folder and the device."""
    if not (Path(a.annotations) / "avqa-val.json").is_file() or not (Path(a.annotations) / "avqa-test.json").is_file():
        p.error(f"--annotations {a.annotations}: avqa-val.json and avqa-test.json not found there")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is present")


def work_root(work: str | None, prefix: str, title: str) -> tuple[Path, Path, float]:
    """A fresh folder for a simulated set (under --work), its logs/ folder and the start time; prints
    what the timings depend on (cores, threads, load, the open-files limit)."""
    if work:
        Path(work).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=work))
    logs = root / "logs"
    logs.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"{title}, simulated in {root}; {usable_cores()} CPU cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, open-files limit {soft} (hard {hard})")
    print("  (other processes share this machine: timings may be depressed and samples/s noisy)", flush=True)
    return root, logs, time.time()


def clean_up(root: Path, keep: bool, t_all: float) -> None:
    """Remove the simulated set (unless --keep) and say how long the whole benchmark took."""
    if keep:
        print(f"kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
    print(f"total time {duration(time.time() - t_all)}")


def measurement_flags(p: argparse.ArgumentParser, batches: int, block: int, warmup: int) -> argparse._ArgumentGroup:
    """The training-speed flags both full-size benchmarks take (each with its own defaults)."""
    m = p.add_argument_group("measurements")
    m.add_argument("--batches", type=int, default=batches, metavar="N", help="timed training batches of 64 per process")
    m.add_argument("--block", type=int, default=block, metavar="N", help="batches each process runs in its turn")
    m.add_argument("--warmup", type=int, default=warmup, metavar="N", help="untimed batches per process before timing")
    return m


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    simulated_set_flags(p, "about 200 MB of real disk for 671 GB of sparse files")
    m = measurement_flags(p, batches=100, block=20, warmup=5)
    m.add_argument("--subset", type=int, default=100, metavar="N",
                   help="videos of the small set the full-set speed is compared with (bench_train_data.py's 100)")
    m.add_argument("--measure", nargs="+", default=["all_f32", "used_f16"], choices=list(LAYOUTS), metavar="LAYOUT",
                   help=f"14x14 layouts ({', '.join(LAYOUTS)}) whose training speed is measured on the full set, "
                        "one process each (about 3 GB of memory each); the others are assumed to train as fast "
                        "as all_f32, which is always measured")
    m.add_argument("--scan_sample", type=int, default=200, metavar="N",
                   help="videos whose 14x14 files the first run's NaN scan is timed on, projected to the set "
                        "(0: scan every file: 436 GB of holes over the four layouts, 5-15 minutes)")
    m.add_argument("--nofile_check", type=int, default=1024, metavar="N",
                   help="also run the loader over the full set under this soft limit on open files (0: skip)")
    m.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: the CPU, and a CUDA GPU too when one is present")
    m.add_argument("--disk_mb_s", type=float, default=500, metavar="MB_S",
                   help="read speed of a real disk, for the first NaN scan of real (not sparse) files")
    f = p.add_argument_group("figures of the other benchmarks (docs/speed.md, this project's 2-core AMD EPYC CPU)")
    f.add_argument("--original_fps", type=float, default=18.1, metavar="FPS",
                   help="14x14 frames/s of the original route (bench_features.py, 640x360)")
    f.add_argument("--ours_fps", type=float, default=30.7, metavar="FPS", help="14x14 frames/s of ours, float32 (bench_features.py)")
    f.add_argument("--ours_bf16_fps", type=float, default=51.4, metavar="FPS",
                   help="14x14 frames/s of ours, bfloat16 (bench_features.py); used for the float16 rows")
    f.add_argument("--original_samples_s", type=float, default=27.2, metavar="RATE",
                   help="AVST training samples/s of the original route (bench_train_data.py, 100 clips)")
    f.add_argument("--gpu_original_fps", type=float, default=None, metavar="FPS", help="as --original_fps, on the GPU")
    f.add_argument("--gpu_ours_fps", type=float, default=None, metavar="FPS", help="as --ours_fps, on the GPU")
    f.add_argument("--gpu_ours_bf16_fps", type=float, default=None, metavar="FPS", help="as --ours_bf16_fps, on the GPU")
    f.add_argument("--gpu_original_samples_s", type=float, default=None, metavar="RATE", help="as --original_samples_s, on the GPU")
    h = p.add_argument_group("internal")
    for flag in ("--child", "--root", "--layout", "--set"):
        h.add_argument(flag, help=argparse.SUPPRESS)
    h.add_argument("--nofile", type=int, default=0, help=argparse.SUPPRESS)
    h.add_argument("--loader_only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    if a.child == "startup":
        child_startup(a)
        return 0
    if a.child == "train":
        child_train(a)
        return 0
    for flag in ("videos", "batches", "block", "subset"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    if a.subset >= a.videos:
        p.error("--subset must be smaller than --videos")
    check_annotations_and_device(p, a)
    devices = {"auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"], "cuda": ["cuda"]}[a.device]
    if a.measure[0] != "all_f32":
        a.measure = ["all_f32"] + [m for m in a.measure if m != "all_f32"]
    root, logs, t_all = work_root(a.work, "avqa-bench-scale-", "MUSIC-AVQA at full size")
    try:
        print(f"[1/5] sparse feature files of {a.videos} videos ...", flush=True)
        made = make_features(root / "feats", a.videos)
        print(f"  {made['files']} files in {made['seconds']:.0f} s: {gb(made['apparent'])} apparent, "
              f"{made['on_disk'] / 1e6:.0f} MB on disk", flush=True)
        print("[2/5] annotation files of the real sizes ...", flush=True)
        (root / "json").mkdir()
        ann = make_annotations(root / "json", Path(a.annotations), a.videos, a.subset, a.seed)
        print(f"  train {ann['questions']['train']:,} / val {ann['questions']['val']:,} / test {ann['questions']['test']:,}"
              f" questions over {ann['videos']:,} videos (train alone: {ann['train_videos']:,}); {ann['types']} question "
              f"types, {ann['templates']} templates, sampled from the real val and test files", flush=True)

        scan_what = "every file" if a.scan_sample <= 0 else f"{min(a.scan_sample, a.videos)} videos, projected"
        print(f"[3/5] first run's start-up: annotations, checks, NaN scan ({scan_what}) ...", flush=True)
        child = Child("startup", child_argv(a, root, "startup", "all_f32", "full", "cpu"), logs)
        try:
            first = child.reply()
        finally:
            child.close()

        limit = None
        if a.nofile_check:
            print(f"[4/5] the loader over the full set under a soft limit of {a.nofile_check} open files ...", flush=True)
            limit = file_limit_check(a, root, logs)
            print(f"  {limit['max_fds']} files open at most; "
                  + (f"FAILED: {limit['error']}" if limit.get("error") else "no error"), flush=True)
        else:
            print("[4/5] (--nofile_check 0: the run under a low open-files limit is skipped)")

        trained = {}
        for device in devices:
            print(f"[5/5] AVST training on {device}: {a.batches} timed batches of 64 per process, in turns of "
                  f"{a.block}, after {a.warmup} untimed ...", flush=True)
            trained[device] = measure_training(a, root, device, logs)
        report(a, made, ann, first, limit, trained, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    finally:
        clean_up(root, a.keep, t_all)
    return 0


def report(a, made, ann, first, limit, trained, soft) -> None:
    full = "full all_f32"
    subset = f"{a.subset} videos all_f32"
    print()
    print("=" * 100)
    print(f"Loader start-up, first run ({first['videos']:,} videos; train + val questions; both feature folders):")
    print(f"  annotations and vocabularies {first['index_s']:.1f} s; VGGish shape checks and NaN scan (every file) "
          f"{first['audio_check_scan_s']:.1f} s")
    startup = {}
    for device, res in trained.items():
        for name, r in res.items():
            if name.startswith("full "):
                startup[(device, name[5:])] = r["startup"]
    for layout, r in first["layouts"].items():
        label = LAYOUTS[layout][3]
        scan = r["scan_projected_s"]
        disk = r["scan_bytes"] / a.disk_mb_s / 1e6
        how = ("every file scanned" if r["sampled"] >= first["videos"] else
               f"measured on {r['sampled']} videos ({r['scan_sample_s']:.1f} s) and projected")
        # a later run's start-up: measured for this layout's training process, else all_f32's
        later = next((startup[k] for k in (("cpu", layout), ("cuda", layout), ("cpu", "all_f32"), ("cuda", "all_f32"))
                      if k in startup), None)
        print(f"  {label}: 14x14 shape checks {r['shape_checks_s']:.1f} s; NaN scan of the sparse files "
              f"{duration(scan)} ({how}); it reads {gb(r['scan_bytes'])}, which a real disk at --disk_mb_s "
              f"{a.disk_mb_s:g} MB/s delivers in {duration(disk)}")
        if later is not None:  # a later run's start-up with this run's checks in place of the cached ones
            r["first_total_s"] = (later["startup_s"] - later["checks_s"] + first["audio_check_scan_s"]
                                  + r["shape_checks_s"] + max(scan, disk))
            print(f"    first run until the first optimiser step: about {duration(r['first_total_s'])} (with the slower "
                  f"of the two scan figures); later runs: {later['startup_s']:.1f} s"
                  f"{'' if ('cpu', layout) in startup or ('cuda', layout) in startup else ' (measured for all seconds float32)'}"
                  f": the scan is remembered in {LAYOUTS[layout][0]}.verified.json")
    print("  (the feature files were just made, so their headers were in the page cache: on a cold disk each "
          "shape check adds a read)")
    for device, res in trained.items():
        print()
        print(f"Training on {device}: AVST, batch 64, T={SECONDS}, {SEGMENTS} segments, negatives on")
        for name, r in res.items():
            blocks = r["blocks"]
            s = r["startup"]
            print(f"  {name:<22} {r['rate']:6.1f} samples/s (turns: min {min(blocks):.1f}, max {max(blocks):.1f}); "
                  f"{s['videos']:,} videos; start-up {s['startup_s']:.1f} s; peak RSS {r['peak_rss_gb']:.2f} GB; "
                  f"open files at most {r['max_fds']:,} of {r['nofile_soft']:,}; "
                  f"{100 * r['cpu_sys_s'] / max(r['cpu_user_s'] + r['cpu_sys_s'], 1e-9):.0f}% of its CPU time in the kernel"
                  + (f"; GPU memory peak {r['gpu_peak_gb']:.2f} GB" if r.get("gpu_peak_gb") else ""))
        ratio = res[full]["rate"] / res[subset]["rate"]
        print(f"  full set / {a.subset} videos: {100 * ratio:.0f}% of the samples/s")
        rates = {name[5:]: r["rate"] for name, r in res.items() if name.startswith("full ")}
        if device == "cpu":
            fps = {"original": a.original_fps, "ours": a.ours_fps, "ours_bf16": a.ours_bf16_fps}
            where, orig = "this CPU", a.original_samples_s
            sources = ("frames/s of benchmarks/bench_features.py on this project's 2-core AMD EPYC CPU "
                       "(docs/speed.md; 24 clips at 640x360): --original_fps, --ours_fps, --ours_bf16_fps")
        else:
            fps = {"original": a.gpu_original_fps, "ours": a.gpu_ours_fps, "ours_bf16": a.gpu_ours_bf16_fps}
            where, orig = torch.cuda.get_device_name(), a.gpu_original_samples_s
            sources = ("frames/s given with --gpu_original_fps, --gpu_ours_fps, --gpu_ours_bf16_fps (run "
                       "benchmarks/bench_features.py on this GPU; '?' where not given)")
        print()
        print(f"The full real dataset ({VIDEOS:,} videos, {QUESTIONS['train']:,} train questions), AVST on {device}:")
        print(projection(a, rates, orig, fps, f" on {where}"))
        print(f"  Disk: {VIDEOS:,} videos x seconds held x 512x14x14 x 4 or 2 bytes (used seconds: sparse files, which "
              f"a copy that does not keep holes expands to the all-seconds size).")
        print(f"  Extraction: {VIDEOS:,} videos x {SECONDS} or {len(USED)} frames at the {sources}; 14x14 only "
              f"(VGGish not counted); the float16 rows assume --bf16 compute, the float32 rows float32 compute.")
        print(f"  Epochs: {QUESTIONS['train']:,} / samples/s, training only (the validation pass after each epoch "
              f"is not counted); this project: the full-set samples/s measured above; the original route: "
              + ("bench_train_data.py's on 100 clips (--original_samples_s), which fit in the page cache: at full "
                 "size it reads 11 whole 24 MB files per sample and would be slower."
                 if device == "cpu" else "--gpu_original_samples_s ('?' where not given)."))
        if len(rates) < len(LAYOUTS):
            print("  'assumed': not measured (see --measure): taken as fast as all seconds, float32, the slowest "
                  "layout (a sample reads the same seconds in every layout, float16 half the bytes of float32, "
                  "and used seconds draw negatives from 18 seconds instead of 60).")

    print()
    print("Targets:")
    res = trained.get("cpu") or next(iter(trained.values()))
    checks = []
    for layout, target in (("used_f32", 75), ("used_f16", 40)):
        size = layout_bytes(layout) / 1e9
        checks.append((size <= target, f"used-seconds 14x14 features of the full set, {LAYOUTS[layout][1]}: "
                                       f"{size:.1f} GB <= {target} GB (original: {layout_bytes('all_f32') / 1e9:.0f} GB)"))
    later = res[full]["startup"]["startup_s"]
    first_total = first["layouts"]["all_f32"].get("first_total_s")
    checks.append((later <= 60, f"training starts within 60 s: {later:.1f} s with the NaN scan cached (every run after "
                                f"the first); the first run scans every file once: about {duration(first_total or 0)} "
                                f"for all seconds float32, "
                                f"{duration(first['layouts']['used_f16'].get('first_total_s') or 0)} for used seconds "
                                f"float16 (NaN scan: the slower of the sparse files' and the disk's figure)"))
    worst_rss = max(r["peak_rss_gb"] for n, r in res.items() if n.startswith("full "))
    checks.append((worst_rss < 4, f"peak resident memory of the training process < 4 GB: {worst_rss:.2f} GB"))
    fds = max(r["max_fds"] for n, r in res.items() if n.startswith("full "))
    checks.append((fds < soft, f"open files within the soft limit: at most {fds:,} open of {soft:,} "
                               f"({100 * fds / soft:.0f}%)"))
    if limit is not None:
        checks.append((not limit.get("error"), f"... and under a soft limit of {limit['nofile_soft']}: at most "
                                               f"{limit['max_fds']} open" + (f", then {limit['error']}" if limit.get("error")
                                                                              else ", no error")))
    ratio = res[full]["rate"] / res[subset]["rate"]
    checks.append((ratio >= 0.8, f"full-set samples/s >= 80% of the {a.subset}-video figure: {res[full]['rate']:.1f} vs "
                                 f"{res[subset]['rate']:.1f} = {100 * ratio:.0f}%"))
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    if a.videos != VIDEOS:
        print(f"  (simulated {a.videos} videos, not {VIDEOS}: the measured figures are of {a.videos} videos)")


if __name__ == "__main__":
    sys.exit(main())
