"""A tiny QA-TIGER set for the tests: annotation files and random features in the release's layout."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

STANDIN_CLIP = Path(__file__).resolve().parents[1] / "feat_script" / "weights" / "clip_synthetic.pt"
WIDTH = 16            # --video_dim and --patch_dim of the tiny set
TEMPLATES = [("How many instruments are sounding in the video?", "[]", '["Audio", "Counting"]', ("one", "two")),
             ("Is the <Object> in the video always playing?", '["cello"]', '["Audio-Visual", "Existential"]',
              ("yes", "no")),
             ("Where is the <FL> sounding <Object>?", '["first", "piano"]', '["Audio-Visual", "Location"]',
              ("left", "right"))]


def rows(videos: list[str], start: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for v in videos:
        for q, values, kind, answers in TEMPLATES:
            out.append({"video_id": v, "question_id": start + len(out), "type": kind, "question_content": q,
                        "templ_values": values, "question_deleted": 0, "anser": answers[rng.integers(2)]})
    return out


def make_set(root: Path, seconds: int = 60, token_frames: int | None = None) -> dict[str, Path]:
    """Annotations (train 4 clips, val 2, test 2) and features of width WIDTH; returns the folders and files."""
    g = torch.Generator().manual_seed(0)
    paths = {k: root / k for k in ("audio", "video", "patch")}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    splits = {"train": [f"v{i}" for i in range(4)], "val": ["v4", "v5"], "test": ["v6", "v7"]}
    for i, (split, videos) in enumerate(splits.items()):
        (root / f"avqa-{split}.json").write_text(json.dumps(rows(videos, 1000 * i, i)))
        paths[split] = root / f"avqa-{split}.json"
        for v in videos:
            np.save(paths["audio"] / f"{v}.npy", torch.randn(seconds, 128, generator=g).numpy())
            np.save(paths["video"] / f"{v}.npy", torch.randn(seconds, WIDTH, generator=g).numpy())
            np.save(paths["patch"] / f"{v}.npy",
                    torch.randn(token_frames or seconds, 14, WIDTH, generator=g).numpy().astype(np.float16))
    return paths


def flags(paths: dict[str, Path], out: Path) -> list[str]:
    return ["--audio_feat", str(paths["audio"]), "--video_feat", str(paths["video"]), "--patch_feat",
            str(paths["patch"]), "--label_train", str(paths["train"]), "--label_val", str(paths["val"]),
            "--label_test", str(paths["test"]), "--video_dim", str(WIDTH), "--patch_dim", str(WIDTH),
            "--d_model", "32", "--clip_weights", str(STANDIN_CLIP), "--model_save_dir", str(out), "--quiet",
            "--tensorboard_dir", "", "--batch-size", "8", "--eval_batch_size", "8", "--epochs", "1"]
