"""Ask AVST a question about one video: ``python -m avqa.ask VIDEO "QUESTION"``.

Without this, one question about one's own video takes five scripts over folders and an
annotation file written by hand. Here it all happens in memory for one clip, through the code
those scripts run, so the answer is the one ``main_avst.py --mode test`` gives on the same
question:
- the sound and the sampled frames are decoded and turned into VGGish and 14x14 features by the
  extractors' own loaders and backbone runner (avqa.features.extract), with the weights the
  checkpoint's features were made with: its record (``<checkpoint>_recorded.json``, or the
  metadata of its training run's feature folders) names them by sha256, or the seeded init;
  official weights given with --vggish_weights / --res18_weights take their place;
- the question is read with the checkpoint's vocabulary (an original-format checkpoint takes it
  from --label_train, as main_avst.py does) and matched to one of the 33 templates for its type;
- the checkpoint is loaded by avqa.checkpoint.load_trained_state, which refuses another model or
  vocabulary; --sheet draws main_avst_vis.py's sheet (avqa.visualize.avst_sheet).

It prints the answer, the top 5 with their probabilities, the question's type and its temporal
attention over the sampled seconds, for sound and for vision; --json writes the same for
programs. --template lists the templates and the words the checkpoint knows. Bad input is one
sentence: exit status 2 for a question the model cannot read (a word it does not know) or a flag
missing, 1 for a file (a video without sound, a file that is not a video, a checkpoint of another
model, an output path that is a folder), as everywhere in this project.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import difflib
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .annotations import (MAX_QUESTION_LEN, PAD, QUESTION_TYPES, TAG_VALUES, AnnotationError, Vocab, template_tags,
                          tokenize)
from .checkpoint import is_ours, is_original, load_trained_state, record_path as checkpoint_record, trained_path
from .data import segment_seconds, visual_buffer
from .features.backbones import BACKBONES as EXTRACTORS, record_path
from .features.extract import Job, Runner, _load_frames, _load_sound, _metadata
from .features.pretrain import DEFAULT_OUT
from .media import MediaError, audio_seconds_declared, read_sampled_frames
from .models import AVST
from .synthetic.questions import TEMPLATES
from .utils import (EXIT_CODES, USAGE, at_least, atomic_write_text, check_writable, metadata_path,
                    pick_device, sha256, torch_load, user_errors)
from .visualize import avst_sheet, save_png

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = "net_grd_avst/avst_models/"
# backbone -> (our flag for its weights, the training run's flag of its feature folder, avqa.features.pretrain's name)
BACKBONES = {"vggish": ("--vggish_weights", "audio_dir", "vggish"),
             "res18_14x14": ("--res18_weights", "video_res14x14_dir", "res18")}
LABELS = {"vggish": "VGGish", "res18_14x14": "ResNet-18"}
# the feature settings that must be those the checkpoint was trained with (the extractors' metadata rules)
COMPARED = ("weights_sha256", "init", "seconds", "precision", "preprocessing", "jpeg_roundtrip_quality")
TOP = 5


class AskError(Exception):
    """Bad input or a missing file: one sentence for the user; ``code`` is the exit status (EXIT_CODES)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- the checkpoint


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
        obj = torch_load(path)
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
        meta = load_trained_state(path, "avst", model, vocab)
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


# ----------------------------------------------------------------------------- the question


def read_question(text: str, vocab: Vocab) -> list[str]:
    """The question's words as the model reads them (the original's tokenisation), or an AskError
    naming each unknown word with the closest known ones.

    Forgiven on the way: a missing '?', extra spaces, a capital letter more or less (the first word
    takes its capital), and instrument names typed with a space ('acoustic guitar' for acoustic_guitar).
    """
    if "<" in text or ">" in text:
        raise AskError("write the question with its placeholders filled in (e.g. 'Is the violin louder than the "
                       "piano?'); python -m avqa.ask --template lists them and their words", USAGE)
    body = " ".join(text.split()).rstrip("?？").rstrip()
    if not body:
        raise AskError("the question is empty", USAGE)
    raw = tokenize({"question_content": body + "?", "templ_values": []})
    known = set(vocab.questions) - {PAD}
    words: list[str] = []
    i = 0
    while i < len(raw):
        pair = f"{raw[i]}_{raw[i + 1]}".lower() if i + 1 < len(raw) else ""
        if pair in known and raw[i] not in known:
            words.append(pair)
            i += 2
            continue
        w = raw[i]
        words.append(w if w in known else next((v for v in (w.lower(), w.capitalize()) if v in known), w))
        i += 1
    first = words[0][:1].upper() + words[0][1:]
    if first in known:  # the templates' questions all begin with a capital, a word of its own to the model
        words[0] = first
    unknown = list(dict.fromkeys(w for w in words if w not in known))
    if unknown:
        listed = sorted(known)
        parts = []
        for w in unknown:
            close = difflib.get_close_matches(w, listed, n=3, cutoff=0.6)
            parts.append(f"'{w}' (closest known: {', '.join(close)})" if close else f"'{w}' (no close known word)")
        raise AskError(f"the checkpoint's vocabulary ({len(known)} words) has no {'; no '.join(parts)}. Rephrase "
                       f"with known words: python -m avqa.ask --template lists the templates and the words it knows",
                       USAGE)
    if len(words) > MAX_QUESTION_LEN:
        raise AskError(f"the question has {len(words)} words; the model reads at most {MAX_QUESTION_LEN}", USAGE)
    return words


def template_words(text: str) -> list[str]:
    """A template's words as the original tokenises questions, each placeholder kept as its tag."""
    return tokenize({"question_content": text, "templ_values": template_tags(text)})


def infer_template(words: Sequence[str]) -> tuple[str, tuple[str, str], bool]:
    """The template the question follows and its type, or (False) the closest template."""
    def fits(word: str, token: str) -> bool:
        return word == token or word in TAG_VALUES.get(token, ())

    scored = []
    for text, modality, kind in TEMPLATES:
        tokens = template_words(text)
        if len(tokens) == len(words) and all(fits(w, t) for w, t in zip(words, tokens)):
            return text.rstrip(), (modality, kind), True
        tags = [t for t in tokens if t in TAG_VALUES]
        general = [next((t for t in tags if w in TAG_VALUES[t]), w) for w in words]
        scored.append((difflib.SequenceMatcher(None, general, tokens).ratio(), text.rstrip(), (modality, kind)))
    _, text, qtype = max(scored, key=lambda s: s[0])
    return text, qtype, False


def template_listing(vocab: Vocab) -> str:
    """The 33 templates by type, each placeholder's words this checkpoint knows, and all its words."""
    known = set(vocab.questions) - {PAD}
    lines = [f"The {len(TEMPLATES)} MUSIC-AVQA question templates, by type. Fill each <placeholder> with one of its "
             f"words below; (!) marks a template with a word this checkpoint does not know."]
    for qtype in QUESTION_TYPES:
        lines.append(f"  {' / '.join(qtype)}")
        for text, modality, kind in TEMPLATES:
            if (modality, kind) == qtype:
                plain = [w for w in template_words(text) if w not in TAG_VALUES]
                lines.append(f"    {text.rstrip()}{'  (!)' if any(w not in known for w in plain) else ''}")
    lines.append("Placeholders, with the words this checkpoint knows for them:")
    for tag, values in TAG_VALUES.items():
        have = [v for v in values if v in known]
        missing = [v for v in values if v not in known]
        text = f"{tag:<9} {', '.join(have) or '(none)'}" + (f"   (unknown: {', '.join(missing)})" if missing else "")
        lines += textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent=" " * 12)
    lines += textwrap.wrap(f"All {len(known)} words it knows: {', '.join(sorted(known, key=str.lower))}", 100,
                           subsequent_indent="  ")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- features


@dataclass
class Setting:
    """How one backbone is run: the extractors' flags, chosen from the checkpoint's record."""

    weights: str | None
    seed: int
    bf16: bool
    jpeg: int | None
    recorded: dict | None
    source: str | None


def weights_places(name: str, recorded: dict) -> list[Path]:
    """Where the weights a record names may be: the recorded path, then the synthetic backbone's place
    (each as given when absolute, else from the current folder and from the repository)."""
    out: list[Path] = []
    for place in filter(None, (recorded.get("weights"), DEFAULT_OUT[BACKBONES[name][2]])):
        for p in (Path(place),) if Path(place).is_absolute() else (Path.cwd() / place, REPO / place):
            if p.resolve() not in {q.resolve() for q in out}:
                out.append(p)
    return out


def weights_sha256(path: Path) -> str:
    """A weights file's sha256: from its own record (<name>.json, written by avqa.features.pretrain) when
    there, which saves hashing 275 MB; the runner hashes the file it loads anyway, and says if it differs."""
    try:
        digest = json.loads(record_path(path).read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        digest = None
    return digest or sha256(path)


def find_weights(name: str, recorded: dict) -> Path | None:
    """The weights file whose sha256 the record names, in one of ``weights_places``."""
    return next((p for p in weights_places(name, recorded)
                 if p.is_file() and weights_sha256(p) == recorded.get("weights_sha256")), None)


def rebuild_hint(name: str, wanted: str) -> str:
    """The command that makes exactly the file of sha256 ``wanted``, or that none here does."""
    from .features.pretrain import BUNDLED_VGGISH
    flag = BACKBONES[name][0]
    if name == "vggish":
        try:
            bundled = json.loads(record_path(BUNDLED_VGGISH).read_text())["weights"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            bundled = None
        if wanted == bundled:
            return (f"`python -m avqa.features.pretrain vggish --assemble` rebuilds exactly that file (byte for byte, "
                    f"in seconds) at {DEFAULT_OUT['vggish']}, replacing what is there (add --out FILE and give FILE "
                    f"with {flag} to keep it)")
    else:
        shipped = REPO / DEFAULT_OUT["res18"]
        try:
            ships = json.loads(record_path(shipped).read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            ships = None
        if wanted == ships:
            return f"it is shipped with the repository: restore it with `git checkout {DEFAULT_OUT['res18']}`"
    return (f"no command here rebuilds a file of that sha256 (training the backbone again gives other weights): find "
            f"that file and give it with {flag}")


def missing_weights(name: str, recorded: dict, source: str | None) -> AskError:
    """Which weights file the checkpoint's features were made with, what is here instead, and the fix."""
    wanted = str(recorded.get("weights_sha256"))
    places = weights_places(name, recorded)
    expected = recorded.get("weights") or DEFAULT_OUT[BACKBONES[name][2]]
    found = [f"{p} (sha256 {weights_sha256(p)})" for p in places if p.is_file()]
    instead = (f"found instead: {'; '.join(found)}" if found
               else f"no file at {', '.join(str(p) for p in places)}")
    return AskError(f"the {LABELS[name]} weights this checkpoint's features were made with are not here: "
                    f"{expected}, sha256 {wanted} (recorded in {source or 'its training run'}); {instead}. To fix "
                    f"it: {rebuild_hint(name, wanted)}.")


def backbone_setting(name: str, given: str | None, features: dict[str, tuple[dict, str]]) -> Setting:
    """The given weights, else those the checkpoint's record names (found by sha256), else its seeded init."""
    recorded, source = features.get(name, (None, None))
    bf16 = bool(recorded) and str(recorded.get("precision", "")).startswith("bfloat16")
    jpeg = recorded.get("jpeg_roundtrip_quality") if recorded else None
    if given or not recorded:
        return Setting(given, 0, bf16, jpeg, recorded, source)
    seeded = re.fullmatch(r"random, seed (\d+)", str(recorded.get("init", "")))
    if seeded:
        return Setting(None, int(seeded.group(1)), bf16, jpeg, recorded, source)
    found = find_weights(name, recorded)
    if found is None:
        raise missing_weights(name, recorded, source)
    return Setting(str(found), 0, bf16, jpeg, recorded, source)


def run_backbone(name: str, s: Setting, inputs: torch.Tensor, seconds: int,
                 device: str) -> tuple[np.ndarray, Runner, list[str]]:
    """Features of ``inputs`` from the extractors' runner, and a note if its settings are not the checkpoint's."""
    try:
        runner = Runner(name, s.weights, s.seed, device, s.bf16, flag=BACKBONES[name][0])
    except SystemExit as e:  # the runner's one sentence about a missing or foreign weights file
        raise AskError(str(e.code)) from None
    notes = []
    if s.recorded is None:
        how = s.weights or "a seeded random init (seed 0, as the extractors without weights)"
        notes.append(f"no record of the {LABELS[name]} features this checkpoint was trained with: using {how}; "
                     f"its answers mean something only if its features were made with the same weights "
                     f"({BACKBONES[name][0]})")
    else:
        meta = _metadata(name, runner, seconds, device, s.bf16)
        meta["jpeg_roundtrip_quality"] = s.jpeg if name == "res18_14x14" else None
        diffs = [f"{k} {s.recorded[k]!r} then, {meta.get(k)!r} now" for k in COMPARED
                 if k in s.recorded and s.recorded[k] != meta.get(k)]
        if diffs:
            notes.append(f"{LABELS[name]} features are not made as those this checkpoint was trained with "
                         f"({'; '.join(diffs)}; recorded in {s.source}): its answer may mean little")
    return runner(inputs), runner, notes


def read_sound(job: Job, seconds: int) -> tuple[torch.Tensor, list[str]]:
    """VGGish's input for T seconds, by the extractor's loader (short sound padded with silence, and said)."""
    try:
        return _load_sound(job, seconds)
    except MediaError as e:
        hint = ("AVST answers from what it hears as well as what it sees: give a video with sound"
                if "no audio" in str(e) else "give a video file (mp4, mkv, webm, ...)")
        raise AskError(f"{e}: {hint}") from None


def read_frames(job: Job, seconds: int, jpeg: int | None) -> tuple[torch.Tensor, list[str]]:
    """The 14x14 extractor's input, T frames at the 1 fps frame numbers (a short video repeats its last second, said)."""
    try:
        return _load_frames(job, seconds, EXTRACTORS["res18_14x14"], jpeg)
    except MediaError as e:
        raise AskError(f"{e}: give a video file (mp4, mkv, webm, ...)") from None


def clip_features(video: Path, seconds: int, rows: Sequence[int], settings: dict[str, Setting],
                  device: str) -> tuple[np.ndarray, np.ndarray, dict[str, Runner], list[str]]:
    """VGGish [n,128] and 14x14 [n,512,14,14] features of the sampled seconds ``rows`` of a T-second clip,
    the runners that made them, and the notes on the way.

    The sound is decoded first (a video without sound stops here, at once); VGGish is then built and
    run in a second thread while the frames are decoded and run through ResNet-18: building VGGish
    is mostly reading and hashing its 275 MB, which leaves the cores to the picture.
    """
    job, rows = Job(video.stem, video), list(rows)
    sound, sound_notes = read_sound(job, seconds)
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        heard = pool.submit(run_backbone, "vggish", settings["vggish"], sound[rows], seconds, device)
        frames, frame_notes = read_frames(job, seconds, settings["res18_14x14"].jpeg)
        visual, seen_by, visual_notes = run_backbone("res18_14x14", settings["res18_14x14"], frames[rows], seconds,
                                                     device)
        audio, heard_by, audio_notes = heard.result()
    runners = {"vggish": heard_by, "res18_14x14": seen_by}
    return audio, visual, runners, audio_notes + visual_notes + sound_notes + frame_notes


# ----------------------------------------------------------------------------- answering


@torch.no_grad()
def predict(trained: Trained, words: Sequence[str], audio: np.ndarray, visual: np.ndarray) -> tuple[torch.Tensor, dict]:
    """Answer probabilities [A] and the attention maps, from inputs laid out as the test loader lays them."""
    a = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    v = visual_buffer(1, len(visual))  # channels-last, as AVQADataset's batches
    v[0].copy_(torch.from_numpy(visual))
    q = torch.tensor([trained.vocab.word_ids(words)])
    logits, _, _, maps = trained.model(a, v, None, q, return_attention=True)
    return torch.softmax(logits.float(), dim=-1)[0], maps


def report_dict(video: Path, question: str, words: Sequence[str], trained: Trained, seconds: int,
                rows: Sequence[int], probs: torch.Tensor, maps: dict, notes: list[str],
                runners: dict[str, Runner]) -> dict:
    order = torch.argsort(probs, descending=True).tolist()
    answers = trained.vocab.answers
    template, qtype, exact = infer_template(words)
    spatial = maps["spatial"][0]
    return {
        "video": str(video), "question": question, "read_as": " ".join(words) + "?",
        "checkpoint": str(trained.path), "answer": answers[order[0]], "probability": float(probs[order[0]]),
        "top": [{"answer": answers[i], "probability": float(probs[i])} for i in order[:TOP]],
        "probabilities": {answers[i]: float(probs[i]) for i in order},
        "question_type": list(qtype), "template": template, "template_matched": exact,
        "clip_seconds": seconds, "seconds": [int(s) for s in rows],
        "temporal_attention": {"sound": maps["temporal_audio"][0].tolist(),
                               "vision": maps["temporal_visual"][0].tolist()},
        "spatial_attention_peak": [list(divmod(int(i), 14)) for i in spatial.argmax(dim=-1)],
        "features": {name: {k: r.weights_info.get(k) for k in ("weights", "sha256", "init")}
                     for name, r in runners.items()},
        "notes": notes,
    }


def format_report(r: dict) -> str:
    lines = []
    if r["read_as"] != " ".join(r["question"].split()).rstrip("?？").rstrip() + "?":
        lines.append(f"read as: {r['read_as']}")
    lines.append(f"answer: {r['answer']}   (probability {r['probability']:.4f})")
    lines.append(f"top {len(r['top'])}:")
    lines += [f"  {t['answer']:<16} {t['probability']:.4f}" for t in r["top"]]
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
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m avqa.ask", description=__doc__,
        epilog="example: python -m avqa.ask data/videos/90000008.mp4 \"Where is the last sounding instrument?\" "
               "--sheet sheet.png\n\n" + EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="the video (with sound) to ask about")
    p.add_argument("question", nargs="?", help="the question, in the words of one of the templates (--template)")
    p.add_argument("--template", action="store_true",
                   help="list the 33 templates, their placeholders and the words the checkpoint knows, and stop")
    p.add_argument("--model_save_dir", default=DEFAULT_MODEL_DIR,
                   help=f"folder of the checkpoint (default: {DEFAULT_MODEL_DIR}, the bundled one's)")
    p.add_argument("--checkpoint", default="avst",
                   help="<model_save_dir>/<checkpoint>.pt, or a path to a .pt file (default: avst)")
    p.add_argument("--label_train", default=None,
                   help="train annotations to build the vocabularies from: needed for original-format checkpoints "
                        "(ours carry theirs, and are checked against it when given)")
    p.add_argument("--vggish_weights", default=None,
                   help="VGGish weights (official vggish_model.ckpt or vggish-10086976.pth); default: those the "
                        "checkpoint's features were made with")
    p.add_argument("--res18_weights", default=None,
                   help="ResNet-18 weights (official resnet18-5c106cde.pth); default: those the checkpoint's "
                        "features were made with")
    p.add_argument("--seconds", type=at_least(1), default=None,
                   help="T, the clip length the model reads (default: the checkpoint's features' T; 60 for original "
                        "checkpoints)")
    p.add_argument("--sheet", default=None, metavar="PNG", help="also draw main_avst_vis.py's attention sheet here")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the answer as JSON here ('-': stdout, "
                                                                 "instead of the text)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    return p


def ask(args: argparse.Namespace) -> dict:
    """Answer ``args.question`` about ``args.video``; the report as a dict (notes go to stderr as they come)."""
    trained = load_trained(checkpoint_path(args.model_save_dir, args.checkpoint), args.label_train)
    words = read_question(args.question, trained.vocab)
    video = Path(args.video)
    if not video.is_file():
        raise AskError(f"{video}: no such file")
    for flag in ("sheet", "json"):  # before any work: a bad path is said in the words the user typed
        out = getattr(args, flag)
        if out and out != "-":
            if Path(out).is_dir():
                raise AskError(f"--{flag} {out} is a folder: give a file name, e.g. --{flag} "
                               f"{Path(out) / ('sheet.png' if flag == 'sheet' else 'answer.json')}")
            check_writable(Path(out).resolve().parent, f"--{flag}")
    settings = {name: backbone_setting(name, getattr(args, BACKBONES[name][0][2:]), trained.features)
                for name in BACKBONES}
    recorded_t = {s.recorded["seconds"] for s in settings.values() if s.recorded and "seconds" in s.recorded}
    seconds = args.seconds or (min(recorded_t) if recorded_t else 60)
    notes = []
    if args.seconds and recorded_t and args.seconds not in recorded_t:
        notes.append(f"--seconds {args.seconds}: the checkpoint was trained on {min(recorded_t)} s clips")
    rows = segment_seconds(seconds, trained.segments).tolist()
    audio, visual, runners, clip_notes = clip_features(video, seconds, rows, settings, pick_device(args.device))
    notes += clip_notes  # the extractors' own words for a short or truncated clip and how it is padded
    length = audio_seconds_declared(video)
    if length is not None and length > seconds + 0.5:
        notes.append(f"{video}: {length:.1f} s long; the model reads its first {seconds} s, the clip length of its "
                     f"features (--seconds changes it)")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    trained.model.to(runners["vggish"].device)
    probs, maps = predict(trained, words, audio, visual)
    maps = {k: v.cpu() for k, v in maps.items()}
    result = report_dict(video, args.question, words, trained, seconds, rows, probs.cpu(), maps, notes, runners)
    if args.sheet:
        frames, _ = read_sampled_frames(video, seconds)
        sheet = avst_sheet([frames[s] for s in rows], rows, maps, words,
                           f"predicted: {result['answer']}    probability {result['probability']:.2f}",
                           f"video {video.name}")
        save_png(sheet, Path(args.sheet))
    return result


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        if args.template:
            trained = load_trained(checkpoint_path(args.model_save_dir, args.checkpoint), args.label_train)
            print(template_listing(trained.vocab))
            return 0
        if not args.video or not args.question:
            p.error("give a VIDEO and a QUESTION (or --template to list the questions the model can read)")
        result = ask(args)
    except AskError as e:
        print(e, file=sys.stderr)
        return e.code
    text = json.dumps(result, indent=1)
    if args.json == "-":
        print(text)
    else:
        print(format_report(result))
        if args.json:
            atomic_write_text(args.json, text + "\n")
            print(f"json: {args.json}")
    if args.sheet:
        print(f"sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
