"""VGGish features, one 128-d vector per second: data/audio/<id>.wav -> data/feats/vggish/<id>.npy [T, 128].

Give the official weights with --checkpoint (vggish_model.ckpt, read without TensorFlow, or the
PyTorch port's vggish-10086976.pth). Mono and stereo wavs work; sound shorter than T seconds is
padded with silence and reported.
"""
import argparse
import sys
from pathlib import Path

from avqa.features.cli import apply_runtime_flags, common_flags, finish, resolve_flips, resolve_shard
from avqa.features.extract import extract_vggish
from avqa.features.files import default_seconds
from avqa.utils import EXIT_CODES, at_least


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio_dir", default="./data/audio/", help="folder of wav (or other audio/video) files")
    p.add_argument("--save_dir", default="./data/feats/vggish/", help="where the .npy files go")
    p.add_argument("--num_secs", "--seconds", dest="seconds", type=at_least(1), default=None,
                   help="T, seconds per clip (default: 60, or the clip length of a synthetic set beside the input)")
    common_flags(p, "--checkpoint")
    args = p.parse_args(argv)
    apply_runtime_flags(args)
    seconds = args.seconds or default_seconds(Path(args.audio_dir))
    return finish(extract_vggish(Path(args.audio_dir), Path(args.save_dir), seconds, args.weights, args.seed,
                                 args.device, args.bf16, args.prefetch, args.overwrite,
                                 args.batch_frames, resolve_shard(args), resolve_flips(args)))


if __name__ == "__main__":
    sys.exit(main())
