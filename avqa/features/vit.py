"""The ViT behind the ToMe token features: timm's definition (``vit_large_patch16_384`` by default),
its weights read from a local file, or a seeded random init; and the frames' preprocessing.

timm is the library the release's extractor builds its model with, so the same definition gives
the published numerics. Weight files, in the formats timm publishes them:
- ``model.safetensors`` or ``pytorch_model.bin`` (a state_dict with timm's names) from the Hugging
  Face hub, e.g. ``timm/vit_large_patch16_384.augreg_in21k_ft_in1k``; a ``.pth`` state_dict too;
- the original JAX ``.npz`` (Google's AugReg release), read by timm's own converter.
The architecture is that of ``model_name``, with the patch size, image size, width, depth and MLP
width read from the file's shapes where they differ (a smaller stand-in ViT needs no name of its
own; its heads are width / 64, the ViTs' convention, unless the name's width matches). Nothing is
downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from ..utils import relative_hint, sha256, torch_load
from .backbones import Backbone, record_path

DEFAULT_MODEL = "vit_large_patch16_384"
HEAD_WIDTH = 64  # the width of one attention head in every published ViT size


def _timm():
    import timm
    return timm


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A timm ViT state_dict from a .safetensors, .bin or .pth file (``module.`` prefixes removed)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            sd = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - a damaged or foreign file
            raise ValueError(f"{path} is not a readable safetensors file ({e})") from None
    else:
        sd = torch_load(path, "a timm ViT state_dict (.pth or .bin), a .safetensors file or the original .npz")
        for key in ("state_dict", "model"):
            if isinstance(sd, dict) and isinstance(sd.get(key), dict):
                sd = sd[key]
    if not isinstance(sd, dict) or not sd or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"{path} holds no state_dict of tensors, so it is not a ViT weight file")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def shape_config(sd: dict[str, torch.Tensor], path: Path) -> dict:
    """The architecture a timm ViT state_dict's shapes give (patch, image size, width, depth, MLP)."""
    try:
        width, _, patch, _ = sd["patch_embed.proj.weight"].shape
        positions = sd["pos_embed"].shape[1] - (1 if "cls_token" in sd else 0)
        depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
        hidden = sd["blocks.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"{path} is not a timm ViT state_dict (no patch_embed.proj.weight, pos_embed and "
                         f"blocks.N.* tensors)") from None
    side = round(positions ** 0.5)
    return {"patch_size": patch, "img_size": side * patch, "embed_dim": width, "depth": depth,
            "mlp_ratio": hidden / width, "class_token": "cls_token" in sd}


def _architecture(model_name: str, overrides: dict) -> dict:
    """``model_name``'s timm arguments with ``overrides`` (heads follow the width unless it is the name's)."""
    timm = _timm()
    with torch.device("meta"):
        named = timm.create_model(model_name, pretrained=False, num_classes=0)
    arch = {"patch_size": named.patch_embed.patch_size[0], "img_size": named.patch_embed.img_size[0],
            "embed_dim": named.embed_dim, "depth": len(named.blocks), "num_heads": named.blocks[0].attn.num_heads,
            "mlp_ratio": named.blocks[0].mlp.fc1.out_features / named.embed_dim,
            "class_token": named.cls_token is not None}
    if overrides.get("embed_dim", arch["embed_dim"]) != arch["embed_dim"]:
        arch["num_heads"] = max(1, overrides["embed_dim"] // HEAD_WIDTH)
    arch.update(overrides)
    return arch


def create(model_name: str, arch: dict) -> nn.Module:
    """timm's ``model_name`` built with ``arch``, no classifier head."""
    try:
        return _timm().create_model(model_name, pretrained=False, num_classes=0, **arch)
    except RuntimeError as e:  # an unknown name
        raise ValueError(f"{model_name}: {e}") from None


def build_vit(model_name: str = DEFAULT_MODEL, weights: str | Path | None = None,
              seed: int = 0) -> tuple[nn.Module, dict]:
    """The ViT in eval mode and the record of its weights and architecture for the metadata file.

    ValueError or FileNotFoundError, naming the file, when the weights are missing or do not fit.
    """
    if not weights:
        arch = _architecture(model_name, {})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create(model_name, arch)  # timm's own init, from the seed
        return model.eval(), {"weights": None, "init": f"random, seed {seed}", "model_name": model_name,
                              "architecture": arch}
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found{relative_hint(path)}")
    if path.suffix == ".npz":
        arch = _architecture(model_name, {})
        model = create(model_name, arch)
        try:
            model.load_pretrained(str(path))
        except (KeyError, ValueError, RuntimeError, OSError) as e:
            raise ValueError(f"{path} does not fit {model_name} as timm reads the original .npz ({e}); "
                             f"name the architecture with --model_name") from None
    else:
        sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith("head.")}
        arch = _architecture(model_name, shape_config(sd, path))
        with torch.device("meta"):
            model = create(model_name, arch)
        model = model.to_empty(device="cpu")
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not fit {model_name} ({arch}): missing {missing[:6]}, "
                             f"unexpected {unexpected[:6]}")
    info = {"weights": str(path), "sha256": sha256(path), "init": "pretrained", "model_name": model_name,
            "architecture": arch}
    record = record_path(path)  # a stand-in trained by this project describes itself
    if record.is_file():
        try:
            info["trained_on"] = json.loads(record.read_text())["trained_on"]
        except (ValueError, KeyError):
            pass
    return model.eval(), info


def frame_resize(side: int) -> Callable[[Image.Image], Image.Image]:
    """The release's resize of a PIL frame for a ViT of input ``side``: bicubic resize of the shorter
    side to int(256 / 224 * side), centre crop ``side``."""
    resized = int(256 / 224 * side)

    def resize(img: Image.Image) -> Image.Image:
        return TF.center_crop(TF.resize(img, resized, interpolation=TF.InterpolationMode.BICUBIC), side)

    return resize


def frame_spec(vit: nn.Module, out_shape: tuple[int, ...], description: str) -> Backbone:
    """The frames' preprocessing for ``vit``, as the release's extractor does it: bicubic resize of the
    shorter side to int(256 / 224 * S), centre crop S, the model's mean and std (its timm config)."""
    side = vit.patch_embed.img_size[0]
    cfg = getattr(vit, "pretrained_cfg", None) or {}
    mean, std = tuple(cfg.get("mean", (0.5, 0.5, 0.5))), tuple(cfg.get("std", (0.5, 0.5, 0.5)))
    resized = int(256 / 224 * side)
    return Backbone("tome", description, lambda: vit, frame_resize(side), mean, std, out_shape,
                    f"PIL bicubic resize of the shorter side to {resized}, centre crop {side}", side,
                    channels_last=False)
