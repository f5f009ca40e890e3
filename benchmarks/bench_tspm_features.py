"""TSPM's feature extractors on this CPU beside its roofline, and the real data set computed on one GPU.

For each network TSPM's features come from (CLIP's image and text towers, the ToMe ViT with token
merging), in the published size with seeded random weights (speed does not depend on the values) and
in the synthetic-world stand-in's size read from the shipped file (feat_script/weights/):

- FLOPs per frame (per sentence for text), counted by torch.utils.flop_counter, a multiply-add = 2;
- frames per second here, float32 and bfloat16 (weights and inputs, as the extractors' --bf16), best of
  --repeats timed calls on a batch;
- the share of this CPU's roofline that reaches: the roofline is the best rate of a large square
  matrix product in the same dtype on the same threads, measured in this run (the networks are
  matrix products; attention and the MLP of a ViT sit well above the memory-bound knee);
- the real MUSIC-AVQA set: 9,288 videos x 60 frames (CLIP) or x 10 frames (ToMe), and 45,867
  questions x 2 sentences: hours at this CPU's rate, and minutes on one GPU at --gpu_tflops x
  --achieved (computed from the FLOPs, not measured);
- the default synthetic set: 480 clips x 10 frames for each image extractor, seconds at this rate.

    python benchmarks/bench_tspm_features.py              # about 3 minutes on 2 cores
    python benchmarks/bench_tspm_features.py --skip_published   # the stand-ins and the roofline only
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from avqa.features import clip as C
from avqa.features.tokens import merge_plan, merge_r
from avqa.features.tome import TokenMerging
from avqa.features.vit import DEFAULT_MODEL, build_vit
from avqa.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
CLIP_STANDIN = ROOT / "feat_script/weights/clip_synthetic.pt"
VIT_STANDIN = ROOT / "feat_script/weights/vit_tokens_synthetic.safetensors"
VIDEOS, CLIP_FRAMES, TOKEN_FRAMES, QUESTIONS = 9288, 60, 10, 45867
DEFAULT_SET_FRAMES = 480 * 10
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def best_rate(call: Callable[[], None], items: int, repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` calls, after one warm-up call."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return items / best


def roofline(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matrix product in ``dtype``: what this CPU's cores can reach."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return best_rate(lambda: torch.mm(a, b), 2 * n ** 3, repeats) / 1e9


def counted_flops(net: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one item. With autograd on and attention in plain matrix products: the fused kernels
    (nn.MultiheadAttention's inference path, the CPU's flash attention) are invisible to the counter."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with FlopCounterMode(display=False) as counter, torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        net(x)
    return counter.get_total_flops()


class Text(torch.nn.Module):
    """CLIP's text tower as a module of its own (encode_text of token ids)."""

    def __init__(self, clip: torch.nn.Module):
        super().__init__()
        self.clip = clip

    def parameters_of_tower(self) -> int:
        return sum(q.numel() for q in self.clip.parameters()) - sum(q.numel() for q in self.clip.visual.parameters())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)


def networks(skip_published: bool) -> list[tuple[str, torch.nn.Module, Callable[[int], torch.Tensor], int]]:
    """(label, network, batch maker, items of the real data set)."""
    out = []
    clips = [] if skip_published else [("CLIP ViT-L/14@336px", C.random_clip(C.PUBLISHED, 0))]
    clips.append((f"CLIP stand-in ({CLIP_STANDIN.name})", C.load_clip(CLIP_STANDIN)))
    sentence = C.tokenize(["The cello on the left is playing longer than the piano."])
    for label, clip in clips:
        side = clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple) else clip.visual.image_size
        out.append((f"{label}, image", clip.visual.eval(), lambda b, s=side: torch.randn(b, 3, s, s),
                    VIDEOS * CLIP_FRAMES))
        out.append((f"{label}, text", Text(clip).eval(), lambda b: sentence.repeat(b, 1), 2 * QUESTIONS))
    vits = [] if skip_published else [("ToMe ViT-L/16@384", None)]
    vits.append((f"ToMe stand-in ({VIT_STANDIN.name})", VIT_STANDIN))
    for label, weights in vits:
        vit, _ = build_vit(DEFAULT_MODEL, weights, seed=0)
        tokens_in = vit.patch_embed.num_patches + 1
        r = merge_r(tokens_in, 14, len(vit.blocks), None)
        merged = TokenMerging(vit, [r] * merge_plan(tokens_in, 14, r, len(vit.blocks), None)).eval()
        side = vit.patch_embed.img_size[0]
        out.append((f"{label}, r={r}", merged, lambda b, s=side: torch.randn(b, 3, s, s), VIDEOS * TOKEN_FRAMES))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8, help="items per timed call of a stand-in (default: 8)")
    p.add_argument("--published_batch", type=int, default=2, help="frames per timed call of a published model "
                                                                     "(default: 2; about 10 s each here)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per network and dtype, best kept (default: 3)")
    p.add_argument("--skip_published", action="store_true", help="time the stand-ins and the roofline only")
    p.add_argument("--gpu_tflops", type=float, default=989.0,
                   help="one GPU's dense bfloat16 peak for the computed GPU time (default: 989, an H100/H200 SXM's)")
    p.add_argument("--achieved", type=float, default=0.4,
                   help="the share of that peak a ViT batch reaches on the GPU (default: 0.4, an assumption)")
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"machine: {describe_machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    peaks = {name: roofline(dtype) for name, dtype in DTYPES.items()}
    print("roofline (2048^3 matrix product): " + ", ".join(f"{n} {g:.0f} GFLOP/s" for n, g in peaks.items()),
          flush=True)
    for label, net, batch_of, real_items in networks(args.skip_published):
        batch = args.batch if "stand-in" in label else args.published_batch
        flops = counted_flops(net, batch_of(1))
        params = net.parameters_of_tower() if isinstance(net, Text) else sum(q.numel() for q in net.parameters())
        print(f"{label}: {params / 1e6:.1f} M parameters, "
              f"{flops / 1e9:.3f} GFLOPs per item", flush=True)
        for name, dtype in DTYPES.items():  # as the extractors' --bf16 runs: weights and inputs in bfloat16
            net = net.to(dtype)
            x = batch_of(batch)
            x = x.to(dtype) if x.is_floating_point() else x  # token ids stay integers
            with torch.inference_mode():
                rate = best_rate(lambda: net(x), batch, args.repeats)
            achieved = rate * flops / 1e9
            line = (f"  {name:8s} {rate:9.2f} items/s, {achieved:6.1f} GFLOP/s = {100 * achieved / peaks[name]:4.1f}% "
                    f"of the roofline; real set ({real_items:,} items) {real_items / rate / 3600:8.2f} h here")
            if "text" not in label:
                line += f"; default set ({DEFAULT_SET_FRAMES:,} frames) {DEFAULT_SET_FRAMES / rate:7.1f} s here"
            print(line, flush=True)
        gpu_min = real_items * flops / (args.gpu_tflops * 1e12 * args.achieved) / 60
        print(f"  real set on one GPU: {real_items * flops / 1e15:.2f} PFLOP, computed {gpu_min:.1f} min ({gpu_min * 60:.1f} s) at "
              f"{args.gpu_tflops:g} TFLOP/s x {args.achieved:g} (not measured)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
