"""The command-line flags the feat_script tools share, and how they take effect."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ..utils import EXIT_CODES, at_least
from .extract import extract_visual
from .files import Report, default_seconds, flip_ids


def parse_shard(text: str) -> tuple[int, int]:
    """--shard K/N: this process does the K-th of N shares of the videos (K from 0)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (e.g. 0/4)") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"{text}: need 0 <= K < N")
    return k, n


def common_flags(p: argparse.ArgumentParser, weights_flag: str = "--weights", weights_help: str | None = None) -> None:
    p.add_argument(weights_flag, dest="weights", default=None,
                   help=weights_help or "official weight file; without it a seeded random init is used (and recorded)")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed of the random init when no weights are given")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")
    p.add_argument("--gpu", default=None,
                   help="original flag: sets CUDA_VISIBLE_DEVICES (e.g. '0'); prefer --device")
    p.add_argument("--bf16", action="store_true",
                   help="compute in bfloat16 (CPUs with bfloat16 units and GPUs): faster (docs/speed.md), "
                        "about 1%% relative difference; features are still saved as float32 (float16 with --float16)")
    p.add_argument("--prefetch", type=at_least(0), default=2,
                   help="clips loaded ahead in a background thread while the network runs (GPU, and VGGish "
                        "everywhere; default: 2)")
    p.add_argument("--threads", type=at_least(1), default=None,
                   help="CPU threads; for video on the CPU, the clips worked on at once, one core each "
                        "(default: all cores)")
    p.add_argument("--batch_frames", type=at_least(1), default=64,
                   help="frames (or seconds of sound) per network call, gathered across clips; lower it to "
                        "save memory (default: 64)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute every output, also when the folder holds features made with other settings")
    shard_flag(p)
    flips_flag(p)


def flips_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", nargs="+", default=None, metavar="FILE",
                   help="MUSIC-AVQA v2.0: annotation files (.json) or lists of video ids (one per line) whose "
                        "<id>_flip videos are wanted. Each <id>_flip without an input of its own is made from "
                        "<id>'s input: frames mirrored left-right, sound unchanged (recorded in the feature "
                        "metadata as 'flipped'). Default: none; every output comes from an input of its own")


def resolve_flips(args: argparse.Namespace) -> list[str]:
    """The ``_flip`` ids named by --annotations."""
    return flip_ids(args.annotations)


def shard_flag(p: argparse.ArgumentParser) -> None:
    # "-1/2" is read as --shard's value (argparse would take it for a flag and say "expected one argument"),
    # so parse_shard names the problem; argparse treats what this pattern matches as a negative number
    p._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+/-?\d+$")
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="do only the K-th (from 0) of N shares of the videos, for several GPUs or machines writing "
                        "to one folder; each video goes to exactly one share. Under torchrun the share is the "
                        "process's rank by default")


def resolve_shard(args: argparse.Namespace) -> tuple[int, int] | None:
    """--shard, or the rank among torchrun's processes (each then takes its own GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.shard is None and world > 1:
        args.shard = (int(os.environ.get("RANK", "0")), world)
        if getattr(args, "device", None) is None:
            import torch
            if torch.cuda.is_available():
                args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return args.shard


def apply_runtime_flags(args: argparse.Namespace) -> None:
    if getattr(args, "gpu", None):
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)


def finish(report: Report) -> int:
    print(report.summary())
    return report.exit_code()


def frame_input_flags(p: argparse.ArgumentParser, default_out: str) -> None:
    """The input folder, output folder and clip length of the extractors that read 1 fps frames."""
    p.add_argument("--video_path", default="./data/videos",
                   help="folder of videos (decoded in memory), or of per-video folders of 1 fps JPEG frames "
                        "as the original expected (default: ./data/videos)")
    p.add_argument("--output_dir", default=default_out, help=f"where the .npy files go (default: {default_out})")
    p.add_argument("--seconds", type=at_least(1), default=None,
                   help="T, frames per video at 1 fps (default: 60, or the clip length of a synthetic set "
                        "beside --video_path)")


def float16_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--float16", action="store_true",
                   help="store the features in float16 (half the disk; computed in float32 or --bf16 as usual); "
                        "recorded in the metadata and read by the loaders as they are")


def jpeg_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jpeg_quality", type=at_least(1), default=None,
                   help="pass decoded frames through JPEG at this quality first, as the original's frame files "
                        "were (75); off by default")


def visual_main(backbone: str, model_name: str, default_out: str, doc: str, argv=None) -> int:
    """The command line of the three visual extractors (ResNet-18 pooled, 14x14, R(2+1)D)."""
    p = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    frame_input_flags(p, default_out)
    p.add_argument("--model", default=model_name, choices=[model_name], help="backbone (kept for compatibility)")
    p.add_argument("--n_frame_steps", type=int, default=None, help="original flag; unused (T is --seconds)")
    p.add_argument("--used_seconds", action="store_true",
                   help="compute only the seconds the models read: AVST's every (T // --segments)-th second and "
                        "grounding's first 10 (18 of 60 on the real data, 30%% of the time and disk). Files keep "
                        "the [T, ...] shape, the other seconds are holes (no disk, read as zeros); recorded in the "
                        "metadata, and this project's loaders refuse to read a second that was not computed")
    p.add_argument("--segments", type=at_least(1), default=10,
                   help="with --used_seconds: the --segments that AVST will be trained with (default: 10)")
    float16_flag(p)
    jpeg_flag(p)
    common_flags(p)
    args = p.parse_args(argv)
    apply_runtime_flags(args)
    seconds = args.seconds or default_seconds(Path(args.video_path))
    return finish(extract_visual(backbone, Path(args.video_path), Path(args.output_dir), seconds,
                                 weights=args.weights, seed=args.seed, device=args.device, bf16=args.bf16,
                                 jpeg_quality=args.jpeg_quality, prefetch=args.prefetch, overwrite=args.overwrite,
                                 batch_rows=args.batch_frames,
                                 used_segments=args.segments if args.used_seconds else None,
                                 float16=args.float16, shard=resolve_shard(args), flips=resolve_flips(args)))


def _clip_arch_flag(p: argparse.ArgumentParser) -> None:
    from .clip import CONFIGS, PUBLISHED
    p.add_argument("--arch", choices=sorted(CONFIGS), default=None,
                   help=f"CLIP architecture of the seeded random init when no --weights are given (default: "
                        f"{PUBLISHED}, the published ViT-L/14@336px; 'standin' is the small one for synthetic-world "
                        f"stand-ins). With --weights the file's shapes decide")


def clip_frames_main(doc: str, argv=None) -> int:
    """The command line of TSPM's CLIP frame extractor (feat_script/extract_clip_feat/)."""
    from .clip import checked_backbone
    p = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    frame_input_flags(p, "./data/feats/clip_feats/frame_1fps_ViT-L14@336px")
    float16_flag(p)
    jpeg_flag(p)
    _clip_arch_flag(p)
    common_flags(p)
    p.set_defaults(batch_frames=16)
    args = p.parse_args(argv)
    apply_runtime_flags(args)
    seconds = args.seconds or default_seconds(Path(args.video_path))
    spec = checked_backbone("image", args.weights, args.seed, args.arch)
    return finish(extract_visual(spec.name, Path(args.video_path), Path(args.output_dir), seconds,
                                 weights=args.weights, seed=args.seed, device=args.device, bf16=args.bf16,
                                 jpeg_quality=args.jpeg_quality, prefetch=args.prefetch, overwrite=args.overwrite,
                                 batch_rows=args.batch_frames, float16=args.float16, shard=resolve_shard(args),
                                 flips=resolve_flips(args)))


VARIANT_HELP = {
    "prompt": "which QA prompt is encoded: 'intended' (default), TSPM's sentence of the question's template, also "
              "where the annotation's template ends in a space or in a full-width question mark; 'release', exactly "
              "the sentence the release encodes, which for those three templates is the letter 'e' (its lookup "
              "misses them: 1,507 of json_update's 13,697 validation and test questions). Recorded in the "
              "metadata; a folder of the other kind is refused unless --overwrite",
    "question": "which question sentence is encoded: 'intended' (default), the question with its template values "
                "in place ('How many cello are in the entire video?'); 'release', exactly the sentence the release "
                "encodes, whose <...> words become the characters of the templ_values text in turn ('How many [ "
                "are in the entire video?'). Recorded in the metadata; a folder of the other kind is refused unless "
                "--overwrite"}


def clip_text_main(kind: str, default_out: str, doc: str, argv=None) -> int:
    """The command line of TSPM's CLIP question (``kind`` 'question') and QA-prompt ('prompt') extractors."""
    from .clip import extract_clip_text
    p = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--annotations", nargs="+", metavar="FILE",
                   default=[f"./data/json/avqa-{s}.json" for s in ("train", "val", "test")],
                   help="annotation files whose questions get a feature file each, <question_id>.npy "
                        "(default: ./data/json/avqa-train.json, avqa-val.json, avqa-test.json)")
    p.add_argument("--output_dir", default=default_out, help=f"where the .npy files go (default: {default_out})")
    p.add_argument("--batch_size", type=at_least(1), default=64,
                   help="sentences per network call (each distinct sentence is encoded once; default: 64)")
    p.add_argument(f"--{kind}", dest="variant", choices=["intended", "release"], default="intended",
                   help=VARIANT_HELP[kind])
    float16_flag(p)
    _clip_arch_flag(p)
    p.add_argument("--weights", default=None,
                   help="OpenAI's ViT-L-14-336px.pt (or a state_dict in its key layout); without it a seeded "
                        "random init is used (and recorded)")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed of the random init when no weights are given")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16 (about 1%% relative difference); "
                                                       "features are saved as float32 (float16 with --float16)")
    p.add_argument("--threads", type=at_least(1), default=None, help="CPU threads (default: all cores)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute every output, also when the folder holds features made with other settings")
    shard_flag(p)
    args = p.parse_args(argv)
    apply_runtime_flags(args)
    return finish(extract_clip_text(kind, args.annotations, Path(args.output_dir), args.weights, args.seed, args.arch,
                                    args.device, args.bf16, args.float16, args.overwrite, resolve_shard(args),
                                    args.batch_size, args.variant))
