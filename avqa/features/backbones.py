"""Feature backbones (VGGish, ResNet-18 14x14 and pooled, R(2+1)D-18), their weights and inputs.

Every backbone loads the official weight files when given their path:
- VGGish: the official TensorFlow checkpoint ``vggish_model.ckpt`` (read without TensorFlow), or
  the state_dict of the common PyTorch port (``vggish-10086976.pth``, keys features.* and
  embeddings.*).
- ResNet-18: torchvision's ImageNet state_dict (``resnet18-5c106cde.pth``); a state_dict saved
  from the original AVST or grounding model (keys ``module.visual_net.*``) works too.
- R(2+1)D-18: torchvision's Kinetics-400 state_dict (``r2plus1d_18-91a641e6.pth``).
Without weights, a seeded random init is used: Kaiming (fan-in) for every convolution and linear
layer; every residual branch starts at zero (torchvision's zero_init_residual, so each block is an
identity and the features keep what is in each image cell); the other normalisation layers are
scaled so that their outputs have unit variance on a seeded noise probe. That keeps activations
at the scale of trained networks (the TF default init of VGGish, N(0, 0.01), collapses them to
zero). The caller logs and records which init was used.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

from ..utils import relative_hint, sha256, torch_load
from .tf_checkpoint import read_checkpoint

# ----------------------------------------------------------------------------- VGGish


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2, 2) as the largest of each 2x2 window's four phases: the same values, and VGGish runs
    faster on the CPU, where PyTorch's pooling of its wide first maps is slow (docs/speed.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., :x.shape[-2] // 2 * 2, :x.shape[-1] // 2 * 2]   # an odd last row or column is dropped, as there
        return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                             torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


class VGGish(nn.Module):
    """VGGish up to its 128-d embedding (ReLU after every layer, no PCA or quantisation).

    Parameter names are those of the common PyTorch port, so its state_dict loads directly.
    TF flattens NHWC before the first fully connected layer; so do we.
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width, convs in ((64, 1), (128, 1), (256, 2), (512, 2)):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            layers.append(MaxPool2x2())
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 128), nn.ReLU(inplace=True))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:   # [N, 96, 64]
        x = self.features(log_mel.unsqueeze(1))                 # [N, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).flatten(1)                    # NHWC order, as TF
        return self.embeddings(x)                               # [N, 128]


# TF-slim variable scope of each of our layers, in order
_VGGISH_TF_NAMES = {
    "features.0": "vggish/conv1", "features.3": "vggish/conv2",
    "features.6": "vggish/conv3/conv3_1", "features.8": "vggish/conv3/conv3_2",
    "features.11": "vggish/conv4/conv4_1", "features.13": "vggish/conv4/conv4_2",
    "embeddings.0": "vggish/fc1/fc1_1", "embeddings.2": "vggish/fc1/fc1_2", "embeddings.4": "vggish/fc2",
}


def vggish_state_dict_from_tf(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map TF-slim VGGish variables (HWIO conv kernels, [in, out] matrices) to our names."""
    sd = {}
    for ours, theirs in _VGGISH_TF_NAMES.items():
        if f"{theirs}/weights" not in tensors:
            raise KeyError(f"the checkpoint has no variable {theirs}/weights: is it a VGGish checkpoint?")
        w = torch.from_numpy(np.ascontiguousarray(tensors[f"{theirs}/weights"]))
        w = w.permute(3, 2, 0, 1) if w.ndim == 4 else w.t()
        sd[f"{ours}.weight"] = w.contiguous().float()
        sd[f"{ours}.bias"] = torch.from_numpy(np.asarray(tensors[f"{theirs}/biases"])).float()
    return sd


# ----------------------------------------------------------------------------- ResNet-18 and R(2+1)D


class ResNet18Features(nn.Module):
    """torchvision ResNet-18 trunk: layer4's map ([512,14,14], layer4 at stride 1) or its average."""

    def __init__(self, pooled: bool):
        super().__init__()
        self.net = torchvision.models.resnet18(weights=None)
        self.pooled = pooled
        if not pooled:
            self.net.layer4[0].conv1.stride = (1, 1)
            self.net.layer4[0].downsample[0].stride = (1, 1)
        self.net.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:        # [N, 3, 224, 224]
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))           # [N, 512, 14, 14] (stride 1) or 7x7
        return x.mean((2, 3)) if self.pooled else x


class R2Plus1D18Features(nn.Module):
    """torchvision R(2+1)D-18 without its classifier; each frame is a 1-frame clip."""

    def __init__(self):
        super().__init__()
        self.net = torchvision.models.video.r2plus1d_18(weights=None)
        self.net.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:        # [N, 3, 112, 112]
        return self.net(x.unsqueeze(2))                         # [N, 512]


# ----------------------------------------------------------------------------- inputs

MEAN_14 = (0.43216, 0.394666, 0.37645)
STD_14 = (0.22803, 0.22145, 0.216989)
MEAN_IMAGENET = (0.485, 0.456, 0.406)
STD_IMAGENET = (0.229, 0.224, 0.225)


def _resize_224(img: Image.Image) -> Image.Image:
    return TF.resize(img, [224, 224])


def _resize_crop_224(img: Image.Image) -> Image.Image:
    return TF.center_crop(TF.resize(img, 256), 224)


def _resize_112(img: Image.Image) -> Image.Image:
    return TF.resize(img, [112, 112])


@dataclass(frozen=True)
class Backbone:
    name: str
    description: str
    build: Callable[[], nn.Module]
    resize: Callable[[Image.Image], Image.Image]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    out_shape: tuple[int, ...]          # per frame or per second
    steps: str                          # the input preprocessing, in words (recorded in the metadata)
    input_size: int | None = None       # square frame side the network takes (None: audio)
    channels_last: bool = True          # 2-d convolutions run faster channels-last; R(2+1)D is 3-d
    # a network built by its own loader (CLIP, avqa.features.clip): (weights, seed) -> (model, weights record)
    make: Callable[[str | Path | None, int], tuple[nn.Module, dict]] | None = None

    @property
    def image(self) -> bool:
        """Image backbones: BatchNorm folded into the convolutions, seeded init checked on a noise probe."""
        return self.input_size is not None

    @property
    def has_batchnorm(self) -> bool:
        """The torchvision convolution nets, whose BatchNorm the runner folds (CLIP has none)."""
        return self.image and self.make is None

    def preprocessing(self) -> str:
        return self.steps + (f"; normalised with mean {list(self.mean)} std {list(self.std)}" if self.mean else "")


BACKBONES: dict[str, Backbone] = {
    "vggish": Backbone("vggish", "VGGish (AudioSet), 128-d embedding", VGGish, None, (), (), (128,),
                       "16 kHz mono, one 96x64 log-mel example per second"),
    "res18_14x14": Backbone("res18_14x14", "ResNet-18 (ImageNet), layer4 at stride 1",
                            lambda: ResNet18Features(pooled=False), _resize_224, MEAN_14, STD_14, (512, 14, 14),
                            "PIL bilinear resize to 224x224 (no crop)", 224),
    "res18": Backbone("res18", "ResNet-18 (ImageNet), global average pooled",
                      lambda: ResNet18Features(pooled=True), _resize_crop_224, MEAN_IMAGENET, STD_IMAGENET, (512,),
                      "PIL bilinear resize of the shorter side to 256, centre crop 224", 224),
    "r2plus1d_18": Backbone("r2plus1d_18", "R(2+1)D-18 (Kinetics-400)", R2Plus1D18Features, _resize_112,
                            MEAN_14, STD_14, (512,), "PIL bilinear resize to 112x112, each frame a 1-frame clip", 112,
                            channels_last=False),
}


def frames_to_tensor(frames: list[np.ndarray], backbone: Backbone) -> torch.Tensor:
    """Resize RGB uint8 frames as the original (PIL) did; [N, 3, H, W] uint8."""
    out = [torch.from_numpy(np.array(backbone.resize(Image.fromarray(f)))) for f in frames]
    return torch.stack(out).permute(0, 3, 1, 2).contiguous()


def normalise(batch_uint8: torch.Tensor, backbone: Backbone, dtype=torch.float32) -> torch.Tensor:
    x = batch_uint8.to(torch.float32).div_(255)
    mean = torch.tensor(backbone.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).to(dtype)


# ----------------------------------------------------------------------------- weights


def _strip_prefixes(sd: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    for p in prefixes:
        if any(k.startswith(p) for k in sd):
            sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
    return sd


def load_weights(name: str, model: nn.Module, path: str | Path) -> None:
    """Load an official weight file into a backbone; a clear error names what does not fit."""
    path = Path(path)
    if name == "vggish" and not path.suffix in (".pth", ".pt"):
        sd = vggish_state_dict_from_tf(read_checkpoint(path))
        target = model
    else:
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} not found{relative_hint(path)}")
        sd = torch_load(path, f"{name} weights are a PyTorch .pth file of the network's tensors (a state_dict), "
                              f"as torchvision and the PyTorch VGGish port ship them")
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
            raise ValueError(f"{path} holds no state_dict of tensors, so it is not a {name} weight file")
        sd = _strip_prefixes(sd, ("module.", "visual_net."))
        target = model if name == "vggish" else model.net
        if name == "vggish":
            sd = {k: v for k, v in sd.items() if not k.startswith("pproc")}  # the port's PCA step
        else:
            sd = {k: v for k, v in sd.items() if not k.startswith(("fc.", "conv1_a."))}
    missing, unexpected = target.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit the {name} backbone: missing {missing[:6]}"
                         f"{'...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
                         f"{'...' if len(unexpected) > 6 else ''}")


def _residual_ends(model: nn.Module) -> set[nn.Module]:
    """The last normalisation layer of every residual branch (torchvision's 2D and video blocks)."""
    ends = set()
    for m in model.modules():
        if isinstance(m, torchvision.models.resnet.BasicBlock):
            ends.add(m.bn2)
        elif isinstance(m, torchvision.models.video.resnet.BasicBlock):
            ends.add(m.conv2[1])
    return ends


def random_init(name: str, model: nn.Module, seed: int) -> None:
    """Seeded, variance-preserving init (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.normal_(0, math.sqrt(2.0 / fan_in), generator=g)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
    # every residual block starts as an identity (torchvision's zero_init_residual): the signal keeps
    # the colour and shape of what is in each cell instead of being scrambled by 16 random layers
    ends = _residual_ends(model)
    for bn in ends:
        nn.init.zeros_(bn.weight)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)) and m not in ends]
    if not norms:
        return
    # scale the other normalisation layers to unit output variance on a noise probe, in one forward pass:
    # each hook fixes its layer and hands the corrected output on (biases are zero, so this is exact)
    side = BACKBONES[name].input_size
    probe = torch.randn((2, 3, side, side), generator=g)

    def rescale(bn, _inputs, out):
        std = max(out.std().item(), 1e-6)
        bn.weight.div_(std)
        return out / std

    handles = [bn.register_forward_hook(rescale) for bn in norms]
    model.eval()
    with torch.no_grad():
        model(probe)
    for h in handles:
        h.remove()


def record_path(weights: str | Path) -> Path:
    """The record avqa.features.pretrain writes beside a weights file: x.pth -> x.json."""
    return Path(weights).with_suffix(".json")


def weights_record(weights: str | Path) -> dict:
    """The metadata's account of a loaded weights file: its path and sha256, and the data it was trained
    on where avqa.features.pretrain made it (its record beside it says so)."""
    info = {"weights": str(weights), "sha256": sha256(weights) if Path(weights).is_file() else None,
            "init": "pretrained"}
    record = record_path(weights)
    if record.is_file():
        try:
            info["trained_on"] = json.loads(record.read_text())["trained_on"]
        except (ValueError, KeyError):
            pass
    return info


def build(name: str, weights: str | Path | None, seed: int = 0) -> tuple[nn.Module, dict]:
    """A backbone in eval mode and a description of its weights for the metadata file."""
    spec = BACKBONES[name]
    if spec.make is not None:
        model, info = spec.make(weights, seed)
        return model.eval(), info
    if weights:
        # no random init for parameters the weights overwrite (VGGish's 72M take most of a second); a
        # parameter the file lacks is an error in load_weights, so none stays uninitialised
        with torch.device("meta"):
            model = spec.build()
        model = model.to_empty(device="cpu")
        load_weights(name, model, weights)
        info = weights_record(weights)
    else:
        model = spec.build()
        random_init(name, model, seed)
        info = {"weights": None, "init": f"random, seed {seed}"}
    return model.eval(), info


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm layers into the convolutions before them (same outputs, fewer passes)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    convs = (nn.Conv2d, nn.Conv3d)
    norms = (nn.BatchNorm2d, nn.BatchNorm3d)

    def last_conv(mod):
        if isinstance(mod, convs):
            return mod, None
        if isinstance(mod, nn.Sequential) and len(mod) and isinstance(mod[-1], convs):
            return mod[-1], mod
        return None, None

    for parent in list(model.modules()):
        # attribute pairs: conv1/bn1, conv2/bn2 (torchvision ResNet and its blocks)
        for i in (1, 2, 3):
            c, b = getattr(parent, f"conv{i}", None), getattr(parent, f"bn{i}", None)
            if isinstance(c, convs) and isinstance(b, norms):
                setattr(parent, f"conv{i}", fuse_conv_bn_eval(c, b))
                setattr(parent, f"bn{i}", nn.Identity())
        if isinstance(parent, nn.Sequential):
            for i in range(len(parent) - 1):
                conv, holder = last_conv(parent[i])
                if conv is not None and isinstance(parent[i + 1], norms):
                    fused = fuse_conv_bn_eval(conv, parent[i + 1])
                    if holder is None:
                        parent[i] = fused
                    else:
                        holder[-1] = fused
                    parent[i + 1] = nn.Identity()
    return model
