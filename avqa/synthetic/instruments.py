"""The 22 MUSIC-AVQA instrument classes as the synthetic set draws and plays them.

Each class has a look (a sprite made of a few flat-coloured primitives, in coordinates relative
to its box) and a timbre (register, harmonic profile, envelope kind). Looks and timbres are
deliberately distinct from class to class so that a model can tell the classes apart by eye and
by ear, while loudness, rhythm, timing and position are drawn per instance, independent of the
class, so that no answer follows from the class name in the question alone.
"""
from __future__ import annotations

from dataclasses import dataclass


from ..annotations import INSTRUMENTS

Color = tuple[int, int, int]

BLACK: Color = (18, 18, 20)
WHITE: Color = (240, 240, 235)
SILVER: Color = (190, 195, 200)
GOLD: Color = (222, 170, 40)
BRASS: Color = (215, 215, 60)
DARK_WOOD: Color = (92, 58, 30)

# Primitives, all coordinates relative to the sprite box (u to the right, v downwards, 0..1):
#   ("ellipse", cu, cv, ru, rv, color)          ("rect", u0, v0, u1, v1, color)
#   ("poly", ((u, v), ...), color)              ("line", u0, v0, u1, v1, width, color)
#   ("ring", cu, cv, ru, rv, width, color)      ("stripes", u0, v0, u1, v1, n, vertical, color_a, color_b)
LOOKS: dict[str, tuple[float, list[tuple]]] = {
    # class: (relative size, primitives drawn in order)
    "accordion": (0.9, [
        ("rect", 0.05, 0.35, 0.95, 0.78, (200, 30, 40)),
        ("stripes", 0.22, 0.35, 0.78, 0.78, 9, True, (210, 30, 40), WHITE),
        ("stripes", 0.05, 0.35, 0.22, 0.78, 7, False, WHITE, BLACK),
        ("rect", 0.78, 0.35, 0.95, 0.78, (120, 15, 20)),
        ("line", 0.3, 0.2, 0.3, 0.35, 0.06, BLACK), ("line", 0.7, 0.2, 0.7, 0.35, 0.06, BLACK),
    ]),
    "acoustic_guitar": (1.0, [
        ("rect", 0.45, 0.04, 0.55, 0.5, DARK_WOOD),
        ("rect", 0.40, 0.0, 0.60, 0.07, (60, 35, 15)),
        ("ellipse", 0.5, 0.52, 0.30, 0.15, (232, 192, 140)),
        ("ellipse", 0.5, 0.76, 0.42, 0.22, (232, 192, 140)),
        ("ellipse", 0.5, 0.6, 0.10, 0.055, (40, 25, 10)),
        ("rect", 0.35, 0.82, 0.65, 0.85, (60, 35, 15)),
    ]),
    "bagpipe": (1.0, [
        ("line", 0.3, 0.05, 0.35, 0.5, 0.07, BLACK), ("line", 0.5, 0.0, 0.5, 0.5, 0.07, BLACK),
        ("line", 0.7, 0.08, 0.62, 0.5, 0.07, BLACK),
        ("ellipse", 0.3, 0.05, 0.06, 0.03, WHITE), ("ellipse", 0.5, 0.0, 0.06, 0.03, WHITE),
        ("ellipse", 0.5, 0.62, 0.42, 0.2, (20, 110, 50)),
        ("stripes", 0.2, 0.5, 0.8, 0.74, 6, True, (20, 110, 50), (190, 30, 40)),
        ("line", 0.5, 0.75, 0.5, 1.0, 0.07, BLACK),
    ]),
    "banjo": (1.0, [
        ("rect", 0.46, 0.0, 0.54, 0.5, (50, 30, 20)),
        ("ellipse", 0.5, 0.72, 0.42, 0.24, SILVER),
        ("ellipse", 0.5, 0.72, 0.36, 0.20, (245, 240, 220)),
        ("line", 0.5, 0.5, 0.5, 0.92, 0.03, (60, 60, 60)),
    ]),
    "bassoon": (1.0, [
        ("rect", 0.36, 0.08, 0.64, 0.98, (115, 20, 65)),
        ("stripes", 0.36, 0.3, 0.64, 0.8, 5, False, (115, 20, 65), SILVER),
        ("line", 0.5, 0.08, 0.2, 0.0, 0.05, SILVER),
        ("rect", 0.36, 0.0, 0.64, 0.08, (200, 190, 180)),
    ]),
    "cello": (1.15, [
        ("rect", 0.46, 0.0, 0.54, 0.42, BLACK),
        ("ellipse", 0.5, 0.42, 0.32, 0.16, (195, 100, 25)),
        ("ellipse", 0.5, 0.72, 0.42, 0.22, (195, 100, 25)),
        ("rect", 0.44, 0.3, 0.56, 0.7, (30, 20, 15)),
        ("line", 0.32, 0.55, 0.34, 0.68, 0.03, BLACK), ("line", 0.68, 0.55, 0.66, 0.68, 0.03, BLACK),
        ("line", 0.5, 0.92, 0.5, 1.0, 0.04, SILVER),
    ]),
    "clarinet": (0.85, [
        ("rect", 0.42, 0.02, 0.58, 0.85, (25, 25, 28)),
        ("stripes", 0.42, 0.15, 0.58, 0.8, 8, False, (25, 25, 28), SILVER),
        ("ellipse", 0.5, 0.9, 0.2, 0.08, (25, 25, 28)),
        ("rect", 0.46, 0.0, 0.54, 0.04, WHITE),
    ]),
    "congas": (1.0, [
        ("rect", 0.04, 0.25, 0.46, 0.98, (250, 135, 25)),
        ("rect", 0.54, 0.35, 0.96, 0.98, (240, 120, 20)),
        ("stripes", 0.04, 0.3, 0.46, 0.98, 6, False, (250, 135, 25), (90, 40, 10)),
        ("ellipse", 0.25, 0.25, 0.21, 0.05, (235, 215, 170)),
        ("ellipse", 0.75, 0.35, 0.21, 0.05, (235, 215, 170)),
    ]),
    "drum": (1.0, [
        ("rect", 0.04, 0.5, 0.96, 0.9, (30, 60, 200)),
        ("stripes", 0.04, 0.5, 0.96, 0.9, 8, True, (30, 60, 200), (20, 40, 150)),
        ("ellipse", 0.5, 0.5, 0.46, 0.09, WHITE),
        ("ring", 0.5, 0.5, 0.46, 0.09, 0.03, SILVER),
        ("line", 0.2, 0.2, 0.45, 0.45, 0.04, (210, 180, 120)), ("line", 0.8, 0.2, 0.55, 0.45, 0.04, (210, 180, 120)),
    ]),
    "electric_bass": (1.05, [
        ("rect", 0.45, 0.0, 0.55, 0.58, (235, 205, 150)),
        ("rect", 0.42, 0.0, 0.58, 0.06, BLACK),
        ("poly", ((0.15, 0.55), (0.4, 0.5), (0.6, 0.5), (0.9, 0.45), (0.85, 0.7), (0.7, 0.95),
                  (0.3, 0.95), (0.1, 0.78)), (40, 205, 230)),
        ("rect", 0.38, 0.66, 0.62, 0.7, BLACK), ("rect", 0.38, 0.76, 0.62, 0.8, BLACK),
    ]),
    "erhu": (1.0, [
        ("line", 0.5, 0.0, 0.5, 0.82, 0.05, (70, 35, 20)),
        ("poly", ((0.22, 0.7), (0.78, 0.7), (0.88, 0.84), (0.78, 0.98), (0.22, 0.98), (0.12, 0.84)),
         (90, 40, 120)),
        ("ellipse", 0.5, 0.84, 0.24, 0.08, (140, 200, 120)),
        ("line", 0.05, 0.55, 0.95, 0.75, 0.025, (245, 235, 200)),
        ("line", 0.05, 0.55, 0.15, 0.5, 0.04, (80, 50, 20)),
    ]),
    "flute": (0.85, [
        ("line", 0.02, 0.25, 0.98, 0.6, 0.2, SILVER),
        ("line", 0.15, 0.3, 0.85, 0.55, 0.04, (120, 125, 130)),
        ("ellipse", 0.2, 0.32, 0.05, 0.02, BLACK),
    ]),
    "guzheng": (1.1, [
        ("poly", ((0.0, 0.05), (0.35, 0.0), (1.0, 0.85), (0.7, 1.0)), (25, 120, 125)),
        ("line", 0.08, 0.06, 0.85, 0.92, 0.015, WHITE), ("line", 0.14, 0.04, 0.9, 0.9, 0.015, WHITE),
        ("line", 0.2, 0.03, 0.94, 0.88, 0.015, WHITE), ("line", 0.04, 0.08, 0.8, 0.95, 0.015, WHITE),
        ("line", 0.3, 0.3, 0.5, 0.2, 0.03, (250, 220, 120)), ("line", 0.5, 0.6, 0.7, 0.5, 0.03, (250, 220, 120)),
    ]),
    "piano": (1.2, [
        ("rect", 0.0, 0.2, 1.0, 0.62, (12, 12, 14)),
        ("stripes", 0.0, 0.62, 1.0, 0.76, 10, True, WHITE, (200, 200, 200)),
        ("stripes", 0.05, 0.62, 0.95, 0.69, 7, True, BLACK, WHITE),
        ("rect", 0.0, 0.76, 1.0, 0.82, (12, 12, 14)),
        ("rect", 0.05, 0.82, 0.12, 1.0, (12, 12, 14)), ("rect", 0.88, 0.82, 0.95, 1.0, (12, 12, 14)),
    ]),
    "pipa": (0.95, [
        ("rect", 0.44, 0.0, 0.56, 0.35, (110, 60, 30)),
        ("poly", ((0.4, 0.3), (0.6, 0.3), (0.82, 0.65), (0.5, 0.95), (0.18, 0.65)), (248, 220, 80)),
        ("ellipse", 0.5, 0.72, 0.32, 0.22, (248, 220, 80)),
        ("stripes", 0.42, 0.08, 0.58, 0.32, 6, False, (110, 60, 30), (245, 235, 210)),
        ("rect", 0.36, 0.8, 0.64, 0.83, (110, 60, 30)),
    ]),
    "saxophone": (1.0, [
        ("line", 0.45, 0.02, 0.3, 0.0, 0.06, BLACK),
        ("rect", 0.4, 0.02, 0.56, 0.78, GOLD),
        ("ring", 0.6, 0.78, 0.2, 0.12, 0.14, GOLD),
        ("ellipse", 0.74, 0.6, 0.18, 0.09, (250, 210, 90)),
        ("stripes", 0.4, 0.2, 0.56, 0.7, 6, False, GOLD, (150, 110, 20)),
    ]),
    "suona": (0.9, [
        ("poly", ((0.42, 0.0), (0.58, 0.0), (0.68, 0.72), (0.32, 0.72)), (175, 20, 35)),
        ("stripes", 0.4, 0.1, 0.6, 0.65, 5, False, (175, 20, 35), (240, 200, 90)),
        ("poly", ((0.38, 0.7), (0.62, 0.7), (0.95, 0.98), (0.05, 0.98)), BRASS),
    ]),
    "trumpet": (0.9, [
        ("rect", 0.05, 0.42, 0.8, 0.5, BRASS),
        ("rect", 0.25, 0.55, 0.7, 0.62, BRASS),
        ("rect", 0.35, 0.3, 0.4, 0.62, (200, 160, 50)), ("rect", 0.45, 0.3, 0.5, 0.62, (200, 160, 50)),
        ("rect", 0.55, 0.3, 0.6, 0.62, (200, 160, 50)),
        ("poly", ((0.75, 0.44), (1.0, 0.3), (1.0, 0.7), (0.75, 0.52)), BRASS),
        ("rect", 0.0, 0.43, 0.06, 0.49, SILVER),
    ]),
    "tuba": (1.15, [
        ("ring", 0.5, 0.62, 0.38, 0.26, 0.2, (175, 115, 20)),
        ("ellipse", 0.55, 0.16, 0.36, 0.12, (200, 140, 30)),
        ("rect", 0.42, 0.16, 0.66, 0.45, (175, 115, 20)),
        ("stripes", 0.42, 0.45, 0.66, 0.6, 4, True, (175, 115, 20), SILVER),
        ("ellipse", 0.55, 0.16, 0.26, 0.07, (90, 60, 10)),
    ]),
    "ukulele": (0.75, [
        ("rect", 0.45, 0.0, 0.55, 0.5, (80, 45, 20)),
        ("ellipse", 0.5, 0.55, 0.30, 0.15, (250, 130, 175)),
        ("ellipse", 0.5, 0.78, 0.40, 0.2, (250, 130, 175)),
        ("ellipse", 0.5, 0.63, 0.09, 0.05, (50, 25, 10)),
    ]),
    "violin": (0.8, [
        ("rect", 0.46, 0.0, 0.54, 0.45, BLACK),
        ("ellipse", 0.5, 0.48, 0.30, 0.15, (150, 28, 18)),
        ("ellipse", 0.5, 0.75, 0.38, 0.2, (150, 28, 18)),
        ("rect", 0.44, 0.35, 0.56, 0.75, (25, 15, 10)),
        ("line", 0.0, 0.3, 1.0, 0.62, 0.02, (230, 220, 190)),
    ]),
    "xylophone": (1.05, [
        ("rect", 0.0, 0.55, 1.0, 0.62, DARK_WOOD), ("rect", 0.0, 0.85, 1.0, 0.9, DARK_WOOD),
        ("rect", 0.02, 0.35, 0.14, 0.95, (230, 40, 40)), ("rect", 0.16, 0.4, 0.28, 0.93, (240, 140, 30)),
        ("rect", 0.30, 0.45, 0.42, 0.91, (240, 220, 40)), ("rect", 0.44, 0.5, 0.56, 0.89, (60, 190, 60)),
        ("rect", 0.58, 0.55, 0.70, 0.87, (40, 160, 230)), ("rect", 0.72, 0.6, 0.84, 0.85, (70, 70, 210)),
        ("rect", 0.86, 0.64, 0.98, 0.83, (160, 60, 200)),
        ("line", 0.3, 0.05, 0.45, 0.4, 0.03, WHITE), ("line", 0.7, 0.05, 0.55, 0.4, 0.03, WHITE),
    ]),
}


@dataclass(frozen=True)
class Timbre:
    """How a class sounds: its register (a MIDI note it plays around), harmonic amplitudes,
    envelope kind, breath/bow noise and vibrato depth (semitones).

    Registers are spread three semitones apart from the bass (electric bass, tuba) to the top
    (flute, xylophone), so that each class is recognisable by ear from one second of sound.
    """

    center: int
    harmonics: tuple[float, ...]
    kind: str  # pluck | bow | blow | reed | brass | strike | key
    noise: float = 0.0
    vibrato: float = 0.0


TIMBRES: dict[str, Timbre] = {
    "electric_bass": Timbre(31, (1, .6, .3, .15), "pluck"),
    "tuba": Timbre(34, (1, .7, .4, .2), "brass", 0.01),
    "drum": Timbre(37, (1, .2), "strike", 0.8),
    "cello": Timbre(40, tuple(1 / k for k in range(1, 11)), "bow", 0.01, 0.15),
    "bassoon": Timbre(43, (.6, 1, .7, .5, .3, .2), "reed", 0.01),
    "congas": Timbre(46, (1, .3, .1), "strike", 0.3),
    "acoustic_guitar": Timbre(49, (1, .5, .35, .2, .12, .08), "pluck"),
    "clarinet": Timbre(52, (1, 0, .6, 0, .4, 0, .25, 0, .15), "reed", 0.01),
    "piano": Timbre(55, (1, .45, .25, .15, .1, .05), "key"),
    "accordion": Timbre(58, (1, .8, .6, .5, .4, .3, .25, .2), "reed", 0.01),
    "saxophone": Timbre(61, (1, .9, .6, .5, .4, .3, .2, .15), "reed", 0.02, 0.1),
    "banjo": Timbre(64, (1, .7, .6, .5, .4, .3, .2), "pluck"),
    "trumpet": Timbre(67, (1, .9, .8, .7, .5, .35, .25), "brass", 0.01),
    "guzheng": Timbre(70, (1, .5, .4, .3, .2), "pluck"),
    "erhu": Timbre(73, (1, .6, .5, .35, .25, .2, .15), "bow", 0.02, 0.5),
    "ukulele": Timbre(76, (1, .4, .2, .1), "pluck"),
    "violin": Timbre(79, tuple(1 / k for k in range(1, 11)), "bow", 0.01, 0.25),
    "bagpipe": Timbre(82, (1, .9, .8, .7, .5, .4, .3), "reed", 0.02),
    "pipa": Timbre(85, (1, .6, .4, .3, .2), "pluck"),
    "suona": Timbre(88, (1, 1, .9, .8, .7, .6, .5, .4), "reed", 0.02, 0.2),
    "flute": Timbre(91, (1, .25, .08), "blow", 0.08, 0.1),
    "xylophone": Timbre(94, (1, 0, 0, .35, 0, 0, 0, 0, .1), "strike", 0.02),
}

assert set(LOOKS) == set(INSTRUMENTS) == set(TIMBRES)
