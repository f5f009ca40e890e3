"""CLIP for TSPM's features: the frame features [T, D] and the text features of each question and of its
QA prompt [1, D] (D = 768 for ViT-L/14@336px), through open_clip.

The network is open_clip's ``CLIP`` with QuickGELU, the definition that loads OpenAI's files.
Weights: OpenAI's published ``ViT-L-14-336px.pt`` (a TorchScript archive) or a plain state_dict in
OpenAI's key layout; open_clip's OpenAI builder reads the architecture from the file's shapes, and
the tensors are then loaded again in float32 (the builder keeps OpenAI's float16 layers, which would
round a float32 file). Without weights: a seeded random model of a named architecture (``CONFIGS``).
Image preprocessing is OpenAI's: bicubic resize of the shorter side to the input size, centre crop,
CLIP mean and std. Frame features are ``encode_image`` without normalisation, as TSPM's extractor
saves them; text features are ``encode_text`` of the OpenAI BPE tokens (77), also unnormalised.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms.functional as TF
from PIL import Image

from ..utils import (atomic_write_text, clean_stale_temps, metadata_path, pick_device, progress, relative_hint,
                     run_lock, torch_load, user_errors)
from . import backbones as B
from .extract import one_writer
from .files import Report, save_npy, shard_of, valid_npy
from .metadata import COMPARED, check_metadata
from .network import Runner, weights_error

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
PUBLISHED = "ViT-L-14-336"

# open_clip model configs: the published model, and a small one for synthetic-world stand-ins (same
# output width, so TSPM reads the same shapes)
CONFIGS: dict[str, dict] = {
    PUBLISHED: {"embed_dim": 768,
                "vision_cfg": {"image_size": 336, "layers": 24, "width": 1024, "patch_size": 14},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12, "layers": 12}},
    "standin": {"embed_dim": 768,
                "vision_cfg": {"image_size": 224, "layers": 4, "width": 192, "patch_size": 16},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 4}},
}
# entries of an OpenAI file that are no parameters of the network
_NOT_PARAMETERS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


def config_of(model: nn.Module) -> dict:
    """The open_clip config of a CLIP built by open_clip (the numbers CONFIGS holds)."""
    v, t = model.visual, model
    return {"embed_dim": int(model.text_projection.shape[1]),
            "vision_cfg": {"image_size": int(v.image_size[0]), "layers": len(v.transformer.resblocks),
                           "width": int(v.conv1.out_channels), "patch_size": int(v.patch_size[0])},
            "text_cfg": {"context_length": int(t.positional_embedding.shape[0]),
                         "vocab_size": int(t.token_embedding.num_embeddings), "width": int(t.ln_final.weight.shape[0]),
                         "heads": int(t.transformer.resblocks[0].attn.num_heads), "layers": len(t.transformer.resblocks)}}


def arch_name(config: dict) -> str:
    """The CONFIGS name of ``config``, or its numbers in a short name (another ViT CLIP)."""
    for name, known in CONFIGS.items():
        if known == config:
            return name
    v, t = config["vision_cfg"], config["text_cfg"]
    return (f"ViT-{v['layers']}x{v['width']}-p{v['patch_size']}-{v['image_size']}"
            f"_text-{t['layers']}x{t['width']}_d{config['embed_dim']}")


def openai_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an OpenAI CLIP file: a TorchScript archive as published, or a state_dict in its
    key layout (also under 'state_dict', with or without 'module.')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found{relative_hint(path)}")
    try:
        with warnings.catch_warnings():  # torch marks TorchScript deprecated; OpenAI's file is one
            warnings.simplefilter("ignore")
            sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception:  # noqa: BLE001 - not TorchScript: a plain state_dict, or a file to refuse below
        sd = torch_load(path, "CLIP weights are OpenAI's ViT-L-14-336px.pt (TorchScript) or a state_dict "
                              "in its key layout")
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"{path} holds no state_dict of tensors, so it is not a CLIP weight file")
    sd = B._strip_prefixes(dict(sd), ("module.",))
    if "visual.proj" not in sd or "visual.conv1.weight" not in sd:
        raise ValueError(f"{path} is not a ViT CLIP in OpenAI's key layout (no visual.proj / visual.conv1.weight)")
    return sd


def load_clip(path: str | Path) -> nn.Module:
    """A float32 open_clip CLIP in eval mode from an OpenAI CLIP file (architecture from its shapes)."""
    from open_clip.model import build_model_from_openai_state_dict
    sd = openai_state_dict(path)
    params = {k: v for k, v in sd.items() if k not in _NOT_PARAMETERS}
    try:
        model = build_model_from_openai_state_dict(dict(params), cast_dtype=torch.float32).float()
        model.load_state_dict(params)  # again in float32: the builder's float16 layers round a float32 file
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"{path} does not fit open_clip's CLIP: {str(e).splitlines()[0][:300]}") from None
    return model.eval()


def random_clip(arch: str, seed: int) -> nn.Module:
    """open_clip's CLIP of ``CONFIGS[arch]`` with open_clip's own init, drawn from ``seed``."""
    from open_clip.model import CLIP
    cfg = CONFIGS[arch]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(cfg["embed_dim"], vision_cfg=dict(cfg["vision_cfg"]), text_cfg=dict(cfg["text_cfg"]),
                     quick_gelu=True)
    return model.eval()


def build_clip(weights: str | Path | None, seed: int = 0, arch: str = PUBLISHED) -> tuple[nn.Module, dict]:
    """A CLIP and the record of its weights for the metadata; with ``weights`` the file decides the
    architecture, otherwise ``arch`` (a CONFIGS name) with a seeded random init."""
    if weights:
        model = load_clip(weights)
        info = B.weights_record(weights)
    else:
        model = random_clip(arch, seed)
        info = {"weights": None, "init": f"random, seed {seed}"}
    info["architecture"] = arch_name(config_of(model))
    return model, info


class ClipImage(nn.Module):
    """CLIP's image tower: ``encode_image`` without normalisation, [N, 3, S, S] -> [N, D]."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.visual = clip.visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)


class ClipText(nn.Module):
    """CLIP's text tower: ``encode_text`` without normalisation, [N, 77] token ids -> [N, D]."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        clip.visual = None
        self.clip = clip

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)


def preprocess(size: int):
    """OpenAI CLIP's resize and crop of a PIL image (the normalisation follows on the tensor)."""
    def resize(img: Image.Image) -> Image.Image:
        return TF.center_crop(TF.resize(img, size, interpolation=TF.InterpolationMode.BICUBIC), size)
    return resize


def backbone(part: str, weights: str | Path | None, seed: int, arch: str) -> B.Backbone:
    """A Backbone of CLIP's image (``part`` 'image') or text ('text') tower, built now and registered in
    backbones.BACKBONES under its name, so the extractors' Runner takes it as any other backbone."""
    model, info = build_clip(weights, seed, arch)
    cfg = config_of(model)
    name = f"clip_{part}_{info['architecture']}"
    width = cfg["embed_dim"]
    if part == "image":
        side = cfg["vision_cfg"]["image_size"]
        net = ClipImage(model)
        spec = B.Backbone(name, f"CLIP {info['architecture']} image encoder (open_clip), encode_image, "
                                f"not normalised", lambda: net, preprocess(side), OPENAI_MEAN, OPENAI_STD, (width,),
                          f"PIL bicubic resize of the shorter side to {side}, centre crop {side}", side,
                          channels_last=False, make=lambda _weights, _seed: (net, info))
    else:
        net = ClipText(model)
        spec = B.Backbone(name, f"CLIP {info['architecture']} text encoder (open_clip), encode_text, "
                                f"not normalised", lambda: net, None, (), (), (1, width),
                          f"OpenAI CLIP BPE tokens (lower-cased, {cfg['text_cfg']['context_length']} per sentence)",
                          None, channels_last=False, make=lambda _weights, _seed: (net, info))
    B.BACKBONES[name] = spec
    return spec


def tokenize(sentences: Sequence[str], context_length: int = 77) -> torch.Tensor:
    """OpenAI CLIP's BPE token ids of each sentence, [N, context_length] (the vocabulary ships with open_clip)."""
    import open_clip
    return open_clip.tokenize(list(sentences), context_length=context_length)


# ----------------------------------------------------------------------------- text features per question id

SENTENCES = {("question", "intended"): "the question, its template values in place (TSPM's question extractor)",
             ("prompt", "intended"): "the QA prompt of the question's template (TSPM's prompt builder; avqa.tspm.prompts)",
             ("question", "release"): "the question as the release's extractor writes it: each <...> word replaced by "
                                      "the next character of the templ_values text (avqa.features.prompts)",
             ("prompt", "release"): "the QA prompt as the release writes it: 'e' where its exact template lookup "
                                    "misses (avqa.features.prompts)"}


def sentences_path(out_dir: Path) -> Path:
    """The question id -> sentence map beside a text feature folder: qst -> qst.sentences.json."""
    return out_dir.parent / f"{out_dir.name}.sentences.json"


def annotation_sentences(kind: str, files: Sequence[str | Path], variant: str = "intended") -> dict[str, str]:
    """Question id -> the sentence of ``kind`` ('question' or 'prompt') in ``variant`` ('intended' or
    'release', avqa.features.prompts) for every row of ``files``."""
    from ..annotations import AnnotationError, load_annotations, question_key
    from .prompts import PromptError, sentence_builder
    build = sentence_builder(kind, variant)
    out: dict[str, str] = {}
    for f in files:
        try:
            rows = load_annotations(f)
            for row in rows:
                key = question_key(row)
                text = build(row, f)
                if out.setdefault(key, text) != text:
                    raise SystemExit(f"--annotations {f}: question id {key} appears again with another "
                                     f"sentence ({out[key]!r}, then {text!r}); give files of one data set")
        except (FileNotFoundError, AnnotationError, PromptError) as e:
            raise SystemExit(f"--annotations: {e}") from None
    return out


@user_errors
@one_writer("--output_dir")
def extract_clip_text(kind: str, annotations: Sequence[str | Path], out_dir: Path, weights: str | None, seed: int,
                      arch: str | None, device: str | None, bf16: bool, float16: bool, overwrite: bool,
                      shard: tuple[int, int] | None = None, batch_size: int = 64, variant: str = "intended") -> Report:
    """CLIP text features of every question id in ``annotations``: ``<out_dir>/<question_id>.npy`` [1, D]
    (TSPM's extractors save [1, 768]), the sentence of ``kind`` in ``variant`` (SENTENCES) encoded. Each
    distinct sentence is encoded once; the sentences are kept in ``sentences_path(out_dir)``, and a file
    whose recorded sentence differs is redone. A folder made with the other variant is refused unless
    ``overwrite``."""
    sentences = annotation_sentences(kind, annotations, variant)
    keys = shard_of(sorted(sentences, key=_id_order), shard)
    device = pick_device(device)
    spec = checked_backbone("text", weights, seed, arch)
    runner = Runner(spec.name, weights, seed, device, bf16)
    report = Report(f"clip {kind}")  # timed from here: the network is built
    info = runner.weights_info
    dtype = np.float16 if float16 else np.float32
    meta = {"backbone": spec.name, "description": spec.description, "weights": info["weights"],
            "weights_sha256": info.get("sha256"), "init": info["init"], "trained_on": info.get("trained_on"),
            "architecture": info["architecture"], "sentence": SENTENCES[kind, variant],
            "sentences_file": sentences_path(out_dir).name, "shape_per_question": list(spec.out_shape),
            "dtype": "float16" if float16 else "float32", "precision": "bfloat16 compute" if bf16 else "float32",
            "preprocessing": spec.preprocessing(), "device": device, "torch": torch.__version__,
            "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    if info["weights"] is None:
        print(f"[clip {kind}] no --weights given: using a seeded random init (seed {seed}, {info['architecture']}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    check_metadata(out_dir, meta, overwrite, own=keys if shard else None, compared=(*COMPARED, "sentence"))
    clean_stale_temps(out_dir)
    book = sentences_path(out_dir)
    with run_lock(out_dir, "sentences", "--output_dir"):  # shards share the map: one at a time reads and rewrites it
        known = {} if overwrite or not book.is_file() else json.loads(book.read_text())
        todo = [k for k in keys
                if known.get(k) != sentences[k] or not valid_npy(out_dir / f"{k}.npy", spec.out_shape, dtype)]
        known.update(sentences)
        atomic_write_text(book, json.dumps(dict(sorted(known.items(), key=lambda kv: _id_order(kv[0]))), indent=0))
    report.skipped = len(keys) - len(todo)
    distinct = sorted({sentences[k] for k in todo})
    context = spec.build().clip.positional_embedding.shape[0]
    vectors: dict[str, np.ndarray] = {}
    for i in progress(range(0, len(distinct), batch_size), desc=f"clip {kind}", unit="batch"):
        part = distinct[i:i + batch_size]
        vectors.update(zip(part, runner(tokenize(part, context))))
    for k in todo:
        save_npy(out_dir / f"{k}.npy", vectors[sentences[k]][None], dtype)
        report.done += 1
    return report


def _id_order(key: str) -> tuple[int, str]:
    """Question ids in numeric order (they are decimal strings)."""
    return len(key), key


def checked_backbone(part: str, weights: str | None, seed: int, arch: str | None) -> B.Backbone:
    """backbone(), with a weights file that is missing or does not fit (or contradicts --arch) named."""
    try:
        spec = backbone(part, weights, seed, arch or PUBLISHED)
    except (FileNotFoundError, ValueError) as e:
        raise weights_error("--weights", e) from None
    found = spec.name.split("_", 2)[2]
    if weights and arch and found != arch:
        raise SystemExit(f"--arch {arch}: the --weights file {weights} holds a CLIP of architecture {found}; "
                         f"leave --arch out (the file decides) or give the matching weights")
    return spec

