"""Datasets for grounding pre-training and question answering, reading features from FeatureStores
(avqa/store.py).

Features stay in their per-video ``.npy`` files, which stay open; a sample reads (pread) only the
seconds it uses (the sampled seconds of its own video, and one second of another video per
negative), never the whole 24 MB 14x14 file of a negative video (docs/differences.md).

Negatives are drawn from a generator seeded by (seed, epoch, sample index), so a run and its
resumption see the same negatives whatever the number of loader workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .annotations import Vocab, is_recording, type_index
from .features.seconds import segment_seconds
from .store import FeatureError, FeatureStore  # noqa: F401 - the datasets' error, importable beside them

AUDIO_SHAPE = (128,)
VISUAL_SHAPE = (512, 14, 14)


def visual_buffer(*lead: int, pin: bool = False) -> torch.Tensor:
    """[*lead, 512, 14, 14] stored channels-last ([*lead, 14, 14, 512] in memory).

    The spatial grounding reads each position's 512 channels and sums over positions; with the
    channels contiguous both of its matrix products stream through memory.
    """
    n = len(lead)
    return torch.empty((*lead, 14, 14, 512), pin_memory=pin).permute(*range(n), n + 2, n, n + 1)


def draw_negative(rng: np.random.Generator, videos: Sequence[str], own: int,
                  seconds: int | np.ndarray) -> tuple[str, int]:
    """(video, second): one random second of a random video other than ``videos[own]``.

    ``seconds``: T (any of its seconds) or the seconds to draw from (those computed, --used_seconds).
    """
    other = int(rng.integers(len(videos) - 1))
    other += other >= own
    if isinstance(seconds, (int, np.integer)):
        return videos[other], int(rng.integers(seconds))
    return videos[other], int(seconds[rng.integers(len(seconds))])


@dataclass
class QASplit:
    samples: list[dict]
    questions: torch.Tensor      # [N, 14] word ids
    answers: torch.Tensor        # [N]
    types: torch.Tensor          # [N] index into QUESTION_TYPES


def encode_split(samples: list[dict], vocab: Vocab, path: str | Path) -> QASplit:
    q, a = vocab.encode(samples, path)
    return QASplit(samples, torch.tensor(q, dtype=torch.long), torch.tensor(a, dtype=torch.long),
                   torch.tensor([type_index(s) for s in samples], dtype=torch.long))


class AVQADataset:
    """Questions with the features of their sampled seconds, read into preallocated batch buffers.

    ``batch(indices)`` writes each array of the batch once, read from the feature files (FeatureStore's
    pread) straight into preallocated buffers: audio [B,T,128], visual_posi and visual_nega [B,T,512,14,14],
    question [B,14], label, type and index [B].
    """

    def __init__(self, split: QASplit, audio: FeatureStore | None, visual: FeatureStore | None,
                 total_seconds: int, segments: int = 10, negatives: bool = False, seed: int = 1):
        self.split = split
        self.audio, self.visual = audio, visual
        self.total_seconds = total_seconds
        self.seconds = segment_seconds(total_seconds, segments) if total_seconds else np.arange(segments)
        self.negatives = negatives
        # a negative is one random second of another video: of all T, or of those computed (--used_seconds)
        self.negative_seconds = (visual.computed[visual.computed < total_seconds]
                                 if visual is not None and visual.computed is not None else None)
        self.seed = seed
        self.epoch = 0
        self.videos = sorted({s["video_id"] for s in split.samples})
        self._video_index = {v: i for i, v in enumerate(self.videos)}
        if negatives and len(self.videos) < 2:
            raise ValueError("negatives need at least two videos in the split")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.samples)

    def negatives_of(self, index: int, video_id: str) -> list[tuple[str, int]]:
        """(video, second) of one random second of another random video, per sampled second."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        own = self._video_index[video_id]
        seconds = self.total_seconds if self.negative_seconds is None else self.negative_seconds
        return [draw_negative(rng, self.videos, own, seconds) for _ in range(len(self.seconds))]

    def buffers(self, batch_size: int, pin: bool = False) -> dict[str, torch.Tensor]:
        T = len(self.seconds)
        out = {}
        if self.audio is not None:
            out["audio"] = torch.empty((batch_size, T, *AUDIO_SHAPE), pin_memory=pin)
        if self.visual is not None:
            out["visual_posi"] = visual_buffer(batch_size, T, pin=pin)
            if self.negatives:
                out["visual_nega"] = visual_buffer(batch_size, T, pin=pin)
        return out

    def batch(self, indices: Sequence[int], buffers: dict[str, torch.Tensor] | None = None) -> dict:
        """The batch of ``indices``; feature arrays are written into ``buffers`` when given."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        B = len(idx)
        bufs = buffers if buffers is not None else self.buffers(B)
        out = {k: v[:B] for k, v in bufs.items()}
        out.update({"question": self.split.questions[idx], "label": self.split.answers[idx],
                    "type": self.split.types[idx], "index": idx})
        for b, i in enumerate(idx.tolist()):
            vid = self.split.samples[i]["video_id"]
            if self.audio is not None:
                self.audio.read_into(out["audio"][b], vid, self.seconds)
            if self.visual is not None:
                self.visual.read_into(out["visual_posi"][b], vid, self.seconds)
                if self.negatives:
                    for t, (other, second) in enumerate(self.negatives_of(i, vid)):
                        self.visual.read_into(out["visual_nega"][b, t], other, second)
        return out


def real_videos(samples: list[dict]) -> list[str]:
    """Videos of a split in file order, without the dataset's composed ones ('sa', 'va', ... prefixes):
    the recordings grounding pre-training learns from (annotations.is_recording)."""
    return list(dict.fromkeys(s["video_id"] for s in samples if is_recording(s["video_id"])))


class GroundingDataset:
    """One item per (video, second) of the first ``seconds`` seconds of each video.

    The sound of second s with the frame of second s (label 1) and with a random one of the first
    ``seconds`` frames of another video (label 0): audio [B,2,128], visual [B,2,512,14,14].
    """

    def __init__(self, videos: list[str], audio: FeatureStore, visual: FeatureStore, seconds: int = 10,
                 seed: int = 1):
        if len(videos) < 2:
            raise ValueError("grounding needs at least two videos")
        self.videos, self.audio, self.visual = videos, audio, visual
        self.seconds, self.seed, self.epoch = seconds, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) * self.seconds

    def pair(self, index: int) -> tuple[str, int, str, int]:
        v, s = divmod(index, self.seconds)
        other, second = draw_negative(np.random.default_rng((self.seed, self.epoch, index)), self.videos, v, self.seconds)
        return self.videos[v], s, other, second

    def buffers(self, batch_size: int, pin: bool = False) -> dict[str, torch.Tensor]:
        return {"audio": torch.empty((batch_size, 2, *AUDIO_SHAPE), pin_memory=pin),
                "visual": visual_buffer(batch_size, 2, pin=pin)}

    def batch(self, indices: Sequence[int], buffers: dict[str, torch.Tensor] | None = None) -> dict:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        B = len(idx)
        bufs = buffers if buffers is not None else self.buffers(B)
        audio, visual = bufs["audio"][:B], bufs["visual"][:B]
        for b, i in enumerate(idx.tolist()):
            vid, s, other, neg_second = self.pair(i)
            self.audio.read_into(audio[b, 0], vid, s)
            audio[b, 1] = audio[b, 0]
            self.visual.read_into(visual[b, 0], vid, s)
            self.visual.read_into(visual[b, 1], other, neg_second)
        return {"audio": audio, "visual": visual, "label": torch.tensor([[1, 0]] * B), "index": idx}
