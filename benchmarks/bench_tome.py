"""Speed of the ToMe token extractor's network: frames per second of ViT-L/16@384 with token merging
(r = 25 on 23 blocks, random weights: the speed does not depend on them) and of a smaller stand-in
size, on this machine; the FLOPs of one frame of each (torch.utils.flop_counter, multiply-adds count
2); and, computed from those FLOPs, the time of the real data's frames (9,288 videos x 10 frames) on
one GPU at the stated peak and utilisation.

    python benchmarks/bench_tome.py                      # float32 on this CPU
    python benchmarks/bench_tome.py --bf16 --frames 4
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from avqa.features.tokens import merge_plan
from avqa.features.tome import TokenMerging
from avqa.features.vit import build_vit
from avqa.machine import describe_machine

VIDEOS, FRAMES_PER_VIDEO = 9288, 10


def merged_model(name: str, tokens: int, r: int) -> TokenMerging:
    vit, _ = build_vit(name, None, seed=0)
    n_in = vit.patch_embed.num_patches + 1
    return TokenMerging(vit, [r] * merge_plan(n_in, tokens, r, len(vit.blocks), None)).eval()


def flops_per_frame(model: TokenMerging) -> float:
    side = model.vit.patch_embed.img_size[0]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, side, side))
    return counter.get_total_flops()


def frames_per_second(model: TokenMerging, batch: int, repeats: int, bf16: bool) -> float:
    side = model.vit.patch_embed.img_size[0]
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = model.to(dtype)
    x = torch.randn(batch, 3, side, side, dtype=dtype)
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return batch * repeats / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=2, help="frames per timed call (default: 2)")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per model (default: 2)")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16")
    p.add_argument("--standin", default="vit_small_patch16_384",
                   help="the smaller ViT to time beside ViT-L (default: vit_small_patch16_384, width 384)")
    p.add_argument("--standin_r", type=int, default=53,
                   help="r of the stand-in: merges to 14 tokens within its 12 blocks (default: 53)")
    p.add_argument("--gpu_tflops", type=float, default=989.0,
                   help="the GPU's dense peak in TFLOP/s for the computed time (default: 989, an H100 SXM's "
                        "bfloat16 peak)")
    p.add_argument("--utilisation", type=float, default=0.4,
                   help="share of that peak the network reaches (default: 0.4)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'bfloat16' if args.bf16 else 'float32'}", flush=True)
    total = VIDEOS * FRAMES_PER_VIDEO
    for name, r in (("vit_large_patch16_384", 25), (args.standin, args.standin_r)):
        model = merged_model(name, 14, r)
        flops = flops_per_frame(model)
        fps = frames_per_second(model, args.frames, args.repeats, args.bf16)
        gpu_s = total * flops / (args.gpu_tflops * 1e12 * args.utilisation)
        print(f"{name} + ToMe (r={r}, {sum(1 for q in model.schedule if q)} merging blocks -> 14 tokens): "
              f"{flops / 1e9:.1f} GFLOPs/frame, {fps:.2f} frames/s here ({flops * fps / 1e9:.0f} GFLOP/s); "
              f"{total:,} frames: {total / fps / 3600:.1f} h here, computed {gpu_s:.0f} s on one GPU at "
              f"{args.gpu_tflops:g} TFLOP/s x {args.utilisation:g}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
