"""The ToMe token extractor behind feat_script/extract_ToMe/extract_tome14.py: F frames per video
through a ViT with token merging, [F, tokens, width] per video (TSPM's ``--visual_patch_dir``).

Frame j shows second ``token_seconds(T, F)[j]`` (avqa.tspm.model), in time order; the frames are
decoded straight from the video (or read from a folder of 1 fps JPEG frames), preprocessed as the
release's extractor does (vit.frame_spec) and merged as tome.py describes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .seconds import token_seconds
from ..utils import EXIT_CODES, at_least, metadata_path, pick_device, user_errors
from .cli import apply_runtime_flags, common_flags, finish, resolve_flips, resolve_shard
from .extract import one_writer
from .files import (Report, default_seconds, flip_record, is_frame_folder, note_other_shards, report_missing_flips,
                    shard_of, sources)
from .inputs import load_frames
from .metadata import COMPARED, check_metadata, feature_metadata
from .network import Runner, network_jobs, run_network
from .tome import TokenMerging, merge_layers, token_counts, working_r
from .vit import DEFAULT_MODEL, build_vit, frame_spec

DEFAULT_OUT = "./data/feats/ToMe_feat/tome14"
PER_SECOND_OUT = "./data/feats/visual_tome14"  # QA-TIGER's folder of per-second tokens
RELEASE_R = 25  # tokens merged per block by the release's extractor
# besides the settings every feature folder compares: the network and how its tokens are merged
TOKEN_COMPARED = (*COMPARED, "model_name", "architecture", "merging")


def merge_r(tokens_in: int, keep: int, depth: int, layers: int | None, class_token: bool = True) -> int:
    """The ``r`` of a run that names none: the release's where it leaves ``keep`` tokens (or where
    --layers is given), else the smallest that does in the ViT's blocks (a shallow stand-in ViT:
    197 tokens to 14 in 4 blocks takes r >= 92)."""
    if layers is not None:
        return RELEASE_R
    working = working_r(tokens_in, keep, depth, class_token)
    return RELEASE_R if RELEASE_R in working or not working else working[0]


def merge_plan(tokens_in: int, keep: int, r: int, depth: int, layers: int | None, class_token: bool = True) -> int:
    """The number of blocks that merge ``r`` tokens: ``layers`` when given (checked), else merge_layers.
    SystemExit naming the flags when ``keep`` tokens cannot remain."""
    if layers is None:
        try:
            return merge_layers(tokens_in, keep, r, depth, class_token)
        except ValueError as e:
            raise SystemExit(f"--tokens {keep} with --r {r}: {e}; pass that --r, or another --tokens") from None
    if layers > depth:
        raise SystemExit(f"--layers {layers}: the ViT has {depth} blocks; give at most {depth}, or leave "
                         f"--layers out to use the fewest blocks that leave --tokens")
    left = token_counts(tokens_in, [r] * layers, class_token)[-1] if layers else tokens_in
    if left != keep:
        raise SystemExit(f"--layers {layers} with --r {r} leaves {left} of {tokens_in} tokens, not --tokens {keep}; "
                         f"leave --layers out to use the fewest blocks that leave {keep}")
    return layers


@user_errors
@one_writer("--output_dir")
def extract_tokens(video_path: Path, out_dir: Path, seconds: int, frames: int, tokens: int = 14, r: int | None = None,
                   layers: int | None = None, model_name: str = DEFAULT_MODEL, weights: str | None = None,
                   seed: int = 0, device: str | None = None, bf16: bool = False, jpeg_quality: int | None = None,
                   prefetch: int = 2, overwrite: bool = False, batch_rows: int = 64, float16: bool = False,
                   shard: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> Report:
    """[frames, tokens, width] per video at the seconds ``token_seconds(seconds, frames)``; ``r`` None
    is merge_r's choice."""
    try:
        chosen = token_seconds(seconds, frames)
    except ValueError as e:
        raise SystemExit(f"--sample_frames {frames}: {e} (--seconds {seconds})") from None
    try:
        vit, info = build_vit(model_name, weights, seed)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"--weights: {e}. Give the official weight file (see --help), or leave --weights out "
                         f"for a seeded random init") from None
    class_token = vit.cls_token is not None
    tokens_in = vit.patch_embed.num_patches + int(class_token)
    if r is None:
        r = merge_r(tokens_in, tokens, len(vit.blocks), layers, class_token)
    n_layers = merge_plan(tokens_in, tokens, r, len(vit.blocks), layers, class_token)
    schedule = [r] * n_layers
    frames_mode = is_frame_folder(video_path)
    device = pick_device(device)
    per_core = not device.startswith("cuda")
    arch = info["architecture"]
    spec = frame_spec(vit, (tokens, vit.embed_dim),
                      f"timm's {model_name} (patch {arch['patch_size']}, {arch['img_size']}x{arch['img_size']}, width "
                      f"{arch['embed_dim']}, {arch['depth']} blocks) with token merging to {tokens} tokens")
    runner = Runner.of(TokenMerging(vit, schedule).eval(), spec, info, device, bf16)
    inputs, missing = sources(video_path, want_dirs=frames_mode, flips=flips)
    jobs = network_jobs(inputs, batch_rows if per_core else frames, batch_rows, shard)
    report = Report("tome")  # timed from here: the network is built
    meta = feature_metadata("tome", runner, seconds, device, bf16)
    meta.update({
        "model_name": model_name, "architecture": info["architecture"],
        "shape_per_video": [frames, tokens, vit.embed_dim], "batchnorm_folded": False,
        "input": "1 fps JPEG frame folders" if frames_mode else "videos, decoded in memory at the 1 fps frame numbers",
        "jpeg_roundtrip_quality": jpeg_quality, "dtype": "float16" if float16 else "float32",
        "token_frames": frames, "token_seconds": chosen.tolist(), "seconds_computed": chosen.tolist(),
        "merging": {"r": r, "layers": n_layers, "tokens_in": tokens_in, "tokens_out": tokens,
                    "tokens_after_each_block": token_counts(tokens_in, schedule + [0] * (len(vit.blocks) - n_layers),
                                                            class_token),
                    "protected": "class token" if class_token else "none", "similarity": "keys, mean over heads",
                    "average": "size-weighted", "proportional_attention": True,
                    "output": "final norm of every remaining token (no head, no pooling)"},
    })
    meta.update(flip_record(inputs))
    check_metadata(out_dir, meta, overwrite, own=[j.key for j in jobs] if shard else None, compared=TOKEN_COMPARED)
    if info["weights"] is None:  # said once the metadata that records it is written
        print(f"[tome] no --weights given: using a seeded random init of {model_name} (seed {seed}); "
              f"recorded in {metadata_path(out_dir)}", file=sys.stderr)
    report_missing_flips(report, video_path, shard_of(missing, shard))
    rows = chosen.tolist()
    run_network("tome", jobs, out_dir, (frames, tokens, vit.embed_dim),
                lambda j: load_frames(j.source, seconds, spec, jpeg_quality, rows, j.mirror), runner,
                prefetch, report, batch_rows, per_core=per_core, dtype=np.float16 if float16 else np.float32)
    return note_other_shards(report, out_dir, inputs, shard)


def frame_count(layout: str, seconds: int, sample_frames: int | None) -> int:
    """F, the token frames per video: --sample_frames (default min(10, T)) for TSPM's 'sampled' layout,
    T for 'per_second' (QA-TIGER's), where another --sample_frames is refused."""
    if layout == "per_second":
        if sample_frames not in (None, seconds):
            raise SystemExit(f"--sample_frames {sample_frames} with --frames per_second: per_second takes one token "
                             f"frame for each of the {seconds} seconds; leave --sample_frames out, or use "
                             f"--frames sampled")
        return seconds
    return sample_frames or min(10, seconds)


def tokens_parser(doc: str) -> argparse.ArgumentParser:
    """The flags of feat_script/extract_ToMe/extract_tome14.py (the release's kept)."""
    p = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video_path", "--dir_path", dest="video_path", default="./data/videos",
                   help="folder of videos (decoded in memory), or of per-video folders of 1 fps JPEG frames as the "
                        "release expected (--dir_path, the release's name; default: ./data/videos)")
    p.add_argument("--output_dir", "--dst_path", dest="output_dir", default=None,
                   help=f"where the <video_id>.npy files go (--dst_path, the release's name; default: {DEFAULT_OUT}, "
                        f"or {PER_SECOND_OUT} with --frames per_second)")
    p.add_argument("--seconds", type=at_least(1), default=None,
                   help="T, the clip length in seconds (1 fps frames; default: 60, or the clip length of a "
                        "synthetic set beside --video_path)")
    p.add_argument("--frames", choices=["sampled", "per_second"], default="sampled",
                   help="which frames get tokens: 'sampled' (default), TSPM's layout, --sample_frames frames a "
                        "video; 'per_second', QA-TIGER's layout, one token frame for every second ([T, 14, 1024], "
                        "frame t from second t; T = 60 on MUSIC-AVQA), written to its visual_tome14 folder")
    p.add_argument("--sample_frames", type=at_least(1), default=None,
                   help="F, frames per video, at the seconds avqa.tspm.model.token_seconds(T, F): "
                        "linspace(0, T - 2, F) truncated, in time order (default: 10, or T for shorter clips; "
                        "with --frames per_second, T)")
    p.add_argument("--tokens", type=at_least(1), default=14, help="tokens left per frame after merging (default: 14)")
    p.add_argument("--r", type=at_least(1), default=None,
                   help=f"tokens merged in each merging block, capped at half the tokens (default: {RELEASE_R}, the "
                        f"release's; for a ViT too shallow to leave --tokens with it, such as the synthetic-world "
                        f"stand-in, the smallest r that does; recorded)")
    p.add_argument("--layers", type=at_least(0), default=None,
                   help="blocks that merge (the first ones); default: the fewest that leave exactly --tokens "
                        "(23 of ViT-L/16@384's 24 with --r 25 and --tokens 14); a value that leaves another "
                        "count is refused")
    p.add_argument("--model_name", default=DEFAULT_MODEL,
                   help=f"timm ViT architecture (default: {DEFAULT_MODEL}); with --weights, its patch, image "
                        f"size, width, depth and MLP width are read from the file's shapes")
    p.add_argument("--global_pool", default="None", choices=["None"],
                   help="the release's flag: no pooling, every remaining token is kept (the only choice)")
    p.add_argument("--float16", action="store_true",
                   help="store the features in float16 (half the disk); recorded in the metadata")
    p.add_argument("--jpeg_quality", type=at_least(1), default=None,
                   help="pass decoded frames through JPEG at this quality first, as the release's frame files "
                        "were; off by default")
    common_flags(p, weights_help=(
        "ViT weight file: timm's model.safetensors or pytorch_model.bin (e.g. from the Hugging Face repository "
        "timm/vit_large_patch16_384.augreg_in21k_ft_in1k), a .pth state_dict, or the original .npz; without it "
        "a seeded random init of --model_name (recorded)"))
    return p


def tokens_main(doc: str, argv: Sequence[str] | None = None) -> int:
    """The command line of feat_script/extract_ToMe/extract_tome14.py."""
    args = tokens_parser(doc).parse_args(argv)
    apply_runtime_flags(args)
    seconds = args.seconds or default_seconds(Path(args.video_path))
    frames = frame_count(args.frames, seconds, args.sample_frames)
    out = args.output_dir or (PER_SECOND_OUT if args.frames == "per_second" else DEFAULT_OUT)
    return finish(extract_tokens(Path(args.video_path), Path(out), seconds, frames, args.tokens, args.r,
                                 args.layers, args.model_name, args.weights, args.seed, args.device, args.bf16,
                                 args.jpeg_quality, args.prefetch, args.overwrite, args.batch_frames, args.float16,
                                 resolve_shard(args), resolve_flips(args)))
