"""The free-text normaliser: the one of the 42 answers a free-text answer means (docs/evaluation.md)."""
from __future__ import annotations

import re

from ..annotations import ANSWERS, INSTRUMENTS, NUMBERS

FAMILIES: dict[str, frozenset[str]] = {
    "yes/no": frozenset({"yes", "no"}),
    "number": frozenset(NUMBERS),
    "place": frozenset({"left", "right", "middle", "simultaneously"}),
    "scene": frozenset({"indoor", "outdoor"}),
    "instrument": frozenset(INSTRUMENTS),
}
FAMILY_OF = {a: f for f, answers in FAMILIES.items() for a in answers}
assert set(FAMILY_OF) == ANSWERS


def _phrases() -> dict[tuple[str, ...], str]:
    """Word sequences (lower case, split on anything but letters, digits and '+') and their answer."""
    table: dict[str, str] = {}
    for i, w in enumerate(NUMBERS[:11]):
        table[w] = table[str(i)] = w
    for w in ("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
              "nineteen", "twenty", "dozen", "dozens", "more than ten", "more than 10", "over ten", "over 10",
              "above ten", "above 10", "greater than ten", "greater than 10", "10+", "ten plus", "lots of"):
        table[w] = "more than ten"
    table.update({w: "zero" for w in ("none", "nothing", "no one", "nobody", "zero instruments")})
    for w in ("yes", "yeah", "yep", "yup", "true", "correct", "affirmative", "indeed", "of course", "sure"):
        table[w] = "yes"
    for w in ("no", "nope", "not", "false", "incorrect", "isn t", "aren t", "doesn t", "don t", "didn t",
              "wasn t", "weren t", "neither", "never"):
        table[w] = "no"
    for side in ("left", "right"):
        for w in (side, f"{side}most", f"{side}est", f"{side} hand", f"{side} side"):
            table[w] = side
    for w in ("middle", "center", "centre", "central", "in between", "between"):
        table[w] = "middle"
    for w in ("indoor", "indoors", "inside", "in a room", "in the room", "interior"):
        table[w] = "indoor"
    for w in ("outdoor", "outdoors", "outside", "in the open", "open air", "exterior"):
        table[w] = "outdoor"
    for w in ("simultaneously", "simultaneous", "at the same time", "same time", "together", "at once"):
        table[w] = "simultaneously"
    for name in INSTRUMENTS:
        spoken = name.replace("_", " ")
        for w in (spoken, spoken + "s", spoken + "es"):
            table[w] = name
    table.update({"guitar": "acoustic_guitar", "guitars": "acoustic_guitar", "bass": "electric_bass",
                  "bass guitar": "electric_bass", "basses": "electric_bass", "drums": "drum", "drum kit": "drum",
                  "drum set": "drum", "conga": "congas", "conga drums": "congas", "bagpipes": "bagpipe",
                  "sax": "saxophone", "uke": "ukulele", "fiddle": "violin"})
    for w in ("first one", "last one", "other one", "the one", "this one", "that one", "which one", "each one",
              "ones"):
        table[w] = ""  # "one" as a pronoun, not a count
    return {tuple(_words(k)): v for k, v in table.items()}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+|\d+\+?", text.lower().replace("_", " "))


_PHRASES = _phrases()
_LONGEST = max(len(k) for k in _PHRASES)
# cues that only make sense against an expected kind of answer ("no" for a count is zero)
_FAMILY_CUES = {"number": {("no",): "zero", ("not", "any"): "zero", ("a", "single"): "one", ("only", "one"): "one",
                           ("single",): "one"},
                "yes/no": {("that", "is", "right"): "yes", ("that", "s", "right"): "yes", ("right",): ""}}


def _mentions(words: list[str], family: str | None) -> list[str]:
    """Answers named in the text, left to right, each phrase matched as long as it goes."""
    cues = _FAMILY_CUES.get(family, {})
    out, i = [], 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            key = tuple(words[i:i + n])
            hit = cues[key] if key in cues else _PHRASES.get(key)
            if hit is None and n == 1 and words[i].isdigit() and int(words[i]) > 10:
                hit = "more than ten"
            if hit is not None:
                if hit:
                    out.append(hit)
                i += n
                if FAMILY_OF.get(hit) == "place" and i < len(words) and words[i] in ("one", "ones"):
                    i += 1  # "the leftmost one": a pronoun, not a count
                break
        else:
            i += 1
    return out


def normalise(text: str, family: str | None = None) -> str | None:
    """The one of the 42 answers a free-text answer means, or None when it names none (or several).

    Rules, in order:
    1. Lower case, underscores and hyphens read as spaces, punctuation dropped: "Acoustic Guitar.",
       "acoustic-guitar" and "acoustic_guitar" are all acoustic_guitar.
    2. The text is read left to right for answer phrases, the longest phrase first: number words and
       digits (0-10; any number above ten, "more than ten", "over 10", "a dozen" are "more than ten"),
       yes/no and their usual forms ("yeah", "not", "isn't"), left/right/middle ("leftmost", "center"),
       indoor/outdoor ("outside"), simultaneously ("at the same time"), instrument names with or
       without underscores, plural or singular, and a few common names ("guitar" is acoustic_guitar,
       "bass" electric_bass, "sax" saxophone). "One" after a position or in "the one", "this one" is a
       pronoun, not a count: "the leftmost one" is left.
    3. With ``family`` (the kind of answer the question asks for: a key of FAMILIES, which
       avqa.evaluate takes from the question's gold answer), only that family's answers count and the
       first one named wins ("Yes, the piano is louder" to a yes/no question is yes; for a count,
       "no" and "none" are zero). Without it the text must name exactly one answer, or begin with
       yes or no.
    Negation inside a phrase is not understood: "not the left one" is left.
    """
    plain = " ".join(_words(text))
    if plain in ANSWERS or plain.replace(" ", "_") in INSTRUMENTS:  # one of the 42, whatever the question
        return plain if plain in ANSWERS else plain.replace(" ", "_")
    found = _mentions(plain.split(), family)
    if family is not None:
        found = [a for a in found if FAMILY_OF[a] == family]
        return found[0] if found else None
    distinct = list(dict.fromkeys(found))
    if len(distinct) == 1:
        return distinct[0]
    if distinct and distinct[0] in FAMILIES["yes/no"] and plain.split()[0] in ("yes", "no", "yeah", "nope", "yep"):
        return distinct[0]
    return None
