"""Synthetic-world stand-ins for TSPM's CLIP and ToMe-token backbones (``python -m avqa.features.pretrain
clip`` / ``vit``), taught on corpora of fresh scenes as pretrain.py teaches ResNet-18 and VGGish.

- clip: open_clip's CLIP of ``CONFIGS["standin"]`` (image ViT 4 x 192 at 224 px, text 4 x 64, the
  published 768-wide output), trained from scratch with CLIP's objective (symmetric InfoNCE with a
  learned logit scale) on one 320x240 frame of each scene, through the extractor's own preprocessing,
  paired with a sentence about that scene drawn afresh each epoch: a caption from its truth (the
  classes left to right, their counts, their sides), or one of its questions or TSPM QA prompts with
  its values in place. Sentences that are the same text are positives of each other (many prompts
  are shared by every scene). Saved as a state_dict in OpenAI's key layout, float16, which
  ``clip.load_clip`` reads as it reads OpenAI's file.
- vit: timm's ViT (patch 16, 224 px, width 192, 4 blocks) taught through the token merging the ToMe
  extractor runs (197 tokens to 14), from its class token and the mean of the other 13: the classes
  in view (multi-label) and the class at each of the four left-to-right places (or none), so that
  the merged tokens carry what is where. Saved in timm's key layout (no head), float16 safetensors,
  which ``vit.build_vit`` reads, its architecture from the shapes.

Held-out figures on a fresh corpus under ``seed + 1``, beside the same architecture untrained (CLIP:
its seeded init as it is, zero-shot; ViT: a linear probe on its features). The model's equations:
docs/model.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..annotations import INSTRUMENTS, NUMBERS
from .prompts import PromptError, qa_prompt, question_sentence
from ..utils import pick_device, progress
from . import clip as C
from . import vit as V
from .corpus import (CLASS_INDEX, autocast, batched, corpus, fresh_scene, heldout_figures, linear_probe, log_line,
                     multi_hot, scene_frame, train_multilabel)
from .tokens import merge_r
from .tome import TokenMerging, merge_layers

CLIP_ARCH = "standin"
FRAME_SIZE = (320, 240)     # the generator's default frame
PLACES = 4                  # left-to-right places of a scene (scene.MAX_POSITIONS)
NONE = len(INSTRUMENTS)     # the class index of an empty place
VIT_ARCH = {"patch_size": 16, "img_size": 224, "embed_dim": 192, "depth": 4, "mlp_ratio": 4.0}
TOKENS = 14                 # the tokens TSPM reads per frame


# ----------------------------------------------------------------------------- corpora


def _places(scene) -> np.ndarray:
    """The class index at each of the four left-to-right places, NONE where the scene has fewer."""
    out = np.full(PLACES, NONE, np.float32)
    for inst in scene.instances:
        out[inst.slot] = CLASS_INDEX[inst.cls]
    return out


def clip_example(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A 320x240 frame of a fresh scene as the CLIP frame extractor sees it ([224,224,3] uint8) and its
    classes in view (the sentences come from the scene, redrawn with fresh_scene)."""
    rng, scene = fresh_scene(seed, index)
    image, _ = scene_frame(scene, rng, FRAME_SIZE, C.preprocess(C.CONFIGS[CLIP_ARCH]["vision_cfg"]["image_size"]))
    return image, multi_hot(scene.classes_seen())


def vit_example(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A 320x240 frame of a fresh scene as the ToMe extractor sees it, and its labels: the classes in
    view (multi-hot, 22) then the class index at each left-to-right place (4, NONE if empty)."""
    rng, scene = fresh_scene(seed, index)
    image, _ = scene_frame(scene, rng, FRAME_SIZE, V.frame_resize(VIT_ARCH["img_size"]))
    return image, np.concatenate([multi_hot(scene.classes_seen()), _places(scene)])


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def captions(scene) -> list[str]:
    """Sentences that describe a scene from its truth: the order, the counts, the sides. The first
    is the left-to-right one (the held-out retrieval's caption)."""
    order = [i.cls for i in sorted(scene.instances, key=lambda i: i.slot)]
    counts = {c: order.count(c) for c in dict.fromkeys(order)}
    out = [f"From left to right: {_listed(order)}." if len(order) > 1 else f"A {order[0]} alone in the video.",
           f"There {'is' if scene.n == 1 else 'are'} {NUMBERS[scene.n]} instrument{'s' * (scene.n > 1)} in the "
           f"video: " + _listed([f"{NUMBERS[k]} {c}" for c, k in counts.items()]) + "."]
    sided = [i for i in scene.instances if i.side and counts[i.cls] == 1]
    if sided:
        out.append(_listed([f"the {i.cls} is {'in' if i.side == 'middle' else 'on'} the {i.side}" for i in sided])
                   .capitalize() + ".")
    out += [IN_VIEW.format(c) for c in counts]
    return out


IN_VIEW = "The {} is in this video."   # a caption, and the zero-shot sentence of each class


def named(sentence: str) -> set[str]:
    """The classes a sentence names."""
    words = set(sentence.rstrip(".?").replace(",", " ").split())
    return {c for c in INSTRUMENTS if c in words}


def scene_sentences(seed: int, index: int) -> tuple[list[str], list[str]]:
    """The captions of a corpus scene, and its questions and TSPM QA prompts with its values in place,
    those that name only classes in view (a question about an absent class would pair its name with
    a frame that does not show it)."""
    from ..synthetic.questions import ask
    _, scene = fresh_scene(seed, index)
    seen = set(scene.classes_seen())
    asked = []
    for row in ask(scene, np.random.default_rng((seed, index, 1)), per_clip=8):
        try:
            asked += [t for t in (question_sentence(row), qa_prompt(row)) if named(t) <= seen]
        except PromptError:  # pragma: no cover - every generated template has a prompt
            continue
    return captions(scene), asked


def _pick_sentence(rng: np.random.Generator, pool: tuple[list[str], list[str]], seen: list[str]) -> str:
    """A scene's sentence for one step: 40% IN_VIEW of one of its classes (shared by every scene that
    shows it, so these steps teach the class names), 30% another caption, 30% one of its questions
    and prompts (a caption where it has none)."""
    caps, asked = pool
    draw = rng.random()
    if draw < 0.4:
        return IN_VIEW.format(seen[rng.integers(len(seen))])
    if draw < 0.7 or not asked:
        return caps[rng.integers(len(caps))]
    return asked[rng.integers(len(asked))]


def positives(texts: list[str], classes: list[set[str]]) -> torch.Tensor:
    """[i, j] = 1 where sentence j is true of scene i as far as the batch knows: the same text as its
    own, or IN_VIEW of a class it shows (many scenes share a prompt or a class)."""
    in_view = {IN_VIEW.format(c): c for c in INSTRUMENTS}
    return torch.tensor([[a == b or in_view.get(b) in seen for b in texts] for a, seen in zip(texts, classes)],
                        dtype=torch.float32)


# ----------------------------------------------------------------------------- clip


def _pixels(batch: torch.Tensor, device: torch.device, mean, std) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> normalised float [N, 3, S, S] on the device."""
    x = batch.to(device).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(mean, device=device)[:, None, None]) / torch.tensor(std, device=device)[:, None, None]


def clip_figures(model: nn.Module, images: torch.Tensor, captions_: list[str], classes: list[list[str]],
                 device: torch.device) -> dict:
    """Held-out top-1 of image -> caption retrieval among the corpus's scenes (a hit when the top
    caption is the image's own text) and of zero-shot "which instrument is in view" (a hit when the
    top class of "The <class> is in this video." is one of the scene's)."""
    model = model.to(device).eval()
    with torch.inference_mode(), autocast(device):
        img = F.normalize(batched(lambda b: model.encode_image(_pixels(b, device, C.OPENAI_MEAN, C.OPENAI_STD)),
                                   images, 64), dim=-1)
        cap = F.normalize(batched(lambda t: model.encode_text(t.to(device)), C.tokenize(captions_), 256), dim=-1)
        names = F.normalize(batched(lambda t: model.encode_text(t.to(device)),
                                     C.tokenize([IN_VIEW.format(c) for c in INSTRUMENTS]), 256), dim=-1)
    top = (img @ cap.T).argmax(1).tolist()
    retrieval = np.mean([captions_[j] == captions_[i] for i, j in enumerate(top)])
    named = (img @ names.T).argmax(1).tolist()
    zero_shot = np.mean([INSTRUMENTS[k] in seen for k, seen in zip(named, classes)])
    return {"caption_retrieval_top1": round(100 * float(retrieval), 2),
            "zero_shot_instrument_top1": round(100 * float(zero_shot), 2), "scenes": len(images)}


def pretrain_clip(args: argparse.Namespace, log=log_line) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the stand-in CLIP contrastively; returns its float16 OpenAI-layout state_dict and figures."""
    device = torch.device(pick_device(args.device))
    images, _ = corpus(clip_example, args.seed, args.size, args.workers, "render frames")
    test_images, _ = corpus(clip_example, args.seed + 1, args.heldout, args.workers, "render held-out")
    pools = [scene_sentences(args.seed, i) for i in range(args.size)]
    classes = [set(fresh_scene(args.seed, i)[1].classes_seen()) for i in range(args.size)]
    test = [fresh_scene(args.seed + 1, i)[1] for i in range(args.heldout)]
    test_captions, test_classes = [captions(s)[0] for s in test], [s.classes_seen() for s in test]
    x, test_x = torch.from_numpy(images), torch.from_numpy(test_images)
    reference = clip_figures(C.random_clip(CLIP_ARCH, args.seed), test_x, test_captions, test_classes, device)

    model = C.random_clip(CLIP_ARCH, args.seed).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.98))
    steps = args.epochs * ((len(x) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(args.seed)
    picks = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        total, t0 = 0.0, time.time()
        for start in progress(range(0, len(x), args.batch), desc=f"epoch {epoch}/{args.epochs}", unit="batch",
                              leave=False):
            idx = order[start:start + args.batch].tolist()
            texts = [_pick_sentence(picks, pools[i], sorted(classes[i])) for i in idx]
            same = positives(texts, [classes[i] for i in idx]).to(device)
            with autocast(device):
                img = F.normalize(model.encode_image(_pixels(x[idx], device, C.OPENAI_MEAN, C.OPENAI_STD)).float(),
                                  dim=-1)
                txt = F.normalize(model.encode_text(C.tokenize(texts).to(device)).float(), dim=-1)
            logits = model.logit_scale.exp() * img @ txt.T
            loss = (F.cross_entropy(logits, same / same.sum(1, keepdim=True))
                    + F.cross_entropy(logits.T, same.T / same.T.sum(1, keepdim=True))) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, np.log(100))  # CLIP's cap of the learned temperature
            total += loss.item() * len(idx)
        log(f"epoch {epoch}: loss {total / len(x):.4f}, {len(x) / (time.time() - t0):.1f} scenes/s, "
            f"logit scale {model.logit_scale.exp().item():.1f}")
    own = clip_figures(model, test_x, test_captions, test_classes, device)
    state = {k: v.detach().half().cpu() for k, v in model.state_dict().items()}
    return state, {
        "trained_on": f"synthetic world: {args.size} frames of fresh scenes (seed {args.seed}), one per scene at "
                      f"320x240, each paired with sentences about its scene (captions from its truth, its "
                      f"questions and TSPM QA prompts)",
        "architecture": C.arch_name(C.config_of(model)) + f" {C.CONFIGS[CLIP_ARCH]}",
        "layers_trained": "all (from scratch; symmetric InfoNCE, learned logit scale)",
        "stored": "float16 state_dict in OpenAI's key layout (open_clip's OpenAI loader reads it)",
        "heldout": {"trained": own, "seeded random init (same architecture, zero-shot)": reference}}


# ----------------------------------------------------------------------------- vit


def vit_schedule(depth: int) -> list[int]:
    """The merge schedule the ToMe extractor runs on the stand-in: its default r over the fewest blocks
    that leave 14 tokens of 197 (tokens.merge_r's choice)."""
    tokens_in = (VIT_ARCH["img_size"] // VIT_ARCH["patch_size"]) ** 2 + 1
    r = merge_r(tokens_in, TOKENS, depth, None)
    return [r] * merge_layers(tokens_in, TOKENS, r, depth)


class TokenHead(nn.Module):
    """The merged tokens' class token and the mean of the others -> 22 class logits, then 4 x 23 place logits."""

    def __init__(self, merged: nn.Module, width: int):
        super().__init__()
        self.merged = merged
        self.head = nn.Linear(2 * width, len(INSTRUMENTS) + PLACES * (NONE + 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.merged(x)
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _split(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k = len(INSTRUMENTS)
    return logits[:, :k], logits[:, k:].reshape(len(logits), PLACES, NONE + 1)


def _place_accuracy(place_logits: np.ndarray, labels: np.ndarray) -> float:
    return round(100 * float((place_logits.argmax(-1) == labels[:, len(INSTRUMENTS):]).mean()), 2)


def pretrain_vit(args: argparse.Namespace, log=log_line) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the stand-in ViT through the extractor's token merging; returns its float16 timm state_dict and figures."""
    device = torch.device(pick_device(args.device))
    images, labels = corpus(vit_example, args.seed, args.size, args.workers, "render frames")
    test_images, test_labels = corpus(vit_example, args.seed + 1, args.heldout, args.workers, "render held-out")
    x, test_x, y = torch.from_numpy(images), torch.from_numpy(test_images), torch.from_numpy(labels)
    arch = V._architecture(V.DEFAULT_MODEL, VIT_ARCH)
    schedule = vit_schedule(arch["depth"])
    k = len(INSTRUMENTS)

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return _pixels(batch, device, (0.5,) * 3, (0.5,) * 3)

    def place_targets(lab: torch.Tensor) -> torch.Tensor:
        return F.one_hot(lab[:, k:].long(), NONE + 1).flatten(1).float()

    probe_n = min(len(x), 2000)
    log(f"reference: a linear probe on the merged tokens of the seeded random init ({probe_n} frames)")
    untrained = TokenHead(TokenMerging(_seeded_vit(arch, args.seed), schedule), arch["embed_dim"]).to(device).eval()
    with autocast(device):
        feats = [batched(lambda b: untrained.features(prepare(b)), t, 64) for t in (x[:probe_n], test_x)]
    probe_y = torch.cat([y[:probe_n, :k], place_targets(y[:probe_n])], dim=1)
    probe = linear_probe(feats[0], probe_y, feats[1])
    reference = heldout_figures(probe[:, :k], test_labels[:, :k])
    reference["place_accuracy"] = _place_accuracy(probe[:, k:].reshape(-1, PLACES, NONE + 1), test_labels)
    del untrained

    net = TokenHead(TokenMerging(_seeded_vit(arch, args.seed), schedule), arch["embed_dim"]).to(device)

    def loss_fn(logits: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        classes, places = _split(logits)
        return (F.binary_cross_entropy_with_logits(classes, lab[:, :k])
                + F.cross_entropy(places.flatten(0, 1), lab[:, k:].long().flatten()))

    train_multilabel(net, x, y, args.epochs, args.lr, args.batch, device, prepare, None, log, loss_fn,
                     weight_decay=0.05, order_seed=args.seed)
    net.eval()
    with autocast(device):
        logits = batched(lambda b: net(prepare(b)), test_x, 100)
    classes, places = _split(logits)
    own = heldout_figures(classes.numpy(), test_labels[:, :k])
    own["place_accuracy"] = _place_accuracy(places.numpy(), test_labels)
    state = {k_: v.detach().half().cpu().contiguous() for k_, v in net.merged.vit.state_dict().items()}
    return state, {
        "trained_on": f"synthetic world: {args.size} frames of fresh scenes (seed {args.seed}), one per scene at "
                      f"320x240, labelled with the classes in view and the class at each left-to-right place",
        "architecture": {"model_name": V.DEFAULT_MODEL, **arch, "merge_schedule": schedule},
        "layers_trained": "all (from scratch, through the extractor's token merging to 14 tokens)",
        "stored": "float16 safetensors in timm's key layout, without the training head",
        "heldout": {"trained (its own head)": own, "seeded random init (linear probe)": reference}}


def _seeded_vit(arch: dict, seed: int) -> nn.Module:
    """timm's ViT of ``arch`` with timm's init drawn from ``seed`` (no classifier)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return V.create(V.DEFAULT_MODEL, arch)
