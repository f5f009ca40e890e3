"""An AVST checkpoint ready to answer: found, loaded with its vocabulary, and what its features were
made with (the record beside it, or the metadata of its training run's feature folders)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..annotations import AnnotationError, Vocab
from ..models import AVST
from ..checkpoint import (is_ours, is_original, load_file, load_trained_state, record_path as checkpoint_record,
                          trained_path)
from ..utils import USAGE, metadata_path, sha256
from .errors import AskError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = "net_grd_avst/avst_models/"
# backbone -> (our flag for its weights, the training run's flag of its feature folder, avqa.features.pretrain's name)
BACKBONES = {"vggish": ("--vggish_weights", "audio_dir", "vggish"),
             "res18_14x14": ("--res18_weights", "video_res14x14_dir", "res18")}
LABELS = {"vggish": "VGGish", "res18_14x14": "ResNet-18"}


@dataclass
class Trained:
    """An AVST checkpoint ready to answer, and what its features were made with."""

    path: Path
    model: AVST
    vocab: Vocab
    segments: int
    features: dict[str, tuple[dict, str]] = field(default_factory=dict)  # backbone -> (metadata, where it was found)


def checkpoint_path(model_save_dir: str, checkpoint: str) -> Path:
    """<model_save_dir>/<checkpoint>.pt as main_avst.py reads it; a path ending in .pt is taken as it is."""
    if checkpoint.endswith(".pt"):
        return Path(checkpoint)
    folder = Path(model_save_dir)
    if not folder.is_absolute() and not folder.exists() and (REPO / folder).exists():
        folder = REPO / folder  # the bundled checkpoint, asked for from another folder
    return trained_path(folder, checkpoint)


def load_trained(path: Path, label_train: str | None) -> Trained:
    """The AVST of ``path`` with its vocabulary: the one it carries, or --label_train's (original checkpoints)."""
    if not path.is_file():
        raise AskError(f"checkpoint {path} not found: check --model_save_dir and --checkpoint")
    try:
        obj = load_file(path)
    except ValueError as e:
        raise AskError(str(e)) from None
    ours, original = is_ours(obj), is_original(obj)
    if not (ours or original):
        raise AskError(f"{path} is neither a checkpoint of this project nor an original state_dict")
    if ours and obj.get("model") != "avst":
        raise AskError(f"{path} holds a '{obj.get('model')}' model, not AVST: avqa.ask answers with AVST, whose "
                       f"attention shows where it looked; give a checkpoint of net_grd_avst/main_avst.py")
    if label_train:
        try:
            vocab = Vocab.from_file(label_train)
        except (AnnotationError, FileNotFoundError) as e:
            raise AskError(f"--label_train: {e}") from None
    elif ours and "question_vocab" in obj:
        vocab = Vocab(tuple(obj["question_vocab"]), tuple(obj["answer_vocab"]))
    else:
        raise AskError(f"{path} is an original-format checkpoint, which carries no vocabulary: pass --label_train "
                       f"with the train file it was trained with (as main_avst.py --mode test does)", USAGE)
    model = AVST(len(vocab.questions), len(vocab.answers))
    try:
        meta = load_trained_state(path, "avst", model, vocab, loaded=obj)
    except (ValueError, FileNotFoundError) as e:
        raise AskError(str(e)) from None
    segments = int(meta.get("args", {}).get("segments", 10))
    return Trained(path, model.eval(), vocab, segments, recorded_features(path, meta))


def recorded_features(path: Path, meta: dict) -> dict[str, tuple[dict, str]]:
    """What the checkpoint's features were made with, per backbone, and where that was found.

    The record beside the checkpoint (the bundled one has it), else the metadata file of each
    feature folder its training run read, when that file is still the one the run recorded (sha256).
    Original checkpoints have neither.
    """
    record = checkpoint_record(path)
    if record.is_file():
        try:
            feats = json.loads(record.read_text()).get("features") or {}
        except (ValueError, AttributeError):
            feats = {}
        found = {name: (feats[name], str(record)) for name in BACKBONES if isinstance(feats.get(name), dict)}
        if found:
            return found
    args, digests = meta.get("args", {}), (meta.get("run") or {}).get("features_metadata_sha256")
    found = {}
    for name, (_, folder_flag, _) in BACKBONES.items():
        folder = args.get(folder_flag)
        candidates = [metadata_path(base / folder) for base in (Path.cwd(), REPO)] if folder else []
        meta_file = next((m for m in candidates if m.is_file()), None)
        if meta_file is None or (digests is not None and sha256(meta_file) not in digests):
            continue  # absent, or extracted again since the run
        try:
            found[name] = (json.loads(meta_file.read_text()), str(meta_file))
        except ValueError:
            continue
    return found

