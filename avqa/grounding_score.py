"""How well does a model find the sounding instrument? Scored on the synthetic set, where boxes are known.

For every sampled second of a test clip in which exactly one visible instrument is playing (and
the clip carries its own sound), the model's sound-guided 14x14 attention is compared with that
instrument's box:
- pointing game: a hit when the attention peak (the centre of the highest cell) falls in the box;
- attention mass: the share of attention on cells whose centres fall in the box.
Chance is uniform attention: a random peak, and a mass equal to the share of cells in the box.
The attention is a function of the sound and the frame only, so the same score applies to the
grounding pre-training model and to AVST (whose spatial grounding starts from it).

    python -m avqa.grounding_score --model avst --checkpoint net_grd_avst/avst_models/avst.pt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .annotations import Vocab, load_annotations
from .data import AUDIO_SHAPE, VISUAL_SHAPE, FeatureStore, segment_seconds
from .models import QA_MODELS, AudioVisualGrounding
from .utils import atomic_write_text, sha256

GRID = 14


def cells_in_box(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """[14, 14] mask of the cells whose centres fall inside a pixel box (the frame is resized to 224x224)."""
    x0, y0, x1, y1 = box
    cx = (np.arange(GRID) + 0.5) / GRID * width
    cy = (np.arange(GRID) + 0.5) / GRID * height
    return ((cy[:, None] >= y0) & (cy[:, None] < y1)) & ((cx[None, :] >= x0) & (cx[None, :] < x1))


def score_map(attention: np.ndarray, box_cells: np.ndarray) -> tuple[bool, float]:
    """(pointing-game hit, attention mass in the box) of one [196] or [14,14] attention map."""
    att = np.asarray(attention, dtype=np.float64).reshape(GRID, GRID)
    peak = np.unravel_index(int(att.argmax()), att.shape)
    return bool(box_cells[peak]), float(att[box_cells].sum() / max(att.sum(), 1e-12))


def single_source_seconds(gt: dict, seconds: Sequence[int]) -> list[tuple[int, list[int]]]:
    """(second, box) for the given seconds in which exactly one visible instrument is heard playing."""
    if gt.get("sound_from") is not None:
        return []
    out = []
    for s in seconds:
        playing = [i for i in gt["instruments"] if i["audible"] and any(a <= s < b for a, b in i["playing"])]
        if len(playing) == 1 and playing[0]["boxes"][s] is not None:
            out.append((int(s), playing[0]["boxes"][s]))
    return out


@torch.no_grad()
def grounding_score(model: torch.nn.Module, videos: Sequence[str], audio: FeatureStore, visual: FeatureStore,
                    ground_truth: Path, segments: int = 10) -> dict:
    """Pointing game and attention mass of ``model`` (it must have encode_audio and spatial_grounding)."""
    model.eval()
    hits, masses, chance = [], [], []
    for vid in videos:
        gt_path = Path(ground_truth) / f"{vid}.json"
        if not gt_path.is_file():
            continue
        gt = json.loads(gt_path.read_text())
        total = audio.seconds(vid)
        items = single_source_seconds(gt, segment_seconds(total, segments).tolist())
        if not items:
            continue
        secs = [s for s, _ in items]
        a = model.encode_audio(torch.from_numpy(audio.read(vid, secs)))
        _, att = model.spatial_grounding(a, torch.from_numpy(visual.read(vid, secs)))
        for (_, box), m in zip(items, att.numpy()):
            cells = cells_in_box(box, gt["width"], gt["height"])
            hit, mass = score_map(m, cells)
            hits.append(hit)
            masses.append(mass)
            chance.append(cells.mean())
    n = len(hits)
    return {"seconds_scored": n,
            "pointing_game": round(100 * float(np.mean(hits)), 2) if n else None,
            "attention_mass": round(100 * float(np.mean(masses)), 2) if n else None,
            "chance": round(100 * float(np.mean(chance)), 2) if n else None}


def format_scores(scores: dict[str, dict]) -> str:
    lines = [f"  {'model':<22}{'pointing game':>15}{'attention mass':>16}{'chance':>9}{'seconds':>9}"]
    for name, s in scores.items():
        if s["seconds_scored"] == 0:
            lines.append(f"  {name:<22}{'(no single-source seconds)':>40}")
            continue
        lines.append(f"  {name:<22}{s['pointing_game']:>14.2f}%{s['attention_mass']:>15.2f}%{s['chance']:>8.2f}%"
                     f"{s['seconds_scored']:>9}")
    return "\n".join(lines)


def load_model(kind: str, checkpoint: str | Path, vocab: Vocab | None) -> torch.nn.Module:
    """A trained model; QA models need the vocabulary of their train file."""
    from .train import load_trained_state
    if kind == "grounding":
        model = AudioVisualGrounding()
        load_trained_state(checkpoint, "grounding", model, None)
        return model
    model = QA_MODELS[kind](len(vocab.questions), len(vocab.answers))
    load_trained_state(checkpoint, kind, model, vocab)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["grounding", "avst"], action="append", required=True,
                   help="model kind; repeat with --checkpoint to score several")
    p.add_argument("--checkpoint", action="append", required=True, help="checkpoint of each --model, in order")
    p.add_argument("--label_train", default="./data/json/avqa-train.json", help="train annotations (AVST vocabulary)")
    p.add_argument("--label_test", default="./data/json/avqa-test.json", help="the clips to score")
    p.add_argument("--ground_truth", default="./data/ground_truth", help="per-clip ground truth of the synthetic set")
    p.add_argument("--audio_dir", default="./data/feats/vggish")
    p.add_argument("--video_res14x14_dir", default="./data/feats/res18_14x14")
    p.add_argument("--segments", type=int, default=10, help="seconds sampled per clip, as in training")
    p.add_argument("--out", default=None, help="write the scores as JSON here")
    args = p.parse_args(argv)
    if len(args.model) != len(args.checkpoint):
        p.error("give one --checkpoint per --model")
    videos = list(dict.fromkeys(s["video_id"] for s in load_annotations(args.label_test)))
    audio, visual = FeatureStore(args.audio_dir, AUDIO_SHAPE), FeatureStore(args.video_res14x14_dir, VISUAL_SHAPE)
    scores = {}
    for kind, ckpt in zip(args.model, args.checkpoint):
        try:
            model = load_model(kind, ckpt, None if kind == "grounding" else Vocab.from_file(args.label_train))
        except (ValueError, FileNotFoundError) as e:
            print(e, file=sys.stderr)
            return 1
        scores[kind] = grounding_score(model, videos, audio, visual, Path(args.ground_truth), args.segments)
    print(f"grounding on {len(videos)} clips of {args.label_test} (seconds with one sounding instrument):")
    print(format_scores(scores))
    if args.out:
        checkpoints = {kind: {"path": ckpt, "sha256": sha256(ckpt)} for kind, ckpt in zip(args.model, args.checkpoint)}
        atomic_write_text(args.out, json.dumps({"scores": scores, "checkpoints": checkpoints}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
