"""Download the real MUSIC-AVQA annotation files from the original public repository.

    python -m avqa.download                       # -> data/music_avqa/json/ and json_update/
    python -m avqa.download --out data --release json

The files are not part of this project (they belong to the MUSIC-AVQA authors, MIT licence). Each
file is checked (it must parse and validate) before it is put in place. The videos (48 GB) and
the official backbone weights are linked from README.md; they are too large to fetch here.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Sequence

from .annotations import AnnotationError, statistics, validate
from .utils import EXIT_CODES, atomic_write_text, user_errors

BASE = "https://raw.githubusercontent.com/GeWu-Lab/MUSIC-AVQA/main/data"
FILES = {
    "json": ["avqa-train.json", "avqa-val.json", "avqa-test.json", "avqa-train_real.json", "avqa-val_real.json",
             "avqa-test_real.json", "avqa-train_fake.json", "avqa-val_fake.json", "avqa-test_fake.json"],
    "json_update": ["avqa-train.json", "avqa-val.json", "avqa-test.json"],
}


def fetch(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a fixed https URL
        return r.read()


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/music_avqa", help="destination folder (default: data/music_avqa)")
    p.add_argument("--release", choices=["json", "json_update", "both"], default="both",
                   help="original release, corrected release, or both (default: both)")
    p.add_argument("--base_url", default=BASE, help="where the files are served from")
    p.add_argument("--force", action="store_true", help="download again files that are already there")
    args = p.parse_args(argv)
    releases = ["json", "json_update"] if args.release == "both" else [args.release]
    failed = 0
    for rel in releases:
        for name in FILES[rel]:
            dst = Path(args.out) / rel / name
            if dst.exists() and not args.force:
                print(f"{dst}: already there")
                continue
            url = f"{args.base_url}/{rel}/{name}"
            try:
                samples = json.loads(fetch(url))
                validate(samples, url)
            except (OSError, ValueError, AnnotationError) as e:
                print(f"{url}: {e}", file=sys.stderr)
                failed += 1
                continue
            atomic_write_text(dst, json.dumps(samples))
            st = statistics(samples)
            print(f"{dst}: {st['qa_pairs']:,} QA over {st['videos']:,} videos")
    if failed:
        print(f"{failed} file(s) could not be downloaded (no internet here?)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
