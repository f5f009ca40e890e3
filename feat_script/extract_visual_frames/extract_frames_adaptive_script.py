"""Extract frames at 1 fps, a fixed number per video, at the original's frame numbers
(the middle of each second; short videos repeat their last second). data/videos -> data/frames/<id>/00000001.jpg
"""
import argparse
import sys
from pathlib import Path

from avqa.features.cli import finish, flips_flag, resolve_flips, resolve_shard, shard_flag
from avqa.features.extract import extract_frames
from avqa.features.files import default_seconds
from avqa.utils import EXIT_CODES, at_least


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES)
    p.add_argument("--dir_path", default="./data/videos/", help="folder of videos (default: ./data/videos/)")
    p.add_argument("--dst_path", default="./data/frames/", help="where frame folders go (default: ./data/frames/)")
    p.add_argument("--fix_second", "--seconds", dest="seconds", type=at_least(1), default=None,
                   help="seconds per video (default: 60, or the clip length of a synthetic set beside --dir_path)")
    p.add_argument("--fps_count", type=at_least(1), default=1, help="frames per second to keep (default: 1)")
    p.add_argument("--process_count", type=at_least(1), default=2, help="parallel processes (default: 2)")
    p.add_argument("--quality", type=at_least(1), default=75, help="JPEG quality, as the original's imsave (default: 75)")
    shard_flag(p)
    flips_flag(p)
    args = p.parse_args(argv)
    seconds = args.seconds or default_seconds(Path(args.dir_path))
    return finish(extract_frames(Path(args.dir_path), Path(args.dst_path), seconds, args.fps_count,
                                 args.process_count, args.quality, resolve_shard(args), resolve_flips(args)))


if __name__ == "__main__":
    sys.exit(main())
