"""Where the model looks and listens: one PNG sheet per question (AVST) or per clip (grounding).

Each sampled frame carries the sound-guided 14x14 attention as a heatmap (min-max normalised,
jet colours at 40% over the picture, as the original's figure); under it, the question's
temporal attention on that second for sound (a) and for vision (v), or for the grounding model
the probability that this second's sound belongs to this frame. The header holds the question,
the prediction and the true answer.

Frames come from the 1 fps JPEG folders (data/frames/<id>/00000001.jpg, ...) when present, else
they are decoded from the video.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .checkpoint import trained_path
from .annotations import Vocab, load_annotations, tokenize
from .data import AUDIO_SHAPE, VISUAL_SHAPE, FeatureStore, segment_seconds
from .media import read_sampled_frames
from .utils import EXIT_CODES, atomic_save, user_errors

TILE_W = 224          # width of one frame on the sheet
CAPTION_H = 22        # text line under each frame
HEADER_H = 70         # question, answers, clip
PAD = 6
COLUMNS = 5
_FONTS: dict[int, ImageFont.ImageFont] = {}


def font(size: int):
    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except TypeError:  # Pillow without FreeType
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


def jet(x: np.ndarray) -> np.ndarray:
    """The jet colour map: [..] in 0..1 -> [.., 3] uint8."""
    x = np.clip(x, 0, 1)[..., None]
    rgb = np.clip(1.5 - np.abs(4 * x - np.array([3.0, 2.0, 1.0])), 0, 1)
    return (rgb * 255).astype(np.uint8)


HEAT_WEIGHT = 0.4     # the heatmap's share of each blended pixel; the frame keeps the rest (the original's 0.4/0.6)


def heat_colours(attention: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 14x14 attention, min-max normalised, upsampled to ``size`` and coloured with jet: [H, W, 3] uint8."""
    att = np.asarray(attention, dtype=np.float32).reshape(14, 14)
    att = (att - att.min()) / max(float(att.max() - att.min()), 1e-12)
    heat = Image.fromarray((att * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
    return jet(np.asarray(heat, dtype=np.float32) / 255)


def overlay(frame: np.ndarray, attention: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Frame resized to ``size`` with the 14x14 attention upsampled over it as a heatmap."""
    heat = heat_colours(attention, size)
    img = np.asarray(Image.fromarray(frame).convert("RGB").resize(size, Image.BILINEAR), dtype=np.float32)
    return Image.fromarray((HEAT_WEIGHT * heat + (1 - HEAT_WEIGHT) * img).astype(np.uint8))


def sheet_size(n_frames: int, frame_w: int, frame_h: int) -> tuple[int, int]:
    """Pixel size of a sheet of ``n_frames`` frames of the given aspect (what ``make_sheet`` draws)."""
    tile_h = int(round(TILE_W * frame_h / frame_w))
    cols = min(COLUMNS, n_frames)
    rows = -(-n_frames // COLUMNS)
    return PAD + cols * (TILE_W + PAD), HEADER_H + rows * (tile_h + CAPTION_H + PAD) + PAD


def make_sheet(frames: Sequence[np.ndarray], attention: np.ndarray, captions: Sequence[str],
               header: Sequence[str]) -> Image.Image:
    h, w = frames[0].shape[:2]
    tile_h = int(round(TILE_W * h / w))
    size = sheet_size(len(frames), w, h)
    sheet = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(header[:3]):
        draw.text((PAD, PAD + 21 * k), line, fill=(0, 0, 0), font=font(16 if k == 0 else 14))
    for i, (frame, att, cap) in enumerate(zip(frames, attention, captions)):
        r, c = divmod(i, COLUMNS)
        x = PAD + c * (TILE_W + PAD)
        y = HEADER_H + r * (tile_h + CAPTION_H + PAD)
        sheet.paste(overlay(frame, att, (TILE_W, tile_h)), (x, y))
        draw.text((x + 2, y + tile_h + 3), cap, fill=(20, 20, 20), font=font(13))
    return sheet


def clip_frames(video_id: str, seconds: Sequence[int], frames_dir: Path | None, video_dir: Path | None,
                total: int) -> list[np.ndarray]:
    """RGB frames of the given seconds: from a 1 fps JPEG folder, else decoded from the video."""
    folder = frames_dir / video_id if frames_dir else None
    if folder is not None and folder.is_dir():
        files = sorted(folder.glob("*.jpg"))
        if len(files) >= max(seconds) + 1:
            return [np.asarray(Image.open(files[s]).convert("RGB")) for s in seconds]
    if video_dir is not None:
        videos = [p for p in video_dir.glob(f"{video_id}.*") if not p.name.startswith(".")]
        if videos:
            frames, _ = read_sampled_frames(videos[0], total)
            return [frames[s] for s in seconds]
    raise FileNotFoundError(f"no frames for {video_id}: neither {folder} nor a video in {video_dir}")


def save_png(image: Image.Image, path: Path) -> None:
    atomic_save(path, lambda tmp: image.save(tmp, format="PNG"))


def avst_sheet(frames: Sequence[np.ndarray], seconds: Sequence[int], maps: dict[str, torch.Tensor],
               tokens: Sequence[str], verdict: str, source: str) -> Image.Image:
    """One question's sheet, drawn from AVST's attention maps (``return_attention``, batch of one).

    Shared by main_avst_vis.py and avqa.ask: ``verdict`` is the header's second line (the
    prediction, and the true answer where there is one), ``source`` names the clip.
    """
    ta, tv = maps["temporal_audio"][0].tolist(), maps["temporal_visual"][0].tolist()
    captions = [f"{sec}s  a {a:.2f}  v {v:.2f}" for sec, a, v in zip(seconds, ta, tv)]
    header = [" ".join(tokens) + "?", verdict,
              f"{source}   heatmap: where the sound is; a/v: question's attention on each second"]
    return make_sheet(frames, maps["spatial"][0].numpy(), captions, header)


@torch.no_grad()
def avst_sheets(model, vocab: Vocab, samples: Sequence[dict], audio: FeatureStore, visual: FeatureStore,
                frames_dir: Path | None, video_dir: Path | None, out_dir: Path, segments: int = 10) -> list[Path]:
    """One sheet per question: spatial attention per frame, temporal attention per second."""
    model.eval()
    written, seen = [], {}
    for s in samples:
        vid = s["video_id"]
        total = audio.seconds(vid)
        secs = segment_seconds(total, segments).tolist()
        q = torch.tensor(vocab.encode([s])[0])
        logits, _, _, att = model(torch.from_numpy(audio.read(vid, secs))[None],
                                  torch.from_numpy(visual.read(vid, secs))[None], None, q, return_attention=True)
        pred = vocab.answers[int(logits.argmax())]
        mark = "correct" if pred == s["anser"] else "wrong"
        frames = clip_frames(vid, secs, frames_dir, video_dir, total)
        sheet = avst_sheet(frames, secs, att, tokenize(s), f"predicted: {pred}    answer: {s['anser']}    ({mark})",
                           f"clip {vid}   question_id {s['question_id']}")
        stem = f"{vid}_q{s['question_id']}"
        seen[stem] = seen.get(stem, 0) + 1  # the real files repeat some question_ids on one clip
        path = out_dir / (f"{stem}.png" if seen[stem] == 1 else f"{stem}_{seen[stem]}.png")
        save_png(sheet, path)
        written.append(path)
    return written


@torch.no_grad()
def grounding_sheets(model, videos: Sequence[str], audio: FeatureStore, visual: FeatureStore,
                     frames_dir: Path | None, video_dir: Path | None, out_dir: Path, seconds: int = 10) -> list[Path]:
    """One sheet per clip: where each second's sound is, and whether it matches its frame."""
    model.eval()
    written = []
    for vid in videos:
        total = audio.seconds(vid)
        secs = list(range(min(seconds, total)))
        logits, att = model(torch.from_numpy(audio.read(vid, secs))[None],
                            torch.from_numpy(visual.read(vid, secs))[None], return_attention=True)
        match = torch.softmax(logits, dim=-1)[:, 1].tolist()
        captions = [f"{sec}s  match {p:.2f}" for sec, p in zip(secs, match)]
        header = [f"clip {vid}: where is the sound?", "heatmap: sound-guided attention over the 14x14 map",
                  "match: probability that this second's sound belongs to this frame"]
        frames = clip_frames(vid, secs, frames_dir, video_dir, total)
        path = out_dir / f"{vid}.png"
        save_png(make_sheet(frames, att.numpy(), captions, header), path)
        written.append(path)
    return written


def pick(samples: Sequence[dict], question_ids: Sequence[int] | None, video_ids: Sequence[str] | None,
         count: int) -> list[dict]:
    """The chosen questions: by id, by clip, or ``count`` of distinct templates on distinct clips."""
    if question_ids:
        wanted = set(question_ids)
        return [s for s in samples if s["question_id"] in wanted]
    if video_ids:
        wanted_v = set(video_ids)
        return [s for s in samples if s["video_id"] in wanted_v]
    # first questions of new templates on new clips, then of new templates, then any
    out, taken, templates, clips = [], set(), set(), set()
    for rule in range(3):
        for i, s in enumerate(samples):
            if len(out) >= count:
                return out
            new_template, new_clip = s["question_content"] not in templates, s["video_id"] not in clips
            if i not in taken and (rule == 2 or (new_template and (rule == 1 or new_clip))):
                taken.add(i)
                out.append(s)
                templates.add(s["question_content"])
                clips.add(s["video_id"])
    return out


def parser(description: str, grounding: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, epilog=EXIT_CODES, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--audio_dir", default="./data/feats/vggish", help="VGGish features")
    p.add_argument("--video_res14x14_dir", default="./data/feats/res18_14x14", help="ResNet-18 14x14 features")
    p.add_argument("--frames_dir", "--video_dir_frames", dest="frames_dir", default="./data/frames",
                   help="1 fps JPEG frame folders (used when present)")
    p.add_argument("--videos_dir", default="./data/videos", help="videos, decoded when frames are absent")
    p.add_argument("--label_test", default="./data/json/avqa-test.json", help="the questions or clips to show")
    p.add_argument("--video_ids", nargs="*", default=None, help="clips to show (default: the first --count)")
    p.add_argument("--count", type=int, default=6, help="how many clips (grounding) or questions (AVST) to show")
    if grounding:
        p.add_argument("--model_save_dir", default="grounding_gen/models_grounding_gen/")
        p.add_argument("--checkpoint", default="main_grounding_gen", help="loads <checkpoint>_best.pt")
        p.add_argument("--out_dir", default="grounding_gen/models_grd_vis/", help="where the sheets go")
    else:
        p.add_argument("--label_train", default="./data/json/avqa-train.json", help="train file (vocabulary)")
        p.add_argument("--question_ids", nargs="*", type=int, default=None, help="questions to show")
        p.add_argument("--model_save_dir", default="net_grd_avst/avst_models/")
        p.add_argument("--checkpoint", default="avst", help="loads <checkpoint>.pt")
        p.add_argument("--out_dir", default="net_grd_avst/avst_vis/", help="where the sheets go")
    p.add_argument("--segments", type=int, default=10, help="seconds the model sees per clip")
    return p


@dataclass
class Sheets:
    """What a run of the sheets draws: the grounding model's (``grounding``) or AVST's, from which checkpoint,
    on which features, clips and questions, into ``out_dir``. Field names are the scripts' flags."""

    grounding: bool
    model_save_dir: str
    checkpoint: str
    out_dir: str
    audio_dir: str = "./data/feats/vggish"
    video_res14x14_dir: str = "./data/feats/res18_14x14"
    frames_dir: str = "./data/frames"
    videos_dir: str = "./data/videos"
    label_test: str = "./data/json/avqa-test.json"
    label_train: str | None = None
    question_ids: list[int] | None = None
    video_ids: list[str] | None = None
    count: int = 6
    segments: int = 10


@user_errors
def main(grounding: bool, argv: Sequence[str] | None = None, description: str = "") -> int:
    """grounding_gen/main_grd_gen_vis.py (``grounding``) and net_grd_avst/main_avst_vis.py: their flags, then ``draw``."""
    return draw(Sheets(grounding=grounding, **vars(parser(description, grounding).parse_args(argv))))


def draw(args: Sheets) -> int:
    """Draw the sheets ``args`` asks for; 1 after saying why when a checkpoint or an annotation file cannot be used."""
    from .grounding_score import load_model
    grounding = args.grounding
    audio, visual = FeatureStore(args.audio_dir, AUDIO_SHAPE), FeatureStore(args.video_res14x14_dir, VISUAL_SHAPE)
    out = Path(args.out_dir)
    frames_dir, videos_dir = Path(args.frames_dir), Path(args.videos_dir)
    samples = load_annotations(args.label_test)
    try:
        if grounding:
            model = load_model("grounding", trained_path(args.model_save_dir, args.checkpoint, "grounding"), None)
            videos = args.video_ids or list(dict.fromkeys(s["video_id"] for s in samples))[:args.count]
            written = grounding_sheets(model, videos, audio, visual, frames_dir, videos_dir, out, args.segments)
        else:
            vocab = Vocab.from_file(args.label_train)
            model = load_model("avst", trained_path(args.model_save_dir, args.checkpoint), vocab)
            chosen = pick(samples, args.question_ids, args.video_ids, args.count)
            written = avst_sheets(model, vocab, chosen, audio, visual, frames_dir, videos_dir, out, args.segments)
    except (ValueError, FileNotFoundError) as e:  # AnnotationError is a ValueError
        print(e, file=sys.stderr)
        return 1
    print(f"{len(written)} sheet(s) in {out}")
    return 0
