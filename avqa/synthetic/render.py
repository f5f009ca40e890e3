"""Turn a scene into an mp4 (H.264 picture, AAC sound) and measure what the ground truth records.

Pictures: a static indoor or outdoor background with the instrument sprites; an instrument that
is playing bobs up and down a little. Sound: each instrument is a wavetable voice with its class
timbre, playing short repeated notes (rhythmic) or long notes (sustained) in its intervals,
normalised to unit RMS over its playing time and scaled to its level; panned by position; plus an
optional speech-like voiceover. Everything is drawn from the scene's own seed.
"""
from __future__ import annotations

import functools
from pathlib import Path

import av
import numpy as np
from scipy.signal import lfilter

from ..media import sample_frame_numbers
from ..utils import atomic_path
from .instruments import LOOKS, TIMBRES, Timbre
from .scene import Instance, Scene

SPRITE_ASPECT = 64 / 120  # width / height of a sprite box
BOB_PIXELS = 0.012        # how far a playing instrument bobs, fraction of frame height

# ----------------------------------------------------------------------------- pictures


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return ((np.arange(w) + 0.5) / w)[None, :], ((np.arange(h) + 0.5) / h)[:, None]


def _polygon_mask(uu: np.ndarray, vv: np.ndarray, pts) -> np.ndarray:
    inside = np.zeros(np.broadcast_shapes(uu.shape, vv.shape), bool)
    for (u0, v0), (u1, v1) in zip(pts, pts[1:] + pts[:1]):
        if v0 == v1:
            continue
        crosses = (v0 > vv) != (v1 > vv)
        inside ^= crosses & (uu < (u1 - u0) * (vv - v0) / (v1 - v0) + u0)
    return inside


def _paint(canvas: np.ndarray, alpha: np.ndarray, prims) -> None:
    h, w = canvas.shape[:2]
    uu, vv = _grid(h, w)
    for p in prims:
        kind = p[0]
        if kind == "ellipse":
            _, cu, cv, ru, rv, col = p
            m = ((uu - cu) / ru) ** 2 + ((vv - cv) / rv) ** 2 <= 1
        elif kind == "ring":
            _, cu, cv, ru, rv, wd, col = p
            r = ((uu - cu) / ru) ** 2 + ((vv - cv) / rv) ** 2
            ri = ((uu - cu) / max(ru - wd, 1e-3)) ** 2 + ((vv - cv) / max(rv - wd * w / h, 1e-3)) ** 2
            m = (r <= 1) & (ri > 1)
        elif kind == "rect":
            _, u0, v0, u1, v1, col = p
            m = (uu >= u0) & (uu <= u1) & (vv >= v0) & (vv <= v1)
        elif kind == "poly":
            _, pts, col = p
            m = _polygon_mask(uu, vv, list(pts))
        elif kind == "line":
            _, u0, v0, u1, v1, wd, col = p
            px, py = uu * w, vv * h
            ax, ay, bx, by = u0 * w, v0 * h, u1 * w, v1 * h
            dx, dy = bx - ax, by - ay
            t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
            m = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2 <= (wd * w / 2) ** 2
        elif kind == "stripes":
            _, u0, v0, u1, v1, n, vertical, ca, cb = p
            m = (uu >= u0) & (uu <= u1) & (vv >= v0) & (vv <= v1)
            pos = (uu - u0) / (u1 - u0) if vertical else (vv - v0) / (v1 - v0)
            band = (np.floor(pos * n).astype(int) % 2 == 0)
            m = np.broadcast_to(m, canvas.shape[:2])
            band = np.broadcast_to(band, canvas.shape[:2])
            canvas[m & band] = ca
            canvas[m & ~band] = cb
            alpha |= m
            continue
        else:  # pragma: no cover - a typo in LOOKS
            raise ValueError(f"unknown primitive {kind}")
        m = np.broadcast_to(m, canvas.shape[:2])
        canvas[m] = col
        alpha |= m


@functools.lru_cache(maxsize=256)
def sprite(cls: str, height: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB sprite and its mask for a class at a pixel height (cached per process)."""
    rel, prims = LOOKS[cls]
    h = max(8, int(round(height * rel)))
    w = max(4, int(round(h * SPRITE_ASPECT)))
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    _paint(rgb, mask, prims)
    # simple shading: darker towards the bottom-right edge reads as volume
    shade = 1.0 - 0.18 * _grid(h, w)[0] - 0.12 * _grid(h, w)[1]
    rgb = (rgb * shade[..., None]).astype(np.uint8)
    return rgb, mask


@functools.lru_cache(maxsize=256)
def _sprite_mask3(cls: str, height: int) -> np.ndarray:
    """A sprite's mask repeated over the three colour channels: pasting with it (np.copyto's ``where``)
    is several times faster than boolean indexing, the frames' slowest step, with the same pixels."""
    return np.repeat(sprite(cls, height)[1][..., None], 3, axis=2)


def background(scene: Scene, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(scene.seed)
    uu, vv = _grid(height, width)
    img = np.zeros((height, width, 3), np.float32)
    if scene.background == "indoor":
        walls = [(196, 186, 168), (176, 182, 190), (190, 172, 160), (160, 146, 128), (205, 202, 196)]
        wall = np.array(walls[rng.integers(len(walls))], np.float32) + rng.uniform(-10, 10, 3)
        horizon = rng.uniform(0.55, 0.68)
        img[:] = wall
        img *= (0.92 + 0.08 * (np.floor(uu * rng.integers(6, 14)) % 2))[..., None]  # panelling
        floor = np.array([(140, 95, 55), (120, 80, 50), (165, 120, 75), (110, 110, 115)][rng.integers(4)], np.float32)
        planks = 0.85 + 0.15 * (np.floor(vv * rng.integers(18, 30)) % 2)
        fl = (vv >= horizon) & np.ones_like(uu, bool)
        img[fl] = (floor * planks[..., None] * np.ones_like(uu)[..., None])[fl]
        img[(vv >= horizon - 0.02) & (vv < horizon) & np.ones_like(uu, bool)] = (60, 45, 35)
        # a window or a picture on the wall
        x0, y0 = rng.uniform(0.05, 0.7), rng.uniform(0.08, 0.2)
        frame = (uu >= x0) & (uu <= x0 + 0.22) & (vv >= y0) & (vv <= y0 + 0.22)
        inner = (uu >= x0 + 0.02) & (uu <= x0 + 0.20) & (vv >= y0 + 0.02) & (vv <= y0 + 0.20)
        img[frame] = (70, 50, 35)
        img[inner] = np.array([(170, 200, 230), (120, 150, 90), (200, 120, 90)][rng.integers(3)], np.float32)
    else:
        horizon = rng.uniform(0.5, 0.62)
        top, low = np.array((95, 160, 230), np.float32), np.array((205, 228, 245), np.float32)
        t = np.clip(vv / horizon, 0, 1)[..., None]
        img[:] = top * (1 - t) + low * t
        if rng.random() < 0.6:  # sun
            cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.25)
            img[((uu - cx) * width / height) ** 2 + (vv - cy) ** 2 <= 0.06 ** 2] = (250, 235, 150)
        hills = horizon - 0.08 * (1 + np.sin(uu * rng.uniform(4, 9) + rng.uniform(0, 6))) / 2
        img[(vv >= hills) & (vv < horizon)] = np.array((90, 140, 120), np.float32) + rng.uniform(-15, 15, 3)
        grass = np.array((70, 150, 60), np.float32) + rng.uniform(-20, 20, 3)
        ground = (vv >= horizon) & np.ones_like(uu, bool)
        img[ground] = grass
        for _ in range(int(rng.integers(0, 4))):  # trees
            tx = rng.uniform(0.02, 0.98)
            trunk = (np.abs(uu - tx) < 0.008) & (vv > horizon - 0.12) & (vv < horizon + 0.02)
            img[trunk] = (90, 60, 30)
            img[((uu - tx) * width / height) ** 2 + (vv - horizon + 0.14) ** 2 <= 0.05 ** 2] = (40, 110, 45)
    img += rng.normal(0, 4, img.shape).astype(np.float32)  # sensor noise, fixed per clip
    return np.clip(img, 0, 255).astype(np.uint8)


def _placement(inst: Instance, width: int, height: int, t: float) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Top-left corner and sprite of an instrument at time t (it bobs while playing)."""
    rgb, mask = sprite(inst.cls, _sprite_height(inst, height))
    h, w = mask.shape
    bob = 0
    if inst.playing_at(t):
        phase = (inst.seed % 1000) / 1000 * np.pi
        bob = int(round(BOB_PIXELS * height * abs(np.sin(2 * np.pi * 2.0 * t + phase))))
    x0 = int(round(inst.center_x * width - w / 2))
    y0 = int(round(inst.base_y * height - h)) - bob
    return x0, y0, rgb, mask


def _sprite_height(inst: Instance, height: int) -> int:
    return int(round(inst.scale * height))


def _paste(frame: np.ndarray, x0: int, y0: int, rgb: np.ndarray, mask3: np.ndarray) -> None:
    """Copy the sprite's pixels under ``mask3`` (its mask over the three channels) into the frame, clipped at the edges."""
    H, W = frame.shape[:2]
    h, w = mask3.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    inside = np.s_[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    np.copyto(frame[fy0:fy1, fx0:fx1], rgb[inside], where=mask3[inside])


def _tight_box(x0: int, y0: int, mask: np.ndarray, width: int, height: int) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [max(0, x0 + int(xs.min())), max(0, y0 + int(ys.min())),
            min(width, x0 + int(xs.max()) + 1), min(height, y0 + int(ys.max()) + 1)]


def compose_frame(scene: Scene, bg: np.ndarray, t: float, with_boxes: bool = True) -> tuple[np.ndarray, list]:
    """The picture of a scene at time t over its background, and each instrument's box (if asked)."""
    height, width = bg.shape[:2]
    frame = bg.copy()
    boxes = []
    for inst in scene.instances:
        x0, y0, rgb, mask = _placement(inst, width, height, t)
        _paste(frame, x0, y0, rgb, _sprite_mask3(inst.cls, _sprite_height(inst, height)))
        if with_boxes:
            boxes.append(_tight_box(x0, y0, mask, width, height))
    return frame, boxes


# ----------------------------------------------------------------------------- sound

TABLE = 2048


@functools.lru_cache(maxsize=64)
def _wavetable(cls: str) -> np.ndarray:
    x = np.arange(TABLE) / TABLE
    tab = sum(a * np.sin(2 * np.pi * (k + 1) * x) for k, a in enumerate(TIMBRES[cls].harmonics))
    return (tab / np.abs(tab).max()).astype(np.float32)


def _notes(rng: np.random.Generator, timbre: Timbre, style: str, start: float, end: float):
    """(onset, length, midi) of the notes played in [start, end)."""
    notes = []
    t = start
    if style == "rhythmic":
        beat = rng.uniform(0.2, 0.32)
        while t < end - 0.05:
            notes.append((t, min(beat * 0.9, end - t)))
            t += beat
    else:
        while t < end - 0.05:
            length = min(rng.uniform(0.8, 1.6), end - t)
            notes.append((t, length))
            t += length
    steps = np.array([-2, 0, 2])  # a melody within a whole tone of the class register
    return [(onset, length, timbre.center + int(steps[rng.integers(len(steps))])) for onset, length in notes]


def _envelope(kind: str, style: str, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    if kind in ("pluck", "key", "strike"):
        tau = {"pluck": 0.25, "key": 0.45, "strike": 0.09}[kind]
        if style == "rhythmic":
            tau *= 0.4
        env = np.exp(-t / tau) * np.minimum(1, t / 0.003)
    else:
        attack = 0.015 if style == "rhythmic" else 0.07
        env = np.minimum(1, t / attack)
    release = min(n, int(0.03 * sr))
    if release > 0:
        env[-release:] *= np.linspace(1, 0, release)
    return env.astype(np.float32)


def instrument_sound(inst: Instance, seconds: int, sr: int) -> np.ndarray:
    """Mono signal of one instance, unit RMS over its playing time, scaled to its gain."""
    timbre = TIMBRES[inst.cls]
    rng = np.random.default_rng(inst.seed)
    total = seconds * sr
    out = np.zeros(total, np.float32)
    table = _wavetable(inst.cls)
    for s, e in inst.intervals:
        for onset, length, midi in _notes(rng, timbre, inst.style, s, e):
            i0, n = int(onset * sr), int(length * sr)
            n = min(n, total - i0)
            if n <= 8:
                continue
            t = np.arange(n, dtype=np.float32) / sr
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            if timbre.kind == "strike":
                freq = f0 * (1 + 0.6 * np.exp(-t / 0.02))  # a membrane's pitch drop
            else:
                freq = f0 * 2 ** (timbre.vibrato / 12 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1, t / 0.3))
            phase = np.cumsum(freq / sr)
            tone = table[(phase * TABLE).astype(np.int64) % TABLE]
            env = _envelope(timbre.kind, inst.style, n, sr)
            if timbre.noise:
                noise = lfilter([0.3], [1, -0.7], rng.standard_normal(n)).astype(np.float32)
                tone = tone * (1 - timbre.noise) + timbre.noise * 3 * noise
            out[i0:i0 + n] += tone * env
    mask = np.zeros(total, bool)
    for s, e in inst.intervals:
        mask[s * sr:e * sr] = True
    if mask.any():
        rms = float(np.sqrt(np.mean(out[mask] ** 2)))
        if rms > 0:
            out *= 10 ** (inst.gain_db / 20) / rms
    return out


def voice_sound(rng: np.random.Generator, span: list[float], seconds: int, sr: int) -> np.ndarray:
    """A speaking voice: glottal pulses through moving formant resonators, syllable by syllable."""
    total = seconds * sr
    out = np.zeros(total, np.float32)
    i0, i1 = int(span[0] * sr), min(total, int(span[1] * sr))
    n = i1 - i0
    if n <= 0:
        return out
    t = np.arange(n) / sr
    f0 = rng.uniform(110, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t))
    phase = np.cumsum(f0 / sr)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    src = lfilter([1], [1, -0.95], pulses) + 0.05 * rng.standard_normal(n)
    vowels = [(700, 1200), (300, 2300), (500, 1800), (400, 800), (600, 1000)]
    syl = int(sr * rng.uniform(0.18, 0.26))
    voice = np.zeros(n)
    for k in range(0, n, syl):
        seg = src[k:k + syl]
        y = np.zeros_like(seg)
        for fc in vowels[rng.integers(len(vowels))]:
            r = 0.97
            a = [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
            y += lfilter([1 - r], a, seg)
        env = np.sin(np.linspace(0, np.pi, len(seg))) ** 0.7
        if rng.random() < 0.15:
            env *= 0.1  # a pause between words
        voice[k:k + syl] = y * env
    voice /= np.sqrt(np.mean(voice ** 2)) + 1e-9
    out[i0:i1] = (voice * 10 ** (-6 / 20)).astype(np.float32)
    return out


def scene_sound(scene: Scene, sr: int) -> tuple[np.ndarray, dict[int, float]]:
    """Stereo sound [2, samples] of a scene's own players and voice; level of each player in dBFS."""
    L = scene.seconds
    mix = np.zeros((2, L * sr), np.float32)
    tracks = {}
    for k, inst in enumerate(scene.instances):
        if not inst.plays:
            continue
        mono = instrument_sound(inst, L, sr)
        theta = (0.2 + 0.6 * inst.center_x) * np.pi / 2
        mix[0] += np.cos(theta) * mono
        mix[1] += np.sin(theta) * mono
        tracks[k] = mono
    if scene.voiceover:
        v = voice_sound(np.random.default_rng(scene.seed + 1), scene.voiceover, L, sr)
        mix += v[None] * 0.7
    rng = np.random.default_rng(scene.seed + 2)
    mix += 10 ** (-60 / 20) * rng.standard_normal(mix.shape).astype(np.float32)  # room tone
    gain = 0.85 / max(float(np.abs(mix).max()), 1e-6)
    mix *= gain
    levels = {}
    for k, mono in tracks.items():
        m = np.zeros(L * sr, bool)
        for s, e in scene.instances[k].intervals:
            m[s * sr:e * sr] = True
        levels[k] = round(float(20 * np.log10(np.sqrt(np.mean((mono[m] * gain) ** 2)) + 1e-12)), 2)
    return mix, levels


# ----------------------------------------------------------------------------- the clip


# One thread, and no macroblock tree: with mbtree on, libx264 (PyAV 18's build) encoded some clips
# differently from run to run given the same frames (one clip in 480 per generated set; 2-3
# distinct files in 40 encodes of clip 90000040; none in 200 with mbtree=0).
X264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
# FFmpeg's fast AAC coder: about half the CPU of its default (twoloop) search, the largest single cost of
# a clip with that coder, for sound the extractors resample to 16 kHz anyway
AAC_OPTIONS = {"aac_coder": "fast"}


def render_clip(scene: Scene, path: Path, width: int, height: int, fps: float, sample_rate: int) -> dict:
    """Write the scene's mp4 atomically and return what the ground truth needs from rendering."""
    n_frames = int(round(scene.seconds * fps))
    seconds_frames = sample_frame_numbers(n_frames, fps, scene.seconds)
    want = {n - 1: s for s, n in enumerate(seconds_frames)}  # 0-based frame -> second
    boxes = [[None] * scene.seconds for _ in scene.instances]
    bg = background(scene, width, height)
    sound_scene = scene.donor if scene.donor is not None else scene
    mix, levels = scene_sound(sound_scene, sample_rate)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps_fraction(fps))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = X264_OPTIONS
        aus = out.add_stream("aac", rate=sample_rate, options=AAC_OPTIONS)
        aus.layout = "stereo"
        for k in range(n_frames):
            frame, frame_boxes = compose_frame(scene, bg, k / fps, with_boxes=k in want)
            for i, box in enumerate(frame_boxes):
                boxes[i][want[k]] = box
            for p in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(mix), format="fltp", layout="stereo")
        af.sample_rate = sample_rate
        for p in aus.encode(af):
            out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return {"frames": n_frames, "boxes": boxes, "levels_db": levels}


def fps_fraction(fps: float):
    from fractions import Fraction
    return Fraction(fps).limit_denominator(1001)
