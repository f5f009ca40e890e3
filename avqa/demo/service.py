"""The demo's work, behind the page: answers from avqa.ask's API, one question at a time, with each
clip's features computed once and reused; the answer laid out for the page (the heat maps as images,
the temporal attention as numbers, ask's notes as sentences)."""
from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image

from ..ask import Answer, Answerer, AskError, read_question
from ..media import MediaError, read_sampled_frames
from ..utils import file_stamp
from ..visualize import HEAT_WEIGHT, heat_colours, overlay
from .catalog import Clip, Model, find_clips, find_models, templates
from .uploads import MAX_SECONDS, KINDS, Uploads

KEEP_CLIPS = 8     # clips whose features (and sampled frames) stay in memory
TILE = 224         # width of each second's picture in the page


class DemoError(ValueError):
    """A request the page cannot answer, in one sentence for the user."""


class Recent(OrderedDict):
    """The last ``keep`` values computed, by key."""

    def __init__(self, keep: int = KEEP_CLIPS):
        super().__init__()
        self.keep = keep

    def get_or_make(self, key, make: Callable):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > self.keep:
            self.popitem(last=False)
        return value


def clip_key(video: str | Path, seconds: int) -> tuple:
    """A clip as read for a T-second model: its file, its size and modification time, and T."""
    return str(Path(video).resolve()), tuple(file_stamp(video) or ()), seconds


class CachedAnswerer(Answerer):
    """avqa.ask's Answerer, keeping the features of the clips it read: the next question about a clip
    skips its decoding and the backbones (a file changed in place is read again)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recent = Recent()

    def clip_features(self, video: Path):
        return self.recent.get_or_make(clip_key(video, self.seconds), lambda: super(CachedAnswerer, self)
                                       .clip_features(video))


def data_url(image: Image.Image, kind: str) -> str:
    buf = io.BytesIO()
    image.save(buf, format=kind, **({"quality": 90} if kind == "JPEG" else {}))
    return f"data:image/{kind.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


def notes_of(result: Answer) -> list[str]:
    """What ``python -m avqa.ask`` says beside the answer: how it read the question, the closest template
    when none matches, and its notes on the clip."""
    r = result.as_dict()
    notes = []
    if r["read_as"] != " ".join(result.question.split()).rstrip("?？").rstrip() + "?":
        notes.append(f"read as: {r['read_as']}")
    if not result.template_matched:
        notes.append(f"no template matches; the closest is: {result.template} (the model was trained on template "
                     f"questions only)")
    return notes + list(result.notes)


def laid_out(result: Answer, frames: list[np.ndarray]) -> dict:
    """The answer as the page shows it: avqa.ask's JSON, each sampled second's heat map (jet, alone and
    blended 0.4/0.6 over its frame, as the original's figure), and the notes."""
    r = result.as_dict()
    h, w = frames[0].shape[:2]
    size = (TILE, max(1, round(TILE * h / w)))
    spatial = result.attention["spatial"][0].numpy()
    return {**{k: r[k] for k in ("answer", "probability", "top", "probabilities", "question_type", "template",
                                 "template_matched", "read_as", "clip_seconds", "seconds", "temporal_attention")},
            "heat_weight": HEAT_WEIGHT,
            "heat": [data_url(Image.fromarray(heat_colours(m, size)), "PNG") for m in spatial],
            "looked": [data_url(overlay(frames[s], m, size), "JPEG") for s, m in zip(result.seconds, spatial)],
            "notes": notes_of(result)}


class Demo:
    """The models, the gallery and the uploads of one server; ``ask`` answers one question at a time."""

    def __init__(self, data: Path, out: Path, extra_models: list[Path] | None = None, device: str = "cpu"):
        self.data, self.device = Path(data), device
        self.models = {m.key: m for m in find_models(Path(out), list(extra_models or []))}
        self.clips = {c.key: c for c in find_clips(self.data)}
        self.uploads = Uploads()
        self._answerers: dict[str, CachedAnswerer] = {}
        self._frames = Recent()
        self._lock = threading.Lock()   # one question at a time: the others wait their turn

    def catalog(self) -> dict:
        usable = [m for m in self.models.values() if not m.unusable]
        return {"models": [m.as_dict() for m in self.models.values()],
                "default_model": usable[0].key if usable else None,
                "clips": [c.as_dict() for c in self.clips.values() if not c.key.startswith("u")],
                "data": str(self.data), "templates": templates(),
                "upload": {"kinds": list(KINDS), "max_seconds": MAX_SECONDS}}

    def add_upload(self, name: str, body: BinaryIO, length: int) -> Clip:
        path = self.uploads.receive(name, body, length)
        with self.uploads.lock:
            clip = Clip(f"u{sum(k.startswith('u') for k in self.clips) + 1}", path, name)
            self.clips = {**self.clips, clip.key: clip}  # a new dict: a catalog being read meanwhile stays whole
        return clip

    def answerer(self, key: str) -> CachedAnswerer:
        """The model's answerer, built on first use (its backbones found and loaded); call under the lock."""
        model = self._model(key)
        if key not in self._answerers:
            self._answerers[key] = CachedAnswerer(model.trained, device=self.device).prepare()
        return self._answerers[key]

    def _model(self, key: str | None) -> Model:
        model = self.models.get(key or "")
        if model is None:
            raise DemoError("choose one of the listed models")
        if model.unusable:
            raise DemoError(model.unusable)
        return model

    def warm(self, key: str | None) -> None:
        """Load a model's backbones now, so that the first question does not wait for them."""
        with self._lock:
            self.answerer(key)

    def ask(self, clip: str, question: str, model: str | None) -> dict:
        """The page's answer to ``question`` about the clip, or a DemoError/AskError sentence."""
        if clip not in self.clips:
            raise DemoError("pick a clip from the gallery, or upload a video, before asking")
        if not question.strip():
            raise DemoError("type a question, or build one from a template")
        video = self.clips[clip].path
        read_question(question, self._model(model).trained.vocab)  # a question it cannot read is said at once
        with self._lock:
            answerer = self.answerer(model)
            try:
                result = answerer.answer(video, question)
                frames = self._frames.get_or_make(clip_key(video, result.clip_seconds),
                                                  lambda: read_sampled_frames(video, result.clip_seconds)[0])
            except MediaError as e:
                raise DemoError(f"{e}: upload another video") from None
        return {"clip": clip, "model": model, "question": question, **laid_out(result, frames)}

    def close(self) -> None:
        self.uploads.close()


__all__ = ["AskError", "Demo", "DemoError"]
