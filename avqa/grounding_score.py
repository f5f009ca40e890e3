"""Does the model look where the sound comes from? Scored on the synthetic set, where boxes are known.

The sound-guided 14x14 attention of a model (grounding pre-training or AVST: both compute it from
the sound and the frame alone) is compared with the instruments' boxes on the sampled seconds of
the test clips that carry their own sound:
- sounding vs silent: seconds with at least two visible instruments, at least one of them playing
  and at least one silent. A hit when the attention peak (the centre of the highest cell) falls in
  a playing instrument's box and in no silent one's. This credits the sound: a model that finds
  objects without listening lands on silent instruments as often as on playing ones. Beside it:
  the share of peaks on a silent instrument, and of peaks just next to a playing one (in a cell
  touching its box, outside every box), which says how near the misses fall.
- pointing game: seconds in which exactly one visible instrument plays; a hit when the peak falls
  in its box. Attention mass: the share of attention on the cells of that box.
Every model is scored beside the same model untrained (built with the seed of its training run,
not trained) and beside chance: uniform attention, i.e. a random peak, whose hit rate is the
share of cells in the target region.

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

from .checkpoint import load_trained_state, untrained as untrained_model
from .annotations import Vocab, load_annotations
from .data import AUDIO_SHAPE, VISUAL_SHAPE, FeatureStore, segment_seconds
from .models import QA_MODELS, AudioVisualGrounding
from .utils import EXIT_CODES, atomic_write_text, sha256, user_errors

GRID = 14


def cells_in_box(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """[14, 14] mask of the cells whose centres fall inside a pixel box (the frame is resized to 224x224)."""
    x0, y0, x1, y1 = box
    cx = (np.arange(GRID) + 0.5) / GRID * width
    cy = (np.arange(GRID) + 0.5) / GRID * height
    return ((cy[:, None] >= y0) & (cy[:, None] < y1)) & ((cx[None, :] >= x0) & (cx[None, :] < x1))


def next_to(cells: np.ndarray) -> np.ndarray:
    """The cells that touch ``cells`` (its 8 neighbours) without being in it."""
    padded = np.pad(cells, 1)
    grown = np.zeros_like(cells)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy:dy + cells.shape[0], dx:dx + cells.shape[1]]
    return grown & ~cells


def peak_regions(target: np.ndarray, silent: np.ndarray) -> dict[str, np.ndarray]:
    """The disjoint cell masks a sounding-vs-silent peak is sorted into: on a playing box ('playing',
    which excludes cells shared with a silent box), on a silent box, and 'next' to a playing box
    (touching it, in no box)."""
    return {"playing": target, "silent": silent, "next": next_to(target) & ~silent}


def peak_cell(attention: np.ndarray) -> tuple[int, int]:
    """(row, column) of the highest cell of a [196] or [14,14] map: the peak both scores judge."""
    row, col = np.unravel_index(int(np.asarray(attention).argmax()), (GRID, GRID))
    return int(row), int(col)


def where_peak(attention: np.ndarray, regions: dict[str, np.ndarray]) -> str:
    """The region of ``peak_regions`` the peak of a [196] or [14,14] map falls in, or 'elsewhere'."""
    peak = peak_cell(attention)
    return next((name for name, cells in regions.items() if cells[peak]), "elsewhere")


def score_map(attention: np.ndarray, box_cells: np.ndarray) -> tuple[bool, float]:
    """(pointing-game hit, attention mass in the box) of one [196] or [14,14] attention map."""
    att = np.asarray(attention, dtype=np.float64).reshape(GRID, GRID)
    return bool(box_cells[peak_cell(att)]), float(att[box_cells].sum() / max(att.sum(), 1e-12))


def _box_cells(boxes: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    cells = np.zeros((GRID, GRID), bool)
    for box in boxes:
        cells |= cells_in_box(box, width, height)
    return cells


def scored_seconds(gt: dict, seconds: Sequence[int]) -> dict[str, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Per score, the (second, target cells, silent cells) of the given seconds that it counts.

    Only clips that carry their own sound count; an instrument is sounding in second s when it is
    audible and plays in [s, s+1).
    """
    out: dict[str, list] = {"sounding_vs_silent": [], "single_source": []}
    if gt.get("sound_from") is not None:
        return out
    for s in seconds:
        visible = [i for i in gt["instruments"] if i["boxes"][s] is not None]
        sounding = [i for i in visible if i["audible"] and any(a <= s < b for a, b in i["playing"])]
        silent = [i for i in visible if i not in sounding]
        on = _box_cells([i["boxes"][s] for i in sounding], gt["width"], gt["height"])
        off = _box_cells([i["boxes"][s] for i in silent], gt["width"], gt["height"])
        if len(visible) >= 2 and sounding and silent:
            out["sounding_vs_silent"].append((int(s), on & ~off, off))
        if len(sounding) == 1:
            out["single_source"].append((int(s), on, off))
    return out


def single_source_seconds(gt: dict, seconds: Sequence[int]) -> list[tuple[int, np.ndarray]]:
    """(second, cells of its box) for the seconds in which exactly one visible instrument is heard playing."""
    return [(s, on) for s, on, _ in scored_seconds(gt, seconds)["single_source"]]


def _percent(values: list) -> float | None:
    return round(100 * float(np.mean(values)), 2) if values else None


@torch.no_grad()
def grounding_score(model: torch.nn.Module, videos: Sequence[str], audio: FeatureStore, visual: FeatureStore,
                    ground_truth: Path, segments: int = 10) -> dict:
    """Both scores of ``model`` (it must have encode_audio and spatial_grounding), with their chance levels."""
    model.eval()
    acc: dict[str, list] = {k: [] for k in ("playing", "silent", "next", "chance_playing", "chance_silent", "chance_next",
                                            "single_hit", "single_mass", "single_chance")}
    for vid in videos:
        gt_path = Path(ground_truth) / f"{vid}.json"
        if not gt_path.is_file():
            continue
        gt = json.loads(gt_path.read_text())
        items = scored_seconds(gt, segment_seconds(audio.seconds(vid), segments).tolist())
        secs = sorted({s for group in items.values() for s, _, _ in group})
        if not secs:
            continue
        a = model.encode_audio(torch.from_numpy(audio.read(vid, secs)))
        _, att = model.spatial_grounding(a, torch.from_numpy(visual.read(vid, secs)))
        maps = dict(zip(secs, att.numpy()))
        for s, target, silent in items["sounding_vs_silent"]:
            regions = peak_regions(target, silent)
            place = where_peak(maps[s], regions)
            for name, cells in regions.items():
                acc[name].append(place == name)
                acc[f"chance_{name}"].append(cells.mean())
        for s, box, _ in items["single_source"]:
            hit, mass = score_map(maps[s], box)
            acc["single_hit"].append(hit)
            acc["single_mass"].append(mass)
            acc["single_chance"].append(box.mean())
    return {"sounding_vs_silent": {"seconds_scored": len(acc["playing"]), "hit": _percent(acc["playing"]),
                                   "on_silent": _percent(acc["silent"]), "next_to_playing": _percent(acc["next"]),
                                   "chance": _percent(acc["chance_playing"]),
                                   "chance_on_silent": _percent(acc["chance_silent"]),
                                   "chance_next_to_playing": _percent(acc["chance_next"])},
            "pointing_game": {"seconds_scored": len(acc["single_hit"]), "hit": _percent(acc["single_hit"]),
                              "attention_mass": _percent(acc["single_mass"]), "chance": _percent(acc["single_chance"])}}


def format_scores(scores: dict[str, dict]) -> str:
    """One row per model and a chance row (uniform attention), both scores side by side.

    A report written before the "next to one" column existed shows '-' there.
    """
    def cell(value, width):
        return f"{value:>{width - 1}.2f}%" if value is not None else f"{'-':>{width}}"

    first = next(iter(scores.values()))
    sv, pg = first["sounding_vs_silent"], first["pointing_game"]
    lines = [f"  {'':<24}{'sounding vs silent (' + str(sv['seconds_scored']) + ' s)':>48}"
             f"{'one source (' + str(pg['seconds_scored']) + ' s)':>34}",
             f"  {'model':<24}{'peak on a playing one':>22}{'next to one':>12}{'on a silent one':>17}"
             f"{'pointing game':>16}{'attention mass':>17}"]
    for name, s in scores.items():
        sv, pg = s["sounding_vs_silent"], s["pointing_game"]
        lines.append(f"  {name:<24}{cell(sv['hit'], 22)}{cell(sv.get('next_to_playing'), 12)}{cell(sv['on_silent'], 17)}"
                     f"{cell(pg['hit'], 16)}{cell(pg['attention_mass'], 17)}")
    lines.append(f"  {'chance (uniform)':<24}{cell(sv['chance'], 22)}{cell(sv.get('chance_next_to_playing'), 12)}"
                 f"{cell(sv['chance_on_silent'], 17)}{cell(pg['chance'], 16)}{cell(pg['chance'], 17)}")
    return "\n".join(lines)


def load_model(kind: str, checkpoint: str | Path, vocab: Vocab | None, untrained: bool = False) -> torch.nn.Module:
    """A trained model, or (``untrained``) the same model as its training run built it, before any step.

    QA models need the vocabulary of their train file. The untrained model is made with the seed
    the checkpoint records (1, the original default, for original checkpoints).
    """
    def build() -> torch.nn.Module:
        return AudioVisualGrounding() if kind == "grounding" else QA_MODELS[kind](len(vocab.questions), len(vocab.answers))

    model = build()
    meta = load_trained_state(checkpoint, kind, model, vocab)
    return untrained_model(meta, build) if untrained else model


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return score_checkpoints(list(zip(args.model, args.checkpoint)), args.label_train, args.label_test,
                             args.ground_truth, args.audio_dir, args.video_res14x14_dir, args.segments, args.out)


def score_checkpoints(checkpoints: Sequence[tuple[str, str]], label_train: str, label_test: str, ground_truth: str,
                      audio_dir: str, video_res14x14_dir: str, segments: int = 10, out: str | None = None) -> int:
    """Score each (model kind, checkpoint) and the same model untrained on the clips of ``label_test``; the
    scores go to ``out`` as JSON when given."""
    videos = list(dict.fromkeys(s["video_id"] for s in load_annotations(label_test)))
    audio, visual = FeatureStore(audio_dir, AUDIO_SHAPE), FeatureStore(video_res14x14_dir, VISUAL_SHAPE)
    scores = {}
    for kind, ckpt in checkpoints:
        vocab = None if kind == "grounding" else Vocab.from_file(label_train)
        for untrained in (False, True):
            try:
                model = load_model(kind, ckpt, vocab, untrained)
            except (ValueError, FileNotFoundError) as e:
                print(e, file=sys.stderr)
                return 1
            name = f"{kind}, untrained" if untrained else kind
            scores[name] = grounding_score(model, videos, audio, visual, Path(ground_truth), segments)
    print(f"where the sound-guided attention peaks, on the sampled seconds of {len(videos)} clips of {label_test}:")
    print(format_scores(scores))
    if out:
        scored = {kind: {"path": ckpt, "sha256": sha256(ckpt)} for kind, ckpt in checkpoints}
        atomic_write_text(out, json.dumps({"scores": scores, "checkpoints": scored}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
