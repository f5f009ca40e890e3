"""Shared command line of the three visual extractors (ResNet-18 pooled, 14x14, R(2+1)D)."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avqa.features.cli import apply_runtime_flags, common_flags, finish, resolve_shard  # noqa: E402
from avqa.features.extract import extract_visual  # noqa: E402
from avqa.features.files import default_seconds  # noqa: E402
from avqa.utils import EXIT_CODES, at_least  # noqa: E402


def main(backbone: str, model_name: str, default_out: str, doc: str, argv=None) -> int:
    p = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video_path", default="./data/videos",
                   help="folder of videos (decoded in memory), or of per-video folders of 1 fps JPEG frames "
                        "as the original expected (default: ./data/videos)")
    p.add_argument("--output_dir", default=default_out, help=f"where the .npy files go (default: {default_out})")
    p.add_argument("--model", default=model_name, choices=[model_name], help="backbone (kept for compatibility)")
    p.add_argument("--seconds", type=at_least(1), default=None,
                   help="T, frames per video at 1 fps (default: 60, or the clip length of a synthetic set "
                        "beside --video_path)")
    p.add_argument("--n_frame_steps", type=int, default=None, help="original flag; unused (T is --seconds)")
    p.add_argument("--used_seconds", action="store_true",
                   help="compute only the seconds the models read: AVST's every (T // --segments)-th second and "
                        "grounding's first 10 (18 of 60 on the real data, 30%% of the time and disk). Files keep "
                        "the [T, ...] shape, the other seconds are holes (no disk, read as zeros); recorded in the "
                        "metadata, and this project's loaders refuse to read a second that was not computed")
    p.add_argument("--segments", type=at_least(1), default=10,
                   help="with --used_seconds: the --segments that AVST will be trained with (default: 10)")
    p.add_argument("--float16", action="store_true",
                   help="store the features in float16 (half the disk; computed in float32 or --bf16 as usual); "
                        "recorded in the metadata and read by the loaders as they are")
    p.add_argument("--jpeg_quality", type=at_least(1), default=None,
                   help="pass decoded frames through JPEG at this quality first, as the original's frame files "
                        "were (75); off by default")
    common_flags(p)
    args = p.parse_args(argv)
    apply_runtime_flags(args)
    seconds = args.seconds or default_seconds(Path(args.video_path))
    return finish(extract_visual(backbone, Path(args.video_path), Path(args.output_dir), seconds, args.weights,
                                 args.seed, args.device, args.bf16, args.jpeg_quality, args.prefetch, args.overwrite,
                                 args.batch_frames, args.segments if args.used_seconds else None, args.float16,
                                 resolve_shard(args)))
