"""TSPM's inputs as its release lays them out, checked before any training, and its dataset.

Per video (``<video_id>.npy``): VGGish [T,128] in --audios_feat_dir, CLIP frame features [T,768]
in --visual_feat_dir, ToMe tokens [F,14,1024] in --visual_patch_dir (token frame j shows second
``token_seconds(T, F)[j]``). Per question (``<question_id>.npy``, avqa.annotations.question_key): the
CLIP text features [768] or [1,768] of the question in --qst_feat_dir and of its QA prompt in
--qst_prompt_dir. Files may be float16 or float32; the model reads float32. The widths 768, 1024 and 768 are the
published extractors'; --visual_dim, --token_dim and --text_dim name others (stand-in features). --audios_patch_dir is
never read: the release's loader reads it and its model ignores it.

The video features are read with avqa.store.FeatureStore (its checks, its finiteness record); the
small per-question vectors are read once, checked and held in memory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..annotations import question_key
from ..data import QASplit
from ..engine.batches import PerVideoBatches
from ..store import FeatureStore, check_stores, read_npy_header
from ..utils import metadata_path

AUDIO_SHAPE = (128,)          # per second
FRAME_SHAPE = (768,)          # per second, at the published --visual_dim
TOKEN_SHAPE = (14, 1024)      # per token frame: 14 merged tokens, at the published --token_dim
TEXT_DIM = 768                # the published --text_dim
# metadata settings that must agree between the folders of one run, where more than one folder records them
SHARED_SETTINGS = ("seconds", "source", "seed")


@dataclass
class TextFeatures:
    """One CLIP text vector per question key: ``vectors[row_of[key]]`` is [D] float32."""

    vectors: torch.Tensor
    row_of: dict[str, int]


def _sentence(flag: str, folder: Path, what: str, problems: list[str], fix: str) -> str:
    """The run's refusal: one line for one problem, the first 20 files for more."""
    if len(problems) == 1:
        return f"{flag} {folder}: {problems[0]}: {fix}"
    return (f"{flag} {folder}: {len(problems)} {what} files are unusable: {fix}\n  " + "\n  ".join(problems[:20])
            + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""))


def width_mismatch(flag: str, folder: str | Path, first: str, ndims: tuple[int, ...], width: int,
                   width_flag: str) -> None:
    """SystemExit when the folder's first file ``<first>.npy`` has one of the ranks ``ndims`` but its last
    dimension is not ``width``: features of another extractor, read with the published width (its own width
    is the fix)."""
    path = Path(folder) / f"{first}.npy"
    try:
        shape = read_npy_header(path).shape
    except (ValueError, OSError, EOFError):
        return  # missing or unreadable: the full check names it
    if len(shape) in ndims and shape[-1] != width:
        raise SystemExit(f"{flag} {folder}: {path} holds features of width {shape[-1]}, but the model is built for "
                         f"{width_flag} {width}: pass {width_flag} {shape[-1]} (to test, the width it was trained with)")


def load_text_features(folder: str | Path, samples: Sequence[dict], flag: str, finite: bool = True,
                       dim: int = TEXT_DIM) -> TextFeatures:
    """Read and check ``<folder>/<question key>.npy`` of every question: [dim] or [1,dim], float, finite.

    A SystemExit names the flag, the files and the fix; nothing else is read after a problem is found.
    """
    folder = Path(folder)
    keys = list(dict.fromkeys(question_key(s) for s in samples))
    if keys:
        width_mismatch(flag, folder, keys[0], (1, 2), dim, "--text_dim")
    vectors = torch.empty((len(keys), dim))
    problems = []
    for row, key in enumerate(keys):
        path = folder / f"{key}.npy"
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        try:
            header = read_npy_header(path)
            if header.shape not in ((dim,), (1, dim)) or header.dtype.kind != "f":
                problems.append(f"{path} holds {header.dtype} {list(header.shape)}, expected float [{dim}] or [1, {dim}]")
                continue
            array = np.load(path).reshape(dim)
        except (ValueError, OSError, EOFError) as e:
            problems.append(f"{path} is not a readable .npy file ({e})")
            continue
        if finite and not np.isfinite(array).all():
            problems.append(f"{path} holds NaN or infinite values")
            continue
        vectors[row] = torch.from_numpy(array.astype(np.float32))
    if problems:
        raise SystemExit(_sentence(flag, folder, "question feature", problems,
                                   f"write one CLIP text feature per question id of the annotation files there, "
                                   f"or point {flag} at the folder that holds them"))
    return TextFeatures(vectors, {k: i for i, k in enumerate(keys)})


def _check_metadata(folders: dict[str, Path], T: int) -> None:
    """Folders that carry this project's metadata file: their recorded seconds match the files, and the
    settings of SHARED_SETTINGS agree between folders (stand-ins of one set and seed are not mixed with others')."""
    seen: dict[str, tuple[str, object]] = {}
    for flag, folder in folders.items():
        path = metadata_path(folder)
        if not path.is_file():
            continue  # the release's folders carry none
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"{flag} {folder}: its metadata {path} cannot be read ({e}): make the folder again, "
                             f"or delete the metadata file") from None
        if not isinstance(meta, dict):
            raise SystemExit(f"{flag} {folder}: its metadata {path} is not a JSON object: make the folder again")
        if meta.get("seconds") is not None and meta.get("seconds") != T:
            raise SystemExit(f"{flag} {folder}: its metadata says {meta['seconds']} seconds per video but the feature "
                             f"files hold T={T}: make every folder from the same clips and --seconds")
        for key in SHARED_SETTINGS:
            if meta.get(key) is None:
                continue
            if key in seen and seen[key][1] != meta[key]:
                other, value = seen[key]
                raise SystemExit(f"{flag} {folder} was made with {key} {meta[key]!r} but {other} with {key} "
                                 f"{value!r}: features made with other settings are not mixed; make both folders "
                                 f"with the same settings")
            seen.setdefault(key, (flag, meta[key]))


@dataclass
class TSPMInputs:
    """The checked inputs of a run: three feature stores, the text vectors, T seconds and F token frames."""

    audio: FeatureStore
    visual: FeatureStore
    tokens: FeatureStore
    question: TextFeatures
    prompt: TextFeatures
    total: int
    token_frames: int

    def dataset(self, split: QASplit, train: bool = False, seed: int = 1) -> "TSPMDataset":
        return TSPMDataset(split, self)


def open_inputs(cfg, samples: Sequence[dict]) -> TSPMInputs:
    """Open and check every file the questions ``samples`` read, before any training (SystemExit otherwise).

    ``cfg``: the run's settings (the --*_dir flags, --top_k, --Temp_Selection, --token_frames, the widths,
    --no_feature_check).
    """
    finite = not cfg.no_feature_check
    videos = [s["video_id"] for s in samples]
    stores = {"--audios_feat_dir": FeatureStore(cfg.audios_feat_dir, AUDIO_SHAPE),
              "--visual_feat_dir": FeatureStore(cfg.visual_feat_dir, (cfg.visual_dim,)),
              "--visual_patch_dir": FeatureStore(cfg.visual_patch_dir, (TOKEN_SHAPE[0], cfg.token_dim))}
    if videos:
        width_mismatch("--visual_feat_dir", cfg.visual_feat_dir, videos[0], (2,), cfg.visual_dim, "--visual_dim")
        width_mismatch("--visual_patch_dir", cfg.visual_patch_dir, videos[0], (3,), cfg.token_dim, "--token_dim")
    lengths = check_stores(stores, videos, finite=finite)
    T, frames, F = lengths["--audios_feat_dir"], lengths["--visual_feat_dir"], lengths["--visual_patch_dir"]
    if T != frames:
        raise SystemExit(f"--audios_feat_dir {cfg.audios_feat_dir} holds T={T} seconds per video but --visual_feat_dir "
                         f"{cfg.visual_feat_dir} T={frames}: extract both from the same clips at one per second")
    if F > T:
        raise SystemExit(f"--visual_patch_dir {cfg.visual_patch_dir} holds {F} token frames per video, more than the "
                         f"T={T} seconds of the other features: extract at most one token frame per second")
    if cfg.Temp_Selection and cfg.top_k > T:
        raise SystemExit(f"--top_k {cfg.top_k} is larger than the T={T} seconds per video of "
                         f"{cfg.audios_feat_dir}: pass --top_k {T} or less")
    if cfg.token_frames == "release" and cfg.Spatio_Perception and F < cfg.top_k:
        raise SystemExit(f"--token_frames release reads the first --top_k {cfg.top_k} token frames, but "
                         f"{cfg.visual_patch_dir} holds {F} per video: lower --top_k or use --token_frames paper")
    question = load_text_features(cfg.qst_feat_dir, samples, "--qst_feat_dir", finite, cfg.text_dim)
    prompt = load_text_features(cfg.qst_prompt_dir, samples, "--qst_prompt_dir", finite, cfg.text_dim)
    _check_metadata({**{flag: s.folder for flag, s in stores.items()}, "--qst_feat_dir": Path(cfg.qst_feat_dir),
                     "--qst_prompt_dir": Path(cfg.qst_prompt_dir)}, T)
    return TSPMInputs(stores["--audios_feat_dir"], stores["--visual_feat_dir"], stores["--visual_patch_dir"],
                      question, prompt, T, F)


def feature_files(cfg, samples: Sequence[dict]) -> list[Path]:
    """Every feature file the questions ``samples`` read (their stamps go into a run's record)."""
    videos = sorted({s["video_id"] for s in samples})
    keys = sorted({question_key(s) for s in samples})
    return ([Path(d) / f"{v}.npy" for d in (cfg.audios_feat_dir, cfg.visual_feat_dir, cfg.visual_patch_dir)
             for v in videos]
            + [Path(d) / f"{k}.npy" for d in (cfg.qst_feat_dir, cfg.qst_prompt_dir) for k in keys])


class TSPMDataset(PerVideoBatches):
    """Questions with their features, read into preallocated batch buffers (avqa.engine.batches.BatchLoader's
    interface).

    A batch: audio [B,T,128], visual [B,T,--visual_dim], tokens [B,F,14,--token_dim], question and prompt
    [B,--text_dim], label, type and index [B].
    """

    def __init__(self, split: QASplit, inputs: TSPMInputs):
        seconds = np.arange(inputs.total)
        super().__init__(split, {"audio": (inputs.audio, seconds), "visual": (inputs.visual, seconds),
                                 "tokens": (inputs.tokens, np.arange(inputs.token_frames))})
        self.inputs = inputs
        self.question_rows = torch.tensor([inputs.question.row_of[question_key(s)] for s in split.samples])
        self.prompt_rows = torch.tensor([inputs.prompt.row_of[question_key(s)] for s in split.samples])

    def extras(self, idx: torch.Tensor) -> dict:
        return {"question": self.inputs.question.vectors[self.question_rows[idx]],
                "prompt": self.inputs.prompt.vectors[self.prompt_rows[idx]]}
