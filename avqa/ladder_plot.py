"""The ladder's plot: test accuracy by rung, overall and per modality, with the paper's figures beside
where the family has them (python -m avqa.ladder writes it as OUT/ladder.png)."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from .utils import atomic_save

SERIES = [("Overall", "Overall", (20, 20, 20)), ("Audio Avg", "Audio", (31, 119, 180)),
          ("Visual Avg", "Visual", (44, 160, 44)), ("AV Avg", "Audio-Visual", (214, 39, 40))]


class _Canvas:
    """The plot's image and geometry: ``xy`` places a value of rung ``i``; dashed lines and markers."""

    W, H, left, right, top_px, bottom = 980, 600, 70, 200, 70, 60

    def __init__(self, n: int, lo: int, hi: int):
        self.img = Image.new("RGB", (self.W, self.H), "white")
        self.d = ImageDraw.Draw(self.img)
        self.n, self.lo, self.hi = n, lo, hi
        self.pw, self.ph = self.W - self.left - self.right, self.H - self.top_px - self.bottom

    def xy(self, i: int, value: float) -> tuple[float, float]:
        x = self.left + self.pw * (i + 0.5) / self.n
        return x, self.top_px + self.ph * (self.hi - value) / (self.hi - self.lo)

    def dashed(self, p, q, colour, dash=7):
        (x0, y0), (x1, y1) = p, q
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
        k = 0
        while k * dash < length:
            a, b = k * dash / length, min((k + 0.6) * dash / length, 1)
            self.d.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                        fill=colour, width=2)
            k += 1

    def marker(self, p, colour, filled=True, r=5):
        self.d.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=colour if filled else "white", outline=colour,
                       width=2)


def draw_plot(rows: list[dict], path: Path, subtitle: str, title: str, paper: dict | None = None,
              paper_top: dict | None = None, top: str | None = None, top_name: str = "") -> None:
    """Accuracy by rung: ours (solid) overall and per modality; the paper's (dashed, hollow) beside.

    ``paper``: the paper's overall accuracy of each rung, and ``paper_top`` its per-type row of the
    ``top`` rung (the full model, named ``top_name`` in the legend); None draws no paper figures.
    """
    ours = [r["table"][k]["accuracy"] for r in rows for k, _, _ in SERIES if r["table"][k]["accuracy"] is not None]
    theirs = [paper[r["model"]] for r in rows] + [paper_top[k] for k, _, _ in SERIES] if paper else []
    c = _Canvas(len(rows), 10 * int(min(ours + theirs) // 10), 10 * (int(max(ours + theirs) // 10) + 1))
    _axes(c, rows, title, subtitle)
    if paper:
        _paper(c, rows, paper, paper_top, top)
    for k, _, colour in SERIES:
        pts = [c.xy(i, r["table"][k]["accuracy"]) for i, r in enumerate(rows) if r["table"][k]["accuracy"] is not None]
        if len(pts) > 1:
            c.d.line(pts, fill=colour, width=3 if k == "Overall" else 2)
        for p in pts:
            c.marker(p, colour)
    _legend(c, bool(paper), top_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, lambda tmp: c.img.save(tmp, format="PNG"))


def _axes(c: _Canvas, rows: list[dict], title: str, subtitle: str) -> None:
    """The titles, the grid every 5 points, the frame and each rung's label."""
    from .visualize import font
    d, left, top_px, pw, ph = c.d, c.left, c.top_px, c.pw, c.ph
    d.text((left, 12), title, fill="black", font=font(20))
    d.text((left, 40), subtitle, fill=(80, 80, 80), font=font(13))
    for v in range(c.lo, c.hi + 1, 5):
        _, y = c.xy(0, v)
        d.line([(left, y), (left + pw, y)], fill=(225, 225, 225) if v % 10 else (200, 200, 200))
        d.text((left - 8, y), f"{v}", fill="black", font=font(13), anchor="rm")
    d.rectangle([left, top_px, left + pw, top_px + ph], outline="black")
    for i, r in enumerate(rows):
        x, _ = c.xy(i, c.lo)
        d.text((x, top_px + ph + 8), r["label"], fill="black", font=font(15), anchor="ma")
        d.text((x, top_px + ph + 28), r["model"], fill=(90, 90, 90), font=font(12), anchor="ma")
    d.text((18, top_px + ph / 2), "%", fill="black", font=font(15), anchor="mm")


def _paper(c: _Canvas, rows: list[dict], paper: dict, paper_top: dict, top: str | None) -> None:
    """The paper's overall figures (dashed, hollow) and its full model's per modality."""
    paper_pts = [c.xy(i, paper[r["model"]]) for i, r in enumerate(rows)]
    for p, q in zip(paper_pts, paper_pts[1:]):
        c.dashed(p, q, (20, 20, 20))
    for p in paper_pts:
        c.marker(p, (20, 20, 20), filled=False)
    top_rung = next((i for i, r in enumerate(rows) if r["model"] == top), None)
    if top_rung is not None:  # the paper's full model per modality (the paper does not give the lower rungs')
        for j, (k, _, colour) in enumerate(SERIES[1:]):
            x, y = c.xy(top_rung, paper_top[k])
            c.marker((x + 12 * (j - 1), y), colour, filled=False, r=6)


def _legend(c: _Canvas, paper: bool, top_name: str) -> None:
    from .visualize import font
    d = c.d
    lx, ly = c.left + c.pw + 18, c.top_px + 4
    d.text((lx, ly), "this run", fill="black", font=font(14))
    for j, (_, name, colour) in enumerate(SERIES):
        y = ly + 24 + 22 * j
        d.line([(lx, y + 7), (lx + 26, y + 7)], fill=colour, width=3)
        c.marker((lx + 13, y + 7), colour)
        d.text((lx + 34, y), name, fill="black", font=font(13))
    if paper:
        ly += 24 + 22 * len(SERIES) + 16
        d.text((lx, ly), "paper (real data)", fill="black", font=font(14))
        c.dashed((lx, ly + 31), (lx + 26, ly + 31), (20, 20, 20))
        c.marker((lx + 13, ly + 31), (20, 20, 20), filled=False)
        d.text((lx + 34, ly + 24), "Overall", fill="black", font=font(13))
        for j, (_, name, colour) in enumerate(SERIES[1:]):
            y = ly + 46 + 22 * j
            c.marker((lx + 13, y + 7), colour, filled=False, r=6)
            d.text((lx + 34, y), f"{name}, {top_name}", fill="black", font=font(13))
