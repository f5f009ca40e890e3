"""QA-TIGER's inputs as its release lays them out, checked before any training, its answer order and its dataset.

Per video (``<video_id>.npy``, float16 or float32): VGGish [T,128] in --audio_feat, CLIP ViT-L/14@336px
frame features [T,768] in --video_feat, ToMe tokens [T,14,1024] in --patch_feat, one token frame per
second. The question is its raw text with the template values in place and the final '?' dropped,
as the release's loader writes it, tokenised with OpenAI CLIP's BPE (77 ids); the frozen text
encoder inside the model reads the ids.

The answers' order (the model's classes) is the release's ``answer2idx.json`` where --answer2idx names
one (its v1 and v2.0 files differ), otherwise this project's vocabulary (order of first appearance in
--label_train).
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..annotations import AnnotationError, Vocab, load_annotations, type_index
from ..data import AUDIO_SHAPE, QASplit
from ..engine.batches import PerVideoBatches
from ..features.clip import tokenize
from ..store import FeatureStore, check_stores
from ..tspm.data import width_mismatch

TOKENS = 14                  # ToMe tokens per second


def question_text(sample: dict) -> str:
    """The question as the release's loader feeds CLIP: the words of ``question_content`` split on single
    spaces, the last character of the last word dropped (its '?'), and each word holding a '<' replaced,
    in order, by the next of the parsed ``templ_values``."""
    words = sample["question_content"].strip().split(" ")
    words[-1] = words[-1][:-1]
    values = iter(ast.literal_eval(sample.get("templ_values") or "[]"))
    return " ".join(next(values, w) if "<" in w else w for w in words)


def read_answer2idx(path: str | Path) -> list[str]:
    """The answers of a release ``answer2idx.json`` ({"ans2ix": {answer: index}, ...} or {answer: index})
    in index order; a SystemExit names --answer2idx and the fix for a file that is not one."""
    fix = "give the release's data/annots/<set>/answer2idx.json, or leave --answer2idx out"
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--answer2idx {path} cannot be read as JSON ({e}): {fix}") from None
    mapping = obj.get("ans2ix", obj) if isinstance(obj, dict) else None
    if (not isinstance(mapping, dict) or not mapping or not all(isinstance(i, int) for i in mapping.values())
            or sorted(mapping.values()) != list(range(len(mapping)))):
        raise SystemExit(f"--answer2idx {path} is no answer-to-index map with the indices 0..N-1: {fix}")
    return sorted(mapping, key=mapping.get)


def answer_vocab(cfg, train_samples: Sequence[dict]) -> Vocab:
    """The run's vocabulary: question words from --label_train, answers in --answer2idx's order when given.

    Every answer of the files the run reads (train and validation, or test) must be among them."""
    own = Vocab.from_samples(train_samples)
    if not cfg.answer2idx:
        return own
    answers = read_answer2idx(cfg.answer2idx)
    files = ("label_test",) if cfg.mode == "test" else ("label_train", "label_val")
    for flag in files:
        rows = train_samples if flag == "label_train" else load_annotations(getattr(cfg, flag), max_tokens=None)
        absent = sorted({s["anser"] for s in rows} - set(answers))
        if absent:
            raise SystemExit(f"--answer2idx {cfg.answer2idx} does not cover the answers of --{flag} "
                             f"{getattr(cfg, flag)} ({len(absent)} absent: {', '.join(map(repr, absent[:10]))}): "
                             f"give the answer2idx.json of that data set (the v1 and v2.0 files differ)")
    return Vocab(own.questions, tuple(answers))


def encode_answers(samples: Sequence[dict], vocab: Vocab, path: str | Path) -> QASplit:
    """A split as QA-TIGER reads it: the answers' classes and the question types. The question reaches the model
    as CLIP tokens of its text (QATigerInputs.tokens), so its words need not be in --label_train's vocabulary
    nor number at most 14: MUSIC-AVQA-R's rephrased questions and v2.0's are read as they are."""
    index = vocab.answer_index()
    absent = [f"row {row} (video {s['video_id']}): answer {s['anser']!r} is not one of the model's classes"
              for row, s in enumerate(samples) if s["anser"] not in index]
    if absent:
        raise AnnotationError(path, absent)
    return QASplit(list(samples), torch.zeros((len(samples), 0), dtype=torch.long),
                   torch.tensor([index[s["anser"]] for s in samples], dtype=torch.long),
                   torch.tensor([type_index(s) for s in samples], dtype=torch.long))


@dataclass
class QATigerInputs:
    """The checked inputs of a run: three feature stores, the token ids of each question, T seconds."""

    audio: FeatureStore
    video: FeatureStore
    patch: FeatureStore
    tokens: dict[str, torch.Tensor]
    total: int

    def dataset(self, split: QASplit, train: bool = False, seed: int = 1) -> "QATigerDataset":
        return QATigerDataset(split, self)


def open_inputs(cfg, samples: Sequence[dict]) -> QATigerInputs:
    """Open and check every feature file the questions ``samples`` read, before any training (SystemExit
    otherwise): present, float, finite (unless --no_feature_check), of the flags' widths, and the same T
    seconds in the three folders (one token frame per second)."""
    videos = [s["video_id"] for s in samples]
    stores = {"--audio_feat": FeatureStore(cfg.audio_feat, AUDIO_SHAPE),
              "--video_feat": FeatureStore(cfg.video_feat, (cfg.video_dim,)),
              "--patch_feat": FeatureStore(cfg.patch_feat, (TOKENS, cfg.patch_dim))}
    if videos:
        width_mismatch("--video_feat", cfg.video_feat, videos[0], (2,), cfg.video_dim, "--video_dim")
        width_mismatch("--patch_feat", cfg.patch_feat, videos[0], (3,), cfg.patch_dim, "--patch_dim")
    lengths = check_stores(stores, videos, finite=not cfg.no_feature_check)
    T = lengths["--audio_feat"]
    for flag in ("--video_feat", "--patch_feat"):
        if lengths[flag] != T:
            what = "token frames" if flag == "--patch_feat" else "seconds"
            raise SystemExit(f"{flag} {stores[flag].folder} holds {lengths[flag]} {what} per video but --audio_feat "
                             f"{cfg.audio_feat} holds T={T} seconds: QA-TIGER reads one of each per second; extract "
                             f"them from the same clips at one per second (the ToMe extractor: a token frame per "
                             f"second)")
    sentences = sorted({question_text(s) for s in samples})
    rows = tokenize(sentences) if sentences else torch.zeros((0, 77), dtype=torch.long)
    return QATigerInputs(stores["--audio_feat"], stores["--video_feat"], stores["--patch_feat"],
                         dict(zip(sentences, rows)), T)


def feature_files(cfg, samples: Sequence[dict]) -> list[Path]:
    """Every feature file the questions ``samples`` read (their stamps go into a run's record)."""
    videos = sorted({s["video_id"] for s in samples})
    return [Path(d) / f"{v}.npy" for d in (cfg.audio_feat, cfg.video_feat, cfg.patch_feat) for v in videos]


class QATigerDataset(PerVideoBatches):
    """Questions with their features, read into preallocated batch buffers (avqa.engine.batches.BatchLoader's
    interface).

    A batch: audio [B,T,128], video [B,T,--video_dim], patch [B,T,14,--patch_dim], question (CLIP ids)
    [B,77], label, type and index [B].
    """

    def __init__(self, split: QASplit, inputs: QATigerInputs):
        seconds = np.arange(inputs.total)
        super().__init__(split, {name: (getattr(inputs, name), seconds) for name in ("audio", "video", "patch")})
        self.inputs = inputs
        self.questions = torch.stack([inputs.tokens[question_text(s)] for s in split.samples]) \
            if split.samples else torch.zeros((0, 77), dtype=torch.long)

    def extras(self, idx: torch.Tensor) -> dict:
        return {"question": self.questions[idx]}
