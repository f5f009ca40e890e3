"""Extract each video's sound track as a 16 kHz, 16-bit wav (data/videos -> data/audio)."""
import argparse
import sys
from pathlib import Path

from avqa.features.cli import finish, flips_flag, resolve_flips, resolve_shard, shard_flag
from avqa.features.extract import extract_audio
from avqa.utils import EXIT_CODES, at_least


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES)
    p.add_argument("--video_dir", default="./data/videos", help="folder of videos (default: ./data/videos)")
    p.add_argument("--audio_dir", default="./data/audio", help="where the wav files go (default: ./data/audio)")
    p.add_argument("--sample_rate", type=at_least(1), default=16000, help="output sample rate in Hz (default: 16000)")
    p.add_argument("--workers", type=at_least(1), default=2, help="parallel decoding processes (default: 2)")
    shard_flag(p)
    flips_flag(p)
    args = p.parse_args(argv)
    return finish(extract_audio(Path(args.video_dir), Path(args.audio_dir), args.sample_rate, args.workers,
                                resolve_shard(args), resolve_flips(args)))


if __name__ == "__main__":
    sys.exit(main())
