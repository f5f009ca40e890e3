"""Draw figs/framework.png, the README's diagram of AVST: ``python docs/framework_figure.py``.

The boxes follow docs/model.md: each second's sound grounds its frame (spatial grounding), the
question weighs the seconds for sound and for vision (temporal grounding), and the fused vector
times the question picks one of 42 answers.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
from avqa.visualize import font

W, H = 1200, 430
COLOURS = {"audio": (214, 234, 248), "visual": (253, 235, 208), "question": (232, 218, 239),
           "model": (245, 245, 245), "answer": (213, 245, 227)}


def box(d: ImageDraw.ImageDraw, xy: tuple[int, int, int, int], text: str, kind: str) -> None:
    d.rounded_rectangle(xy, radius=10, fill=COLOURS[kind], outline=(90, 90, 90), width=2)
    cx, cy = (xy[0] + xy[2]) // 2, (xy[1] + xy[3]) // 2
    d.multiline_text((cx, cy), text, fill="black", font=font(15), anchor="mm", align="center", spacing=4)


def arrow(d: ImageDraw.ImageDraw, a: tuple[int, int], b: tuple[int, int]) -> None:
    d.line([a, b], fill=(60, 60, 60), width=3)
    (x0, y0), (x1, y1) = a, b
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    tip = [(x1, y1), (x1 - 12 * ux + 6 * uy, y1 - 12 * uy - 6 * ux), (x1 - 12 * ux - 6 * uy, y1 - 12 * uy + 6 * ux)]
    d.polygon(tip, fill=(60, 60, 60))


def draw(path: Path) -> None:
    im = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(im)
    d.text((20, 14), "AVST: audio-visual spatio-temporal grounding for question answering", fill="black", font=font(20))
    box(d, (20, 70, 210, 140), "sound, per second\nVGGish [T, 128]", "audio")
    box(d, (20, 190, 210, 260), "frames, per second\nResNet-18 [T, 512, 14, 14]", "visual")
    box(d, (20, 330, 210, 400), "question\nword ids [14]", "question")
    box(d, (270, 70, 470, 140), "audio encoder\nfc_a1, fc_a2 -> [T, 512]", "audio")
    box(d, (270, 180, 520, 270), "spatial grounding\nsound attends over 14x14\nfc_gl(tanh([avg; grd]))", "model")
    box(d, (270, 330, 470, 400), "question encoder\nLSTM -> q [512]", "question")
    box(d, (580, 120, 820, 230), "temporal grounding\nq attends over the T\nseconds, for sound and\nfor vision", "model")
    box(d, (560, 345, 760, 395), "match head: does this\nsound belong here?", "model")
    box(d, (880, 120, 1060, 230), "fusion\nfc_fusion(tanh([a; v]))\n* q", "model")
    box(d, (1090, 140, 1185, 210), "one of\n42 answers", "answer")
    arrow(d, (210, 105), (270, 105))
    arrow(d, (210, 225), (270, 225))
    arrow(d, (370, 140), (390, 180))
    arrow(d, (210, 365), (270, 365))
    arrow(d, (470, 105), (580, 150))
    arrow(d, (520, 215), (580, 200))
    arrow(d, (470, 345), (640, 230))
    arrow(d, (500, 270), (600, 345))
    arrow(d, (820, 175), (880, 175))
    arrow(d, (470, 335), (960, 230))
    arrow(d, (1060, 175), (1090, 175))
    d.text((790, 340), "training: CE(answer) + 0.5 CE(match);\nthe negative frame comes from another video",
           fill=(70, 70, 70), font=font(14))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)


if __name__ == "__main__":
    draw(ROOT / "figs" / "framework.png")
    print(ROOT / "figs" / "framework.png")
