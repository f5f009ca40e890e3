"""Backbones pre-trained on the synthetic world: the embedded default's ImageNet and AudioSet.

On the real data AVST's backbones arrive knowing what instruments look like (ResNet-18, ImageNet)
and sound like (VGGish, AudioSet). A seeded random init knows neither, and from its features the
grounding pre-training cannot learn which sound belongs to which picture: on the synthetic default
it stays at chance. This module teaches each backbone the synthetic world's 22 classes on a
corpus of its own: scenes drawn by the generator's scene sampler under their own seed (so never
the clips of a generated set), rendered in memory.

    python -m avqa.features.pretrain res18    # -> feat_script/weights/resnet18_synthetic.pth (bundled)
    python -m avqa.features.pretrain vggish   # -> data/weights/vggish_synthetic.pth
    python -m avqa.features.pretrain vggish --assemble   # the same file from the shipped layer, in seconds
    python -m avqa.features.pretrain clip     # -> feat_script/weights/clip_synthetic.pt (bundled, TSPM)
    python -m avqa.features.pretrain vit      # -> feat_script/weights/vit_tokens_synthetic.safetensors (bundled)

- res18: one frame of each scene, labelled with the classes in view. ResNet-18 is trained from
  scratch with a multi-label linear head, layer4 at stride 2 as for ImageNet (the 14x14 extractor
  runs it at stride 1, as it does the official weights). Saved as torchvision's state_dict in
  float16, small enough to ship (22 MB); its training time: docs/synthetic.md.
- vggish: the ten one-second examples of each scene's sound, labelled with the classes playing in
  that second. VGGish keeps the seeded random init of its convolutions and first two fully
  connected layers (the features any VGGish without weights computes) and learns its embedding
  layer (fc2, 4096 -> 128) on top of them. Saved as the state_dict of the common PyTorch port. A
  full VGGish is 72 M parameters (288 MB), too large to ship, but all it adds to the seeded init is
  that one layer (0.5 M parameters): with ``--bundle`` the layer is also written on its own in
  float16 (1 MB, shipped as feat_script/weights/vggish_synthetic_embedding.pth), and
  ``assemble_vggish`` rebuilds the same full file, byte for byte, from it and the seed (the main
  job does so in a few seconds instead of training).

- clip, vit: TSPM's CLIP and ToMe-token backbones, small (avqa/features/standins.py says how).

The linear head used for training is dropped. Each weights file gets a record beside it
(``<name>.json``): its sha256, what it was trained on, the recipe, and held-out figures on a fresh
corpus under another seed, beside the same figure for the untrained backbone (a linear probe on its
features). The extractors load the files through the loaders of the official files
(``--weights``, ``--checkpoint``) and copy the record's ``trained_on`` into the features' metadata.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..annotations import INSTRUMENTS
from ..utils import EXIT_CODES, atomic_path, atomic_write_text, pick_device, sha256, user_errors
from . import backbones as B
from .corpus import (SCENE_SECONDS, autocast, batched, corpus, fresh_scene, heldout_figures, linear_probe, log_line,
                     multi_hot, scene_frame, train_multilabel)
from .logmel import SAMPLE_RATE, examples
from .weights import BUNDLED_VGGISH, DEFAULT_OUT, RECIPES

EMBEDDING = ("embeddings.4.weight", "embeddings.4.bias")  # VGGish's layer that pretrain_vggish trains


# ----------------------------------------------------------------------------- the corpora of two backbones

def frame_example(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame of a fresh scene as the 14x14 extractor sees it ([224,224,3] uint8), and its classes in view."""
    rng, scene = fresh_scene(seed, index)
    image, _ = scene_frame(scene, rng, None, B.BACKBONES["res18_14x14"].resize)
    return image, multi_hot(scene.classes_seen())


def sound_examples(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The VGGish examples of a fresh scene's sound ([10,96,64]) and the classes playing in each second."""
    from ..synthetic.render import scene_sound
    _, scene = fresh_scene(seed, index)
    mix, _ = scene_sound(scene, SAMPLE_RATE)
    pcm = np.round(mix.T * 32767).astype(np.int16)  # as the wav files the extractor reads
    labels = np.stack([multi_hot([i.cls for i in scene.instances if i.playing_at(s)]) for s in range(SCENE_SECONDS)])
    return examples(pcm, SAMPLE_RATE, SCENE_SECONDS, warn=False), labels


# ----------------------------------------------------------------------------- the two backbones


def pretrain_res18(args: argparse.Namespace, log=log_line) -> tuple[dict[str, torch.Tensor], dict]:
    """Train ResNet-18 to name the classes in view; returns its float16 state_dict (no fc) and figures."""
    import torchvision
    device = torch.device(pick_device(args.device))
    spec = B.BACKBONES["res18_14x14"]
    images, labels = corpus(frame_example, args.seed, args.size, args.workers, "render frames")
    test_images, test_labels = corpus(frame_example, args.seed + 1, args.heldout, args.workers, "render held-out")
    x = torch.from_numpy(images).permute(0, 3, 1, 2)              # [N, 3, 224, 224] uint8, channels-last in memory
    test_x = torch.from_numpy(test_images).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels)

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return B.normalise(batch.to(device), spec).contiguous(memory_format=torch.channels_last)

    def flip_half(batch: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.rand(len(batch), 1, 1, 1, device=batch.device) < 0.5, batch.flip(3), batch)

    probe_n = min(len(x), 2000)
    log(f"reference: a linear probe on the frame averages of the seeded random init's 14x14 features "
        f"({probe_n} frames)")
    untrained = B.build("res18_14x14", None, 0)[0].to(device, memory_format=torch.channels_last)
    with autocast(device):
        feats = [batched(lambda b: untrained(prepare(b)).mean((2, 3)), t, 64) for t in (x[:probe_n], test_x)]
    reference = heldout_figures(linear_probe(feats[0], y[:probe_n], feats[1]), test_labels)
    del untrained

    torch.manual_seed(args.seed)
    net = torchvision.models.resnet18(num_classes=len(INSTRUMENTS)).to(device, memory_format=torch.channels_last)
    train_multilabel(net, x, y, args.epochs, args.lr, args.batch, device, prepare, flip_half, log)
    net.eval()
    with autocast(device):
        own = heldout_figures(batched(lambda b: net(prepare(b)), test_x, 100).numpy(), test_labels)
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in net.state_dict().items()
             if not k.startswith("fc.")}
    if not all(torch.isfinite(v.float()).all() for v in state.values()):
        raise SystemExit("the trained weights do not fit in float16 (non-finite values); nothing written")
    return state, {"trained_on": f"synthetic world: {args.size} frames of fresh scenes (seed {args.seed}), one "
                                 f"per scene, labelled with the classes in view",
                   "layers_trained": "all (from scratch; layer4 at stride 2, as ImageNet's ResNet-18)",
                   "stored": "float16, without the classifier (fc)",
                   "heldout": {"trained (its own head)": own, "seeded random init (linear probe)": reference}}


def pretrain_vggish(args: argparse.Namespace, log=log_line) -> tuple[dict[str, torch.Tensor], dict]:
    """Train VGGish's embedding layer to name the classes playing in each second (lower layers: seeded init)."""
    device = torch.device(pick_device(args.device))
    sounds, labels = corpus(sound_examples, args.seed, args.size, args.workers, "synthesise sounds")
    test_sounds, test_labels = corpus(sound_examples, args.seed + 1, args.heldout, args.workers, "synthesise held-out")
    x, test_x = (torch.from_numpy(a.reshape(-1, *a.shape[2:])) for a in (sounds, test_sounds))
    y, test_y = (torch.from_numpy(a.reshape(-1, a.shape[-1])) for a in (labels, test_labels))
    model = B.build("vggish", None, args.init_seed)[0].to(device)
    lower = lambda b: model.embeddings[:4](model.features(b.to(device).unsqueeze(1)).permute(0, 2, 3, 1).flatten(1))
    embedding = nn.Sequential(model.embeddings[4], model.embeddings[5])   # fc2 4096 -> 128, ReLU: what is learnt
    log(f"features of the fixed lower layers for {len(x)} + {len(test_x)} one-second examples")
    with autocast(device):
        h, test_h = batched(lower, x, 256), batched(lower, test_x, 256)
    with torch.no_grad():
        untrained = [embedding(t.to(device)).cpu() for t in (h, test_h)]
    reference = heldout_figures(linear_probe(untrained[0], y, untrained[1]), test_y.numpy())
    torch.manual_seed(args.seed)
    head = nn.Linear(128, len(INSTRUMENTS)).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in embedding.parameters():
        p.requires_grad_(True)
    net = nn.Sequential(embedding, head)
    train_multilabel(net, h, y, args.epochs, args.lr, args.batch, device, lambda b: b.to(device), None, log)
    net.eval()
    with torch.no_grad():
        own = heldout_figures(net(test_h.to(device)).cpu().numpy(), test_y.numpy())
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if args.bundle:  # what is saved is what the float16 bundle assembles into
        state.update({k: state[k].half().float() for k in EMBEDDING})
    return state, {"trained_on": f"synthetic world: {args.size * SCENE_SECONDS} one-second sounds of {args.size} "
                                 f"fresh scenes (seed {args.seed}), labelled with the classes playing",
                   "layers_trained": f"the embedding layer (embeddings.4, 4096 -> 128); the others keep the seeded "
                                     f"random init (seed {args.init_seed}) of the extractor",
                   "stored": "float32 (the embedding layer rounded to float16 where --bundle), the PyTorch port's "
                             "parameter names",
                   "heldout": {"trained (its own head)": own, "seeded random init (linear probe)": reference}}


def _standin(name: str) -> Callable:
    def pretrain(args: argparse.Namespace, log=log_line) -> tuple[dict[str, torch.Tensor], dict]:
        from . import standins
        return getattr(standins, f"pretrain_{name}")(args, log)
    return pretrain


PRETRAIN = {"res18": pretrain_res18, "vggish": pretrain_vggish, "clip": _standin("clip"), "vit": _standin("vit")}


def save_state(state: dict, path: Path) -> None:
    """torch.save (safetensors for a .safetensors path), atomically, with the same bytes for the same
    state (a file's name would go into torch's zip)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save
        data = save(state)
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def assemble_vggish(layer: str | Path, out: str | Path) -> dict:
    """The full VGGish weights file from a bundled embedding layer and the seeded init it was trained on.

    Writes ``out`` and its record, and returns the record; ``matches_bundle`` says whether the file
    is byte for byte the one the bundle was made with (another torch may draw another random init).
    """
    layer, out = Path(layer), Path(out)
    bundle = json.loads(B.record_path(layer).read_text())
    trained = torch.load(layer, map_location="cpu", weights_only=True)
    state = dict(B.build("vggish", None, bundle["init_seed"])[0].state_dict())   # a plain dict, as pretrain saves
    state.update({k: trained[k].float() for k in EMBEDDING})
    save_state(state, out)
    load_check("vggish", out)
    record = {**bundle["weights"], "file": out.name, "sha256": sha256(out), "bytes": out.stat().st_size,
              "assembled_from": f"{layer.name} (sha256 {bundle['sha256']}) and the seeded init "
                                f"(seed {bundle['init_seed']}), by avqa.features.pretrain.assemble_vggish"}
    record["matches_bundle"] = record["sha256"] == bundle["weights"]["sha256"]
    atomic_write_text(B.record_path(out), json.dumps(record, indent=1))
    return record


def load_check(backbone: str, path: Path) -> None:
    """The written file must load through the loader of the official files."""
    if backbone == "clip":
        from .clip import load_clip
        load_clip(path)
    elif backbone == "vit":
        from .vit import build_vit
        build_vit(weights=path)
    else:
        B.build("res18_14x14" if backbone == "res18" else "vggish", path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m avqa.features.pretrain", description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("backbone", choices=sorted(PRETRAIN), help="which backbone to train")
    p.add_argument("--out", default=None, help="weights file to write; its record goes beside it as .json "
                                               "(default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_OUT.items())
                                               + ")")
    p.add_argument("--size", type=int, default=None,
                   help="corpus size: frames (res18, default 8000), scenes of 10 one-second sounds (vggish, 2000), "
                        "scenes of one frame (clip 3000, vit 6000)")
    p.add_argument("--heldout", type=int, default=None,
                   help="held-out corpus, drawn with --seed + 1 (res18 / vggish / clip / vit: 500 / 60 / 300 / 300)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the corpus (3 / 20 / 3 / 6)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of the one-cycle schedule (2e-3 / 3e-3 / 3e-4 / 2e-3)")
    p.add_argument("--batch", type=int, default=None, help="batch size (64 / 64 / 32 / 64)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the corpus and of the init (20221 / 20222 / 20223 / 20224)")
    p.add_argument("--init_seed", type=int, default=0,
                   help="vggish: seed of the fixed lower layers, the extractor's random init (default: 0)")
    p.add_argument("--bundle", default=None, metavar="PATH",
                   help="vggish: also write the trained embedding layer alone, in float16, to PATH (with its record), "
                        f"from which assemble_vggish rebuilds --out byte for byte; shipped: {BUNDLED_VGGISH.name}")
    p.add_argument("--assemble", action="store_true",
                   help="vggish: instead of training, rebuild --out from the trained layer (--bundle, default the "
                        f"shipped {BUNDLED_VGGISH.name}) and the seeded init, in seconds")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--workers", type=int, default=2, help="processes that render the corpus (default: 2)")
    args = p.parse_args(argv)
    if (args.bundle or args.assemble) and args.backbone != "vggish":
        p.error("--bundle and --assemble are for vggish (the other files are small enough to ship whole)")
    for k, v in RECIPES[args.backbone].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if min(args.size, args.heldout, args.epochs, args.batch, args.workers) < 1 or args.lr <= 0:
        p.error("--size, --heldout, --epochs, --batch and --workers must be at least 1, --lr above 0")
    args.out = Path(args.out or DEFAULT_OUT[args.backbone])
    return args


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    if args.assemble:
        layer = Path(args.bundle) if args.bundle else BUNDLED_VGGISH
        if not layer.is_file():
            raise SystemExit(f"--assemble: {layer} not found (restore it with git checkout, or train: drop --assemble)")
        record = assemble_vggish(layer, args.out)
        print(f"{args.out} ({record['bytes'] / 2**20:.1f} MB, sha256 {record['sha256'][:16]}...): the seeded init "
              f"with the trained layer of {layer}, in {time.time() - t0:.1f} s"
              + ("" if record["matches_bundle"] else f"\nWARNING: not byte for byte the file the layer was made with: "
                 f"this torch ({torch.__version__}) draws another seeded init, so the features, and the bundled AVST's "
                 f"figure, will differ; python -m avqa.features.pretrain vggish teaches one on this torch"))
        return 0
    state, figures = PRETRAIN[args.backbone](args)
    save_state(state, args.out)
    try:
        load_check(args.backbone, args.out)
    except Exception:
        args.out.unlink()
        raise
    record = {"backbone": args.backbone, "file": args.out.name, "sha256": sha256(args.out),
              "bytes": args.out.stat().st_size, **figures,
              "recipe": {k: getattr(args, k) for k in ("size", "heldout", "epochs", "lr", "batch", "seed")}
                        | ({"init_seed": args.init_seed} if args.backbone == "vggish" else {}),
              "command": "python -m avqa.features.pretrain " + " ".join(sys.argv[1:] if argv is None else argv),
              "torch": torch.__version__, "seconds": round(time.time() - t0, 1)}
    atomic_write_text(B.record_path(args.out), json.dumps(record, indent=1))
    if args.bundle:
        bundle = Path(args.bundle)
        save_state({k: state[k].half() for k in EMBEDDING}, bundle)
        atomic_write_text(B.record_path(bundle), json.dumps(
            {"backbone": "vggish (embedding layer only)", "file": bundle.name, "sha256": sha256(bundle),
             "bytes": bundle.stat().st_size, "init_seed": args.init_seed, "weights": record}, indent=1))
        print(f"bundle: {bundle} ({bundle.stat().st_size / 2**20:.1f} MB), which assembles into {args.out.name}")
    print(f"{args.out} ({record['bytes'] / 2**20:.1f} MB, sha256 {record['sha256'][:16]}...), in {record['seconds']} s")
    for name, f in figures["heldout"].items():
        if "mAP" in f:
            print(f"  held-out, {name}: mAP {f['mAP']:.2f}%, exact class set {f['exact_set']:.2f}% "
                  f"({f['examples']} examples)" + (f", place accuracy {f['place_accuracy']:.2f}%"
                                                   if "place_accuracy" in f else ""))
        else:
            print(f"  held-out, {name}: image -> caption top-1 {f['caption_retrieval_top1']:.2f}%, zero-shot "
                  f"instrument in view top-1 {f['zero_shot_instrument_top1']:.2f}% ({f['scenes']} scenes)")
    print(f"record: {B.record_path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
