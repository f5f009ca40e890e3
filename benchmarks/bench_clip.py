"""CLIP frame features for TSPM: per-frame throughput on this CPU, FLOPs per frame, and the computed
time of the real data set on one GPU.

For the published ViT-L/14@336px and the small stand-in architecture (avqa.features.clip.CONFIGS),
both with seeded random weights (the speed does not depend on the values): the image tower's FLOPs
per frame counted by torch.utils.flop_counter (a multiply-add is 2 FLOPs), and frames per second of
encode_image on a batch of preprocessed frames. Then, computed and not measured: the GPU time of
MUSIC-AVQA's 9,288 videos x 60 frames at an assumed peak and achieved fraction (--peak_tflops, default
the H200's dense bf16 989 TFLOP/s; --achieved, default 0.4).

    python benchmarks/bench_clip.py                    # 2 frames of each after one warm-up batch
    python benchmarks/bench_clip.py --frames 8 --bf16
"""
import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from avqa.features.clip import CONFIGS, PUBLISHED, random_clip
from avqa.machine import describe_machine

VIDEOS, FRAMES_PER_VIDEO = 9288, 60


def flops_per_frame(visual: torch.nn.Module, side: int) -> float:
    """With autograd on and attention in plain matrix products: the fused kernels (nn.MultiheadAttention's
    inference path, the CPU's flash attention) are invisible to the counter."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with FlopCounterMode(display=False) as counter, torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        visual(torch.zeros(1, 3, side, side))
    return counter.get_total_flops()


def frames_per_second(visual: torch.nn.Module, side: int, frames: int, dtype: torch.dtype) -> float:
    x = torch.randn(frames, 3, side, side, dtype=dtype)
    visual = visual.to(dtype)
    with torch.inference_mode():
        visual(x[:1])  # warm-up
        start = time.perf_counter()
        visual(x)
        return frames / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=2, help="frames in the timed batch (default: 2)")
    p.add_argument("--bf16", action="store_true", help="time in bfloat16 instead of float32")
    p.add_argument("--peak_tflops", type=float, default=989.0,
                   help="the GPU's peak, TFLOP/s (default: 989, an H200's dense bf16 tensor-core figure)")
    p.add_argument("--achieved", type=float, default=0.4,
                   help="the fraction of that peak a ViT-L batch achieves (default: 0.4, an assumption)")
    args = p.parse_args()
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    print(describe_machine(), f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                              f"{'bfloat16' if args.bf16 else 'float32'}")
    total = VIDEOS * FRAMES_PER_VIDEO
    for arch in (PUBLISHED, "standin"):
        visual = random_clip(arch, 0).visual.eval()
        side = CONFIGS[arch]["vision_cfg"]["image_size"]
        flops = flops_per_frame(visual, side)
        fps = frames_per_second(visual, side, args.frames, dtype)
        gpu_s = total * flops / (args.peak_tflops * 1e12 * args.achieved)
        params = sum(q.numel() for q in visual.parameters()) / 1e6
        print(f"{arch:13s} image tower {params:6.1f} M parameters, {side}px: {flops / 1e9:7.2f} GFLOPs/frame; "
              f"this CPU {fps:8.2f} frames/s ({fps * flops / 1e9:6.1f} GFLOP/s achieved); "
              f"{VIDEOS} videos x {FRAMES_PER_VIDEO} frames = {total * flops / 1e15:.1f} PFLOP: "
              f"{total / fps / 3600:8.1f} h on this CPU at that rate, computed {gpu_s / 60:6.1f} min on one GPU "
              f"at {args.peak_tflops:g} TFLOP/s x {args.achieved:g} (computed, not measured)")


if __name__ == "__main__":
    main()
