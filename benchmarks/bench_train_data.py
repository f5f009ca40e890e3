"""AVST training throughput and peak memory: our data route against the original's, in one run.

On random features of --videos sixty-second clips at the real data's shapes (VGGish [60,128], 14x14
[60,512,14,14] float32, 24 MB per clip), AVST trains on the CPU for a few batches of 64 through:
- the original route: every sample loads its clip's whole files, and for each of its 10 negatives
  the whole 14x14 file of another clip, in one DataLoader worker process;
- ours: the sampled seconds and one second per negative read (pread) from the feature files into
  reused batch buffers, in a prefetch thread.
Each route runs in its own process so that its peak resident memory can be measured.

    python benchmarks/bench_train_data.py              # 100 clips, 6 batches per route
"""
import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avqa.annotations import INSTRUMENTS, Vocab, load_annotations
from avqa.data import AUDIO_SHAPE, VISUAL_SHAPE, AVQADataset, FeatureStore, encode_split
from avqa.engine.batches import BatchLoader
from avqa.models import AVST
from avqa.tasks.qa import qa_loss
from avqa.machine import describe_machine


def make_data(root: Path, n_videos: int) -> None:
    rng = np.random.default_rng(0)
    (root / "vggish").mkdir(parents=True)
    (root / "res18_14x14").mkdir()
    rows = []
    for k in range(n_videos):
        vid = f"{k + 1:08d}"
        np.save(root / "vggish" / f"{vid}.npy", rng.random((60, 128), dtype=np.float32))
        np.save(root / "res18_14x14" / f"{vid}.npy", rng.random((60, 512, 14, 14), dtype=np.float32))
        for q in range(10):
            rows.append({"video_id": vid, "question_id": len(rows), "type": '["Audio", "Counting"]',
                         "question_content": "Is there a <Object> sound?",
                         "templ_values": json.dumps([INSTRUMENTS[(k + q) % 22]]), "question_deleted": 0,
                         "anser": "yes" if (k + q) % 2 else "no"})
    (root / "train.json").write_text(json.dumps(rows))


class OriginalRoute(torch.utils.data.Dataset):
    """Whole-file loads: the clip's files, then one whole 14x14 file per negative second."""

    def __init__(self, root: Path, split):
        self.root, self.split = root, split
        self.videos = sorted({s["video_id"] for s in split.samples})

    def __len__(self):
        return len(self.split.samples)

    def __getitem__(self, i):
        vid = self.split.samples[i]["video_id"]
        audio = np.load(self.root / "vggish" / f"{vid}.npy")[::6]
        posi = np.load(self.root / "res18_14x14" / f"{vid}.npy")[::6]
        negs = []
        for _ in range(posi.shape[0]):
            other = random.choice([v for v in self.videos if v != vid])
            whole = torch.from_numpy(np.load(self.root / "res18_14x14" / f"{other}.npy"))
            negs.append(whole[random.randrange(60)].unsqueeze(0))
        return {"audio": torch.from_numpy(audio), "visual_posi": torch.from_numpy(posi),
                "visual_nega": torch.cat(negs), "question": self.split.questions[i], "label": self.split.answers[i]}


def peak_rss_gb() -> tuple[float, float]:
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return hwm / 2**20, children / 2**20


def route(root: Path, which: str, batches: int) -> dict:
    torch.manual_seed(0)
    samples = load_annotations(root / "train.json")
    vocab = Vocab.from_samples(samples)
    split = encode_split(samples, vocab, "train.json")
    model = AVST(len(vocab.questions), len(vocab.answers))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    if which == "original":
        loader = torch.utils.data.DataLoader(OriginalRoute(root, split), batch_size=64, shuffle=True, num_workers=1)
    else:
        ds = AVQADataset(split, FeatureStore(root / "vggish", AUDIO_SHAPE), FeatureStore(root / "res18_14x14", VISUAL_SHAPE),
                         60, 10, negatives=True)
        loader = BatchLoader(ds, 64, torch.utils.data.RandomSampler(ds), prefetch=2)
    seen, t0 = 0, None
    it = iter(loader)
    for b in range(batches + 1):  # the first batch warms up
        batch = next(it)
        loss = qa_loss(model, batch, 0.5)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if b == 0:
            t0 = time.time()
        else:
            seen += len(batch["label"])
    rate = seen / (time.time() - t0)
    del it, loader
    main_gb, workers_gb = peak_rss_gb()
    return {"samples_per_s": rate, "peak_rss_gb": main_gb, "worker_peak_rss_gb": workers_gb}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=100, help="sixty-second clips of random features (>= 100)")
    p.add_argument("--batches", type=int, default=6, help="timed batches of 64 per route (at most 14)")
    p.add_argument("--route", choices=["original", "ours"], help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    if a.route:
        print(json.dumps(route(Path(a.root), a.route, a.batches)))
        return 0
    root = Path(tempfile.mkdtemp(prefix="avqa-bench-data-"))
    try:
        t = time.time()
        make_data(root, a.videos)
        print(f"{a.videos} clips of random real-data-shaped features ({a.videos * 24.1:.0f} MB) written in {time.time() - t:.0f} s; "
              f"AVST, batch 64, CPU threads {torch.get_num_threads()}")
        results = {}
        for which in ("original", "ours"):
            out = subprocess.run([sys.executable, __file__, "--route", which, "--root", str(root),
                                  "--batches", str(a.batches)], capture_output=True, text=True, check=True)
            results[which] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[which]
            print(f"  {which:<9} {r['samples_per_s']:7.1f} samples/s   peak RSS {r['peak_rss_gb']:.2f} GB"
                  + (f" (+ its loader worker {r['worker_peak_rss_gb']:.2f} GB)" if which == "original" else ""))
        ratio = results["ours"]["samples_per_s"] / results["original"]["samples_per_s"]
        print(f"  ours / original: {ratio:.1f}x samples/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
