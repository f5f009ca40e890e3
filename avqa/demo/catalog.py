"""What the page offers: the trained models the user has, the main job's clips, and the 33 templates
with the words each model knows for their placeholders."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..annotations import PAD, TAG_VALUES, load_annotations, template_tags, tokenize
from ..checkpoint import is_ours, load_dict
from ..media import VIDEO_EXTENSIONS
from ..templates import TEMPLATES
from ..ask.trained import DEFAULT_MODEL_DIR, REPO, Trained, load_trained
from ..ask.errors import AskError

BUNDLED = REPO / DEFAULT_MODEL_DIR / "avst.pt"
QUESTIONS_PER_CLIP = 8   # the set's own questions offered beside each clip


@dataclass
class Model:
    """A checkpoint the page can name: its key in the page, its label, and why it cannot answer (or None)."""

    key: str
    label: str
    path: Path
    family: str
    unusable: str | None = None
    trained: Trained | None = field(default=None, repr=False)

    def fillers(self) -> dict[str, list[str]]:
        """Each placeholder's words this model's vocabulary knows."""
        known = set(self.trained.vocab.questions) - {PAD} if self.trained else set()
        return {tag: [v for v in values if v in known] for tag, values in TAG_VALUES.items()}

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "family": self.family, "unusable": self.unusable,
                "fillers": self.fillers()}


def checkpoint_family(path: Path) -> str | None:
    """The model family a checkpoint of this project holds ("avst", "tspm", ...), None for any other file."""
    try:
        obj = load_dict(path)
    except (ValueError, OSError):
        return None
    return str(obj.get("model")) if is_ours(obj) else None


def find_models(out: Path, extra: list[Path]) -> list[Model]:
    """The bundled AVST, every question-answering checkpoint a main job left under ``out`` (its best
    weights, <out>/<family>/<name>.pt), and the checkpoints given with --model. AVST ones are loaded
    (their vocabulary); the others are listed with why they cannot answer here."""
    candidates = [BUNDLED] if BUNDLED.is_file() else []
    if out.is_dir():
        candidates += sorted(p for p in out.glob("*/*.pt") if not p.stem.endswith(("_last", "_best")))
    candidates += extra
    models, seen = [], set()
    for path in candidates:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        family = checkpoint_family(path)
        if family is None and path not in extra:
            continue
        label = "AVST, the bundled checkpoint" if path == BUNDLED else f"{(family or '?').upper()}: {path}"
        model = Model(f"m{len(models)}", label, path, family or "?")
        if family not in registry.answering():
            model.unusable = (f"{path} holds a '{family}' model: the answers, heat maps and strips come from "
                              f"avqa.ask, which answers with AVST" if family else f"{path} is not a checkpoint of "
                              f"this project")
        else:
            try:
                model.trained = load_trained(path, None)
            except AskError as e:
                model.unusable = str(e)
        models.append(model)
    return models


@dataclass
class Clip:
    """A video the page can show and ask about: the set's (a gallery entry) or an upload."""

    key: str
    path: Path
    name: str
    questions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "questions": self.questions}


def find_clips(data: Path) -> list[Clip]:
    """The main job's clips under <data>/videos: those of the test split first (the models never trained on
    them), each with some of the set's own questions about it; then the others."""
    videos = {p.stem: p for p in sorted((data / "videos").glob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS
              and not p.name.startswith(".")} if (data / "videos").is_dir() else {}
    asked: dict[str, list[str]] = {}
    for split in ("test", "val", "train"):
        path = data / "json" / f"avqa-{split}.json"
        try:
            samples = load_annotations(path, check=False) if path.is_file() else []
        except (ValueError, OSError, json.JSONDecodeError):
            samples = []
        for s in samples:
            vid = str(s.get("video_id"))
            if vid in videos:
                questions = asked.setdefault(vid, [])
                text = " ".join(tokenize(s)) + "?"
                if len(questions) < QUESTIONS_PER_CLIP and text not in questions:
                    questions.append(text)
    order = list(asked) + [v for v in videos if v not in asked]
    return [Clip(f"c{i}", videos[v], v, asked.get(v, [])) for i, v in enumerate(order)]


def templates() -> list[dict]:
    """The 33 templates: their text, type and placeholders in order."""
    return [{"text": text.strip(), "type": f"{modality} / {kind}", "tags": template_tags(text)}
            for text, modality, kind in TEMPLATES]
