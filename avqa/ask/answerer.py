"""The inference API: an AVST checkpoint and its backbones, loaded once, answering many (video, question)
pairs from the videos alone, through the code test mode and the extractors run (so the answer is the
one ``main_avst.py --mode test`` gives on the same question)."""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from .. import registry
from ..checkpoint import is_ours, load_file
from ..data import segment_seconds, visual_buffer
from ..features.network import Runner
from ..grounding_score import peak_cell
from ..media import audio_seconds_declared, read_sampled_frames
from ..utils import pick_device
from ..visualize import avst_sheet
from .features import Setting, backbone_setting, build_backbone, check_video, read_frames, read_sound
from .question import infer_template, read_question
from .trained import BACKBONES, Trained, load_trained

if TYPE_CHECKING:
    from PIL import Image

TOP = 5


@dataclass
class Answer:
    """One answer, what the model attended to, and what was said on the way."""

    video: Path
    question: str
    words: list[str]                       # the question as the model read it
    checkpoint: Path
    probabilities: dict[str, float]        # every answer, the most probable first
    question_type: tuple[str, str]         # (modality, kind) of the template it follows, or of the closest
    template: str
    template_matched: bool
    clip_seconds: int                      # T, the clip length the model reads
    seconds: list[int]                     # the sampled seconds, one per segment
    attention: dict[str, torch.Tensor]     # the model's maps (temporal_audio, temporal_visual [1,n], spatial ...)
    features: dict[str, dict]              # per backbone: the weights, their sha256 and init
    notes: list[str]                       # what differs from the checkpoint's training, and how the clip was read

    @property
    def answer(self) -> str:
        return next(iter(self.probabilities))

    @property
    def probability(self) -> float:
        return self.probabilities[self.answer]

    def as_dict(self) -> dict:
        """The answer as ``python -m avqa.ask --json`` writes it."""
        return {
            "video": str(self.video), "question": self.question, "read_as": " ".join(self.words) + "?",
            "checkpoint": str(self.checkpoint), "answer": self.answer, "probability": self.probability,
            "top": [{"answer": a, "probability": p} for a, p in list(self.probabilities.items())[:TOP]],
            "probabilities": dict(self.probabilities),
            "question_type": list(self.question_type), "template": self.template,
            "template_matched": self.template_matched, "clip_seconds": self.clip_seconds, "seconds": self.seconds,
            "temporal_attention": {"sound": self.attention["temporal_audio"][0].tolist(),
                                   "vision": self.attention["temporal_visual"][0].tolist()},
            "spatial_attention_peak": [list(peak_cell(m)) for m in self.attention["spatial"][0].numpy()],
            "features": self.features, "notes": self.notes,
        }


class Answerer:
    """An AVST checkpoint and the backbones its features were made with, built once.

    ``weights``: backbone -> weights file given in place of the recorded ones ("vggish", "res18_14x14");
    ``seconds``: T, in place of the checkpoint's features' T. The backbones are found and built on the
    first answer, or by ``prepare``.
    """

    def __init__(self, trained: Trained, weights: dict[str, str | None] | None = None, seconds: int | None = None,
                 device: str = "cpu"):
        self.trained = trained
        self.vocab = trained.vocab
        self._given = weights or {}
        self._asked_seconds, self._asked_device = seconds, device
        self._settings: dict[str, Setting] | None = None
        self._backbones: dict[str, tuple[Runner, list[str]]] = {}

    @staticmethod
    def details(r: dict) -> list[str]:
        """What python -m avqa.ask prints of an AVST answer after the answer and the top ones (``r``:
        ``Answer.as_dict()``): the question's type and template, and the temporal attention per sampled second."""
        lines = []
        qtype = " / ".join(r["question_type"])
        if r["template_matched"]:
            lines.append(f"question type: {qtype}   (template: {r['template']})")
        else:
            lines.append(f"question type: {qtype}?   no template matches; the closest is: {r['template']} (the model "
                         f"was trained on template questions only)")
        n = len(r["seconds"])
        lines.append(f"where the question looked, per sampled second of the first {r['clip_seconds']} s (temporal "
                     f"attention; uniform: {1 / n:.3f}):")
        lines.append("  second   sound  vision")
        ta, tv = r["temporal_attention"]["sound"], r["temporal_attention"]["vision"]
        top = max(max(ta), max(tv), 1e-12)
        for sec, a, v in zip(r["seconds"], ta, tv):
            lines.append(f"  {sec:>5}s  {a:6.3f}  {v:6.3f}   sound {'#' * round(12 * a / top):<12} "
                         f"vision {'#' * round(12 * v / top)}".rstrip())
        return lines

    @staticmethod
    def sheet(result: Answer) -> "Image.Image":
        """python -m avqa.ask --sheet: main_avst_vis.py's sheet of an answer (``attention_sheet``)."""
        return attention_sheet(result)

    def _resolve(self) -> None:
        """The backbones' settings, T, the sampled seconds and the device (once)."""
        if self._settings is not None:
            return
        settings = {name: backbone_setting(name, self._given.get(name), self.trained.features) for name in BACKBONES}
        recorded_t = {s.recorded["seconds"] for s in settings.values() if s.recorded and "seconds" in s.recorded}
        self.seconds = self._asked_seconds or (min(recorded_t) if recorded_t else 60)
        self.seconds_notes = []
        if self._asked_seconds and recorded_t and self._asked_seconds not in recorded_t:
            self.seconds_notes.append(f"--seconds {self._asked_seconds}: the checkpoint was trained on "
                                      f"{min(recorded_t)} s clips")
        self.rows = segment_seconds(self.seconds, self.trained.segments).tolist()
        self.device = pick_device(self._asked_device)
        self._settings = settings

    def _backbone(self, name: str) -> tuple[Runner, list[str]]:
        if name not in self._backbones:
            self._backbones[name] = build_backbone(name, self._settings[name], self.seconds, self.device)
        return self._backbones[name]

    def prepare(self) -> "Answerer":
        """Find and build the backbones now (a missing weights file is said here, not at the first answer)."""
        self._resolve()
        for name in BACKBONES:
            self._backbone(name)
        return self

    def _features(self, name: str, inputs: torch.Tensor) -> tuple[np.ndarray, Runner, list[str]]:
        runner, notes = self._backbone(name)
        return runner(inputs[self.rows]), runner, notes

    def clip_features(self, video: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Runner], list[str]]:
        """VGGish [n,128] and 14x14 [n,512,14,14] features of the sampled seconds of a T-second clip, the
        runners that made them, and the notes on the way.

        The sound is decoded first (a video without sound stops here, at once); VGGish is then built (on
        first use) and run in a second thread while the frames are decoded and run through ResNet-18:
        building VGGish is mostly reading and hashing its 275 MB, which leaves the cores to the picture.
        """
        sound, sound_notes = read_sound(video, self.seconds)
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            heard = pool.submit(self._features, "vggish", sound)
            frames, frame_notes = read_frames(video, self.seconds, self._settings["res18_14x14"].jpeg)
            visual, seen_by, visual_notes = self._features("res18_14x14", frames)
            audio, heard_by, audio_notes = heard.result()
        runners = {"vggish": heard_by, "res18_14x14": seen_by}
        return audio, visual, runners, audio_notes + visual_notes + sound_notes + frame_notes

    def answer(self, video: str | Path, question: str) -> Answer:
        """Answer ``question`` about ``video`` (a file with sound); an AskError names bad input."""
        words = read_question(question, self.vocab)
        video = Path(video)
        check_video(video)
        self._resolve()
        audio, visual, runners, clip_notes = self.clip_features(video)
        notes = self.seconds_notes + clip_notes  # the extractors' own words for a short or truncated clip
        length = audio_seconds_declared(video)
        if length is not None and length > self.seconds + 0.5:
            notes.append(f"{video}: {length:.1f} s long; the model reads its first {self.seconds} s, the clip length "
                         f"of its features (--seconds changes it)")
        self.trained.model.to(runners["vggish"].device)
        probs, maps = predict(self.trained, words, audio, visual)
        probs = probs.cpu()
        template, qtype, exact = infer_template(words)
        return Answer(video, question, words, self.trained.path,
                      {self.vocab.answers[i]: float(probs[i]) for i in torch.argsort(probs, descending=True).tolist()},
                      qtype, template, exact, self.seconds, [int(s) for s in self.rows],
                      {k: v.cpu() for k, v in maps.items()},
                      {name: {k: r.weights_info.get(k) for k in ("weights", "sha256", "init")}
                       for name, r in runners.items()}, notes)


def load_answerer(checkpoint: str | Path, label_train: str | None = None, **options):
    """A checkpoint (a .pt file) ready to answer, through the answerer of the family whose model it holds
    (avqa.registry); a file of no answering family (an original-format one, a damaged one) goes to the first
    registered family that answers, which says what is wrong with it. ``options``: that family's (AVST's:
    vggish_weights, res18_weights, seconds, device; see ``load_avst_answerer``)."""
    return answering_family(Path(checkpoint)).answerer(checkpoint, label_train, **options)


def answering_family(path: Path):
    """The registry entry that answers with the checkpoint ``path`` (see ``load_answerer``)."""
    answering = registry.answering()
    try:
        obj = load_file(path)
    except (ValueError, OSError):
        obj = None
    model = obj.get("model") if is_ours(obj) else None
    return answering.get(model) or next(iter(answering.values()))


def load_avst_answerer(checkpoint: str | Path, label_train: str | None = None, vggish_weights: str | None = None,
                       res18_weights: str | None = None, seconds: int | None = None, device: str = "cpu",
                       prepare: bool = True) -> Answerer:
    """An AVST checkpoint (a .pt file) and its backbones, ready to answer; see ``Answerer``.

    ``label_train``: the train annotations of an original-format checkpoint, which carries no vocabulary;
    ``prepare``: build the backbones now (False: on the first answer, as python -m avqa.ask does, so that a
    question the model cannot read is said first).
    """
    trained = load_trained(Path(checkpoint), label_train)
    answerer = Answerer(trained, {"vggish": vggish_weights, "res18_14x14": res18_weights}, seconds, device)
    return answerer.prepare() if prepare else answerer


@torch.no_grad()
def predict(trained: Trained, words: Sequence[str], audio: np.ndarray, visual: np.ndarray) -> tuple[torch.Tensor, dict]:
    """Answer probabilities [A] and the attention maps, from inputs laid out as the test loader lays them."""
    a = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    v = visual_buffer(1, len(visual))  # channels-last, as AVQADataset's batches
    v[0].copy_(torch.from_numpy(visual))
    q = torch.tensor([trained.vocab.word_ids(words)])
    logits, _, _, maps = trained.model(a, v, None, q, return_attention=True)
    return torch.softmax(logits.float(), dim=-1)[0], maps


def attention_sheet(result: Answer) -> "Image.Image":
    """main_avst_vis.py's sheet of an answer (a PIL image): the sampled frames under the model's attention."""
    frames, _ = read_sampled_frames(result.video, result.clip_seconds)
    return avst_sheet([frames[s] for s in result.seconds], result.seconds, result.attention, result.words,
                      f"predicted: {result.answer}    probability {result.probability:.2f}",
                      f"video {result.video.name}")
