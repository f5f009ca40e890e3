"""What float16 storage of the 14x14 features (`--float16`) does to answers: one checkpoint, the test
split, once on float32 features and once on the same features stored in float16.

`extract_14x14_feat.py --float16` computes in float32 (or bfloat16) and rounds to float16 when it
saves, so rounding float32 files gives exactly the files it would write. Prints the share of
questions with the same prediction, both overall accuracies and their difference, and the disk.

    python benchmarks/bench_float16.py          # the main job's set in data/, the bundled AVST checkpoint
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from avqa.tasks.qa import run_qa
from avqa.utils import metadata_path
from avqa.machine import describe_machine


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data", help="dataset folder with json/ and feats/ (default: data)")
    p.add_argument("--model_save_dir", default="net_grd_avst/avst_models", help="folder of the checkpoint")
    p.add_argument("--checkpoint", default="avst", help="checkpoint name (default: the bundled avst)")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    d = Path(a.data)
    feats32 = d / "feats" / "res18_14x14"
    test = d / "json" / "avqa-test.json"
    videos = sorted({s["video_id"] for s in json.loads(test.read_text())})
    tmp = Path(tempfile.mkdtemp(prefix="avqa-bench-f16-"))
    try:
        feats16 = tmp / "res18_14x14"
        feats16.mkdir()
        for v in videos:
            np.save(feats16 / f"{v}.npy", np.load(feats32 / f"{v}.npy").astype(np.float16))
        meta = json.loads(metadata_path(feats32).read_text())
        metadata_path(feats16).write_text(json.dumps({**meta, "dtype": "float16"}, indent=1))
        reports = {}
        for name, folder in (("float32", feats32), ("float16", feats16)):
            out = tmp / f"{name}.json"
            code = run_qa("avst", ["--mode", "test", "--quiet", "--model_save_dir", a.model_save_dir,
                                   "--checkpoint", a.checkpoint, "--audio_dir", str(d / "feats" / "vggish"),
                                   "--video_res14x14_dir", str(folder), "--label_train", str(d / "json" / "avqa-train.json"),
                                   "--label_test", str(test), "--results", str(out)])
            if code:
                return code
            reports[name] = json.loads(out.read_text())
        p32, p16 = ([r["prediction"] for r in reports[n]["predictions"]] for n in ("float32", "float16"))
        same = 100.0 * np.mean([x == y for x, y in zip(p32, p16)])
        acc = {n: reports[n]["table"]["Overall"]["accuracy"] for n in reports}
        size = {n: sum(f.stat().st_size for f in folder.glob("*.npy") if f.stem in set(videos))
                for n, folder in (("float32", feats32), ("float16", feats16))}
        print(f"\n{a.model_save_dir}/{a.checkpoint}.pt on {test} ({len(p32)} questions, {len(videos)} videos):")
        print(f"  same prediction with float16 14x14 features: {same:.2f}% of the questions")
        print(f"  overall accuracy: float32 {acc['float32']:.2f}, float16 {acc['float16']:.2f} "
              f"(difference {acc['float16'] - acc['float32']:+.2f} points)")
        print(f"  disk of these videos' 14x14 features: float32 {size['float32'] / 2**20:.0f} MiB, "
              f"float16 {size['float16'] / 2**20:.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
