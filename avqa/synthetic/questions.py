"""The 33 MUSIC-AVQA question templates (avqa.templates), each answered from a synthetic scene.

Every template returns, for a scene, either nothing (the scene cannot answer it without
ambiguity) or a question: its fillers and its answer. Fillers are drawn so that yes and no (and
the other answers) come up about equally often; a final per-split pass (``balance``) caps the
most common answer of every template so that the question text alone does not give it away
(avqa.synthetic.balance).

Meanings we chose where the template text leaves room (documented in data/README.md):
- 'first'/'last' sounding instrument: the one whose playing starts earliest/latest, asked only
  when it starts at least 2 s apart from every other; '<TH>' counts entrances the same way.
- 'lowest' means quietest. Loudness comparisons are asked only for levels >= 6 dB apart.
- 'did not sound from beginning to end': instruments that are silent for the whole clip.
- 'more rhythmic': plays short repeated notes where the other holds long notes.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Callable

import numpy as np

from ..annotations import INSTRUMENTS, NUMBERS
from ..templates import TEMPLATES
from .scene import Instance, Scene

Question = tuple[list[str], str]  # (fillers, answer)
_ANSWERERS: dict[str, Callable[[Scene, np.random.Generator], Question | None]] = {}  # question_content -> its answerer
MIN_GAP_S = 2      # seconds between entrances for first/last questions
MIN_LOUD_DB = 6.0  # level difference for louder/loudest questions


def answers(text: str):
    """The function below answers the template ``text`` (one of avqa.templates.TEMPLATES) from a scene."""
    if text not in {t for t, _, _ in TEMPLATES}:
        raise ValueError(f"{text!r} is not one of the templates of avqa.templates")

    def register(fn):
        _ANSWERERS[text] = fn
        return fn
    return register


def yn(b: bool) -> str:
    return "yes" if b else "no"


def count_word(n: int) -> str:
    return NUMBERS[n] if n <= 10 else "more than ten"


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _unique_classes(insts: list[Instance]) -> list[Instance]:
    c = Counter(i.cls for i in insts)
    return [i for i in insts if c[i.cls] == 1]


def _yes_or_no_pair(rng, present: list[str], absent: list[str]) -> Question | None:
    """Two class names joined by 'and': yes when both are present."""
    want_yes = rng.random() < 0.5
    if want_yes and len(present) >= 2:
        a, b = rng.choice(present, 2, replace=False)
        return [str(a), str(b)], "yes"
    if absent and present:
        a, b = _pick(rng, present), _pick(rng, absent)
        pair = [a, b] if rng.random() < 0.5 else [b, a]
        return pair, "no"
    if len(absent) >= 2 and not present:
        a, b = rng.choice(absent, 2, replace=False)
        return [str(a), str(b)], "no"
    return None


def _yes_or_no_single(rng, present: list[str], absent: list[str]) -> Question | None:
    if present and (rng.random() < 0.5 or not absent):
        return [_pick(rng, present)], "yes"
    return ([_pick(rng, absent)], "no") if absent else None


def _entrance(insts: list[Instance], which: str) -> Instance | None:
    """The first or last instrument to start playing, if it is clearly apart from the others."""
    players = sorted((i for i in insts if i.plays), key=lambda i: i.onset)
    if len(players) < 2:
        return None
    if which == "first":
        return players[0] if players[1].onset - players[0].onset >= MIN_GAP_S else None
    return players[-1] if players[-1].onset - players[-2].onset >= MIN_GAP_S else None


def _distinct_onsets(players: list[Instance]) -> bool:
    onsets = sorted(i.onset for i in players)
    return all(b - a >= 1 for a, b in zip(onsets, onsets[1:]))


def _neighbour(scene: Scene, inst: Instance, direction: str) -> Instance | None:
    slot = inst.slot + (-1 if direction == "left" else 1)
    return next((i for i in scene.instances if i.slot == slot), None)


def _compare(rng, a: Instance, b: Instance, key: str) -> tuple[Instance, Instance, str] | None:
    """Order a pair at random and answer 'is the first more <key> than the second'."""
    if rng.random() < 0.5:
        a, b = b, a
    if key == "loud":
        if abs(a.gain_db - b.gain_db) < MIN_LOUD_DB:
            return None
        return a, b, yn(a.gain_db > b.gain_db)
    if key == "rhythmic":
        if a.style == b.style:
            return None
        return a, b, yn(a.style == "rhythmic")
    if abs(a.duration - b.duration) < MIN_GAP_S:
        return None
    return a, b, yn(a.duration > b.duration)


def _pair(rng, insts: list[Instance]) -> tuple[Instance, Instance] | None:
    if len(insts) < 2:
        return None
    i, j = rng.choice(len(insts), 2, replace=False)
    return insts[i], insts[j]


def _sided_players(scene: Scene) -> list[Instance]:
    """Playing instruments that 'left/middle/right' names unambiguously (matched sound only)."""
    if not scene.matched or scene.n > 3:
        return []
    return [i for i in scene.instances if i.plays]


# ============================================================================ Audio


@answers("Is there a <Object> sound?")
def _a_is_there(scene, rng):
    heard = sorted({i.cls for i in scene.heard()})
    return _yes_or_no_single(rng, heard, [c for c in INSTRUMENTS if c not in heard])


@answers("Are there <Object> and <Object> sound? ")
def _a_are_there(scene, rng):
    heard = sorted({i.cls for i in scene.heard()})
    return _yes_or_no_pair(rng, heard, [c for c in INSTRUMENTS if c not in heard])


@answers("How many musical instruments were heard throughout the video?")
def _a_how_many(scene, rng):
    return [], count_word(len(scene.heard()))


def _audio_compare(scene, rng, key):
    pair = _pair(rng, _unique_classes(scene.heard()))
    if pair is None:
        return None
    r = _compare(rng, *pair, key)
    return ([r[0].cls, r[1].cls], r[2]) if r else None


@answers("Is the <Object> more rhythmic than the <Object>?")
def _a_rhythmic(scene, rng):
    return _audio_compare(scene, rng, "rhythmic")


@answers("Is the <Object> louder than the <Object>?")
def _a_louder(scene, rng):
    return _audio_compare(scene, rng, "loud")


@answers("Is the <Object> playing longer than the <Object>?")
def _a_longer(scene, rng):
    return _audio_compare(scene, rng, "long")


# ============================================================================ Visual


@answers("Is there a <Object> in the entire video?")
def _v_is_there(scene, rng):
    seen = scene.classes_seen()
    return _yes_or_no_single(rng, seen, [c for c in INSTRUMENTS if c not in seen])


@answers("Are there <Object> and <Object> instruments in the video?")
def _v_are_there(scene, rng):
    seen = scene.classes_seen()
    return _yes_or_no_pair(rng, seen, [c for c in INSTRUMENTS if c not in seen])


@answers("How many types of musical instruments appeared in the entire video?")
def _v_types(scene, rng):
    return [], count_word(len(scene.classes_seen()))


@answers("How many <Object> are in the entire video?")
def _v_how_many(scene, rng):
    counts = Counter(i.cls for i in scene.instances)
    dup = [c for c, k in counts.items() if k > 1]
    cls = _pick(rng, sorted(dup)) if dup and rng.random() < 0.7 else _pick(rng, sorted(counts))
    return [cls], count_word(counts[cls])


@answers("What kind of musical instrument is it?")
def _v_what_kind(scene, rng):
    seen = scene.classes_seen()
    return ([], seen[0]) if len(seen) == 1 else None


@answers("What kind of instrument is the <LRer> instrument? ")
def _v_lrer(scene, rng):
    if scene.n < 2:
        return None
    which = "leftest" if rng.random() < 0.5 else "rightest"
    inst = min(scene.instances, key=lambda i: i.slot if which == "leftest" else -i.slot)
    return [which], inst.cls


@answers("Where is the performance?")
def _v_where(scene, rng):
    return [], scene.background


@answers("What is the instrument on the <LR> of <Object>?")
def _v_lr_of(scene, rng):
    options = []
    for inst in _unique_classes(scene.instances):
        for d in ("left", "right"):
            nb = _neighbour(scene, inst, d)
            if nb is not None and nb.cls != inst.cls:
                options.append(([d, inst.cls], nb.cls))
    return _pick(rng, options) if options else None


# ============================================================================ Audio-Visual: existential


@answers("Is this sound from the instrument in the video?")
def _av_from_video(scene, rng):
    return [], yn(scene.matched)


@answers("Is the <Object> in the video always playing?")
def _av_always(scene, rng):
    if not scene.matched:
        return None
    cands = _unique_classes(scene.instances)
    if not cands:
        return None
    always = [i for i in cands if i.intervals == [[0, scene.seconds]]]
    not_always = [i for i in cands if i.intervals != [[0, scene.seconds]]]
    pool = always if (always and (rng.random() < 0.5 or not not_always)) else not_always
    inst = _pick(rng, pool)
    return [inst.cls], yn(inst in always)


@answers("Is there a voiceover?")
def _av_voiceover(scene, rng):
    return [], yn(scene.heard_voiceover() is not None)


# ============================================================================ Audio-Visual: counting


@answers("How many instruments are sounding in the video?")
def _av_how_many(scene, rng):
    return ([], count_word(sum(i.plays for i in scene.instances))) if scene.matched else None


@answers("How many types of musical instruments sound in the video?")
def _av_types(scene, rng):
    return ([], count_word(len({i.cls for i in scene.instances if i.plays}))) if scene.matched else None


@answers("How many instruments in the video did not sound from beginning to end?")
def _av_silent(scene, rng):
    return ([], count_word(sum(not i.plays for i in scene.instances))) if scene.matched else None


@answers("How many sounding <Object> in the video？")
def _av_how_many_sounding(scene, rng):
    if not scene.matched:
        return None
    cls = _pick(rng, scene.classes_seen())
    return [cls], count_word(sum(i.plays for i in scene.instances if i.cls == cls))


# ============================================================================ Audio-Visual: location


@answers("Where is the <LL> instrument?")
def _av_where_ll(scene, rng):
    players = _sided_players(scene)
    if len(players) < 2:
        return None
    which = "loudest" if rng.random() < 0.5 else "lowest"
    ranked = sorted(players, key=lambda i: -i.gain_db if which == "loudest" else i.gain_db)
    if abs(ranked[0].gain_db - ranked[1].gain_db) < MIN_LOUD_DB:
        return None
    return [which], ranked[0].side


@answers("Is the <FL> sound coming from the <LR> instrument?")
def _av_fl_from_lr(scene, rng):
    if not _sided_players(scene) or scene.n < 2:
        return None
    which = "first" if rng.random() < 0.5 else "last"
    inst = _entrance(scene.instances, which)
    if inst is None:
        return None
    if rng.random() < 0.5:
        return [which, inst.side], "yes"
    other = [i.side for i in scene.instances if i.side != inst.side]
    return [which, _pick(rng, other)], "no"


@answers("What is the <LR> instrument of the <FL> sounding instrument?")
def _av_lr_of_fl(scene, rng):
    if not scene.matched:
        return None
    options = []
    for which in ("first", "last"):
        inst = _entrance(scene.instances, which)
        if inst is None:
            continue
        for d in ("left", "right"):
            nb = _neighbour(scene, inst, d)
            if nb is not None:
                options.append(([d, which], nb.cls))
    return _pick(rng, options) if options else None


@answers("Which is the musical instrument that sounds at the same time as the <Object>?")
def _av_same_time(scene, rng):
    if not scene.matched:
        return None
    options = []
    for inst in _unique_classes([i for i in scene.instances if i.plays]):
        overlaps = []
        for o in scene.instances:
            if o is inst or not o.plays:
                continue
            both = sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in inst.intervals for s2, e2 in o.intervals)
            overlaps.append((both, o))
        overlaps.sort(key=lambda x: -x[0])
        if not overlaps or overlaps[0][0] < MIN_GAP_S or overlaps[0][1].cls == inst.cls:
            continue
        if len(overlaps) > 1 and overlaps[0][0] - overlaps[1][0] < MIN_GAP_S:
            continue
        options.append(([inst.cls], overlaps[0][1].cls))
    return _pick(rng, options) if options else None


# ============================================================================ Audio-Visual: comparative


def _sided_compare(scene, rng, key, named):
    pair = _pair(rng, _sided_players(scene))
    if pair is None:
        return None
    r = _compare(rng, *pair, key)
    if r is None:
        return None
    a, b, ans = r
    return ([a.cls, a.side, b.cls, b.side] if named else [a.side, b.side]), ans


@answers("Is the <Object> on the <LR> louder than the <Object> on the <LR>?")
def _av_obj_louder(scene, rng):
    return _sided_compare(scene, rng, "loud", True)


@answers("Is the instrument on the <LR> louder than the instrument on the <LR>?")
def _av_lr_louder(scene, rng):
    return _sided_compare(scene, rng, "loud", False)


@answers("Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?")
def _av_obj_rhythmic(scene, rng):
    return _sided_compare(scene, rng, "rhythmic", True)


@answers("Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?")
def _av_lr_rhythmic(scene, rng):
    return _sided_compare(scene, rng, "rhythmic", False)


# ============================================================================ Audio-Visual: temporal


@answers("Where is the <FL> sounding instrument?")
def _av_where_fl(scene, rng):
    if not _sided_players(scene):
        return None
    options = [([w], i.side) for w in ("first", "last") if (i := _entrance(scene.instances, w)) is not None]
    return _pick(rng, options) if options else None


@answers("Which <Object> makes the sound <FL>?")
def _av_which_obj_fl(scene, rng):
    if not scene.matched or scene.n > 3:
        return None
    counts = Counter(i.cls for i in scene.instances)
    options = []
    for cls, k in counts.items():
        same = [i for i in scene.instances if i.cls == cls]
        if k < 2 or not all(i.plays for i in same):
            continue
        for which in ("first", "last"):
            if len({i.onset for i in same}) == 1:
                options.append(([cls, which], "simultaneously"))
            elif (inst := _entrance(same, which)) is not None:
                options.append(([cls, which], inst.side))
    return _pick(rng, options) if options else None


@answers("What is the <TH> instrument that comes in?")
def _av_th(scene, rng):
    if not scene.matched:
        return None
    players = sorted((i for i in scene.instances if i.plays), key=lambda i: i.onset)
    if len(players) < 2 or not _distinct_onsets(players):
        return None
    k = int(rng.integers(min(len(players), 5)))
    return [["first", "second", "third", "fourth", "fifth"][k]], players[k].cls


@answers("Which instrument makes sounds <BA> the <Object>?")
def _av_before_after(scene, rng):
    if not scene.matched:
        return None
    players = sorted((i for i in scene.instances if i.plays), key=lambda i: i.onset)
    if len(players) < 2 or not _distinct_onsets(players):
        return None
    options = []
    for k, inst in enumerate(players):
        if Counter(i.cls for i in players)[inst.cls] != 1:
            continue
        if k > 0 and players[k - 1].cls != inst.cls:
            options.append((["before", inst.cls], players[k - 1].cls))
        if k + 1 < len(players) and players[k + 1].cls != inst.cls:
            options.append((["after", inst.cls], players[k + 1].cls))
    return _pick(rng, options) if options else None


assert set(_ANSWERERS) == {t for t, _, _ in TEMPLATES}  # every template answered


# ============================================================================ per clip and per split


def ask(scene: Scene, rng: np.random.Generator, per_clip: int) -> list[dict]:
    """Up to ``per_clip`` questions on one scene, from distinct templates (rows without ids)."""
    rows = []
    for idx in rng.permutation(len(TEMPLATES)):
        text, modality, kind = TEMPLATES[idx]
        q = _ANSWERERS[text](scene, rng)
        if q is None:
            continue
        values, answer = q
        rows.append({
            "video_id": scene.video_id,
            "question_id": -1,
            "type": json.dumps([modality, kind]),
            "question_content": text,
            "templ_values": json.dumps(values),
            "question_deleted": 0,
            "anser": answer,
        })
        if len(rows) >= per_clip:
            break
    return rows
