"""Download the annotation files of MUSIC-AVQA and its successors from their public repositories.

    python -m avqa.download                       # -> data/music_avqa/json/ and json_update/
    python -m avqa.download --out data --release json
    python -m avqa.download --benchmark v2        # MUSIC-AVQA v2.0 -> data/music_avqa_v2/
    python -m avqa.download --benchmark r         # MUSIC-AVQA-R    -> data/music_avqa_r/

None of these files is part of this project, and none may be committed into it: MUSIC-AVQA's belong
to its authors (MIT licence), MUSIC-AVQA v2.0's are under the GNU GPL v3, and MUSIC-AVQA-R's
repository names no licence (all rights stay with its authors). Each file is checked (it must parse;
annotation files must validate) before it is put in place, and the licence is printed. The videos
(48 GB) and the official backbone weights are linked from docs/real-data.md; they are too large to fetch
here. Score predictions on the files with python -m avqa.evaluate (docs/evaluation.md).
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from .annotations import AnnotationError, statistics, validate
from .utils import EXIT_CODES, at_least, atomic_write_text, user_errors

BASE = "https://raw.githubusercontent.com/GeWu-Lab/MUSIC-AVQA/main/data"
# benchmark -> where its files are served from, the files (path there -> path under --out), its licence
BENCHMARKS = {
    "v2": dict(base="https://raw.githubusercontent.com/DragonLiu1995/MUSIC-AVQA-v2.0/main", out="data/music_avqa_v2",
               files={"data/balance_full_set/test_balance.json": "test_balance.json",
                      "data/balance_full_set/train_balance.json": "train_balance.json",
                      "data/bias_set/test_bias.json": "test_bias.json",
                      "data/bias_set/train_bias.json": "train_bias.json",
                      "data/MUSIC-AVQA-v2.0_additional_videos.csv": "MUSIC-AVQA-v2.0_additional_videos.csv"},
               licence="GNU GPL v3 (repository DragonLiu1995/MUSIC-AVQA-v2.0): use them, never copy them into "
                       "this MIT project"),
    "r": dict(base="https://raw.githubusercontent.com/reml-group/MUSIC-AVQA-R/main", out="data/music_avqa_r",
              files={f"dataset/MUSIC-AVQA-R/avqa-test-{part}.json": f"avqa-test-{part}.json"
                     for part in ("head", "tail", "headtail")},
              licence="no licence named in the repository reml-group/MUSIC-AVQA-R: all rights stay with its "
                      "authors; use them for research, never copy them into this project"),
}
FILES = {
    "json": ["avqa-train.json", "avqa-val.json", "avqa-test.json", "avqa-train_real.json", "avqa-val_real.json",
             "avqa-test_real.json", "avqa-train_fake.json", "avqa-val_fake.json", "avqa-test_fake.json"],
    "json_update": ["avqa-train.json", "avqa-val.json", "avqa-test.json"],
}


FIRST_BYTE_S = 5.0   # a server that says nothing for this long is taken as not answering
DEADLINE_S = 300     # --timeout's default: every file together


class Unreachable(Exception):
    """The server cannot be reached at all (no DNS, refused, silent, too slow): no later file would come either."""


def fetch(url: str, deadline: float) -> bytes:
    """The file at ``url``, read before ``deadline`` (time.monotonic()) with at most FIRST_BYTE_S of silence
    at any moment; Unreachable when the network, not the file, is the problem."""
    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Unreachable("the --timeout ran out")
        return min(FIRST_BYTE_S, remaining)

    def silent() -> str:
        if deadline - time.monotonic() <= 0:
            return "the --timeout ran out"
        return f"no answer within {FIRST_BYTE_S:g} s (it accepted the connection and said nothing)"
    try:
        with urllib.request.urlopen(url, timeout=left()) as r:  # noqa: S310 - a fixed https URL or --base_url
            chunks, read = [], getattr(r, "read1", r.read)  # read1: one receive at a time, each under the timeout
            while True:
                chunk = read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                left()
    except urllib.error.HTTPError:
        raise
    except TimeoutError:
        raise Unreachable(silent()) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, socket.gaierror):
            raise Unreachable("its name does not resolve (no DNS, or no internet here)") from None
        if isinstance(e.reason, TimeoutError):
            raise Unreachable(silent()) from None
        if isinstance(e.reason, ConnectionError):
            raise Unreachable(str(e.reason) or type(e.reason).__name__) from None
        raise


def checked(name: str, data: bytes, url: str, strict: bool = True) -> tuple[str, str]:
    """The file's text and a one-line description; ValueError when it is not what its name says.

    Annotation files must validate; with ``strict`` False (MUSIC-AVQA-R's rephrased questions, which
    this project has not seen) only the schema's keys are required and other problems are described.
    """
    text = data.decode("utf-8-sig")
    if name.endswith(".csv"):
        first = text.splitlines()[0] if text else ""
        if "video_id" not in first:
            raise ValueError(f"{url}: not the additional-videos CSV (no video_id column in its first line)")
        return text, f"{len(text.splitlines()) - 1:,} rows"
    samples = json.loads(text)
    try:
        validate(samples, url)
    except AnnotationError as e:
        missing = [p for p in e.problems if "missing key" in p or "JSON list" in p or "not a JSON object" in p]
        if strict or missing:
            raise
        note = f"; {len(e.problems):,} row(s) outside the original templates (e.g. {e.problems[0]})"
    else:
        note = ""
    st = statistics(samples) if not note else {"qa_pairs": len(samples),
                                              "videos": len({s["video_id"] for s in samples})}
    return json.dumps(samples), f"{st['qa_pairs']:,} QA over {st['videos']:,} videos{note}"


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", choices=["v1", "v2", "r"], default="v1",
                   help="v1: MUSIC-AVQA (GeWu-Lab/MUSIC-AVQA); v2: MUSIC-AVQA v2.0, balanced and biased train and "
                        "test files and the additional videos' list (DragonLiu1995/MUSIC-AVQA-v2.0); r: MUSIC-AVQA-R's "
                        "head, tail and head+tail test files (reml-group/MUSIC-AVQA-R; its train and val files are "
                        "v1's json_update). Default: v1")
    p.add_argument("--out", default=None,
                   help="destination folder (default: data/music_avqa, data/music_avqa_v2 or data/music_avqa_r)")
    p.add_argument("--release", choices=["json", "json_update", "both"], default="both",
                   help="v1 only: original release, corrected release, or both (default: both)")
    p.add_argument("--base_url", default=None,
                   help="where the files are served from (default: the benchmark's repository on GitHub; a mirror "
                        "or a file:// folder with the same layout also works)")
    p.add_argument("--force", action="store_true", help="download again files that are already there")
    p.add_argument("--timeout", type=at_least(1.0, float), default=DEADLINE_S, metavar="S",
                   help=f"give up after S seconds in all (a server silent for {FIRST_BYTE_S:g} s is given up at "
                        f"once); the files already downloaded are kept (default: {DEADLINE_S})")
    args = p.parse_args(argv)
    if args.benchmark == "v1":
        releases = ["json", "json_update"] if args.release == "both" else [args.release]
        out = Path(args.out or "data/music_avqa")
        wanted = {f"{rel}/{name}": f"{rel}/{name}" for rel in releases for name in FILES[rel]}
        base, licence = args.base_url or BASE, "MIT (GeWu-Lab/MUSIC-AVQA)"
    else:
        b = BENCHMARKS[args.benchmark]
        out, wanted = Path(args.out or b["out"]), b["files"]
        base, licence = args.base_url or b["base"], b["licence"]
    print(f"licence of these files: {licence}")
    return download(wanted, out, base, args.force, args.benchmark != "r", time.monotonic() + args.timeout)


def download(wanted: dict[str, str], out: Path, base: str, force: bool, strict: bool, deadline: float) -> int:
    """Fetch, check and put in place each file of ``wanted`` (path at ``base`` -> path under ``out``).

    A file that is missing or broken is named and the others go on; a server that cannot be reached
    (no DNS, silent, past the deadline) stops the run with one sentence, keeping what arrived."""
    failed = done = 0
    for i, (src, name) in enumerate(wanted.items()):
        dst = out / name
        if dst.exists() and not force:
            print(f"{dst}: already there")
            continue
        url = f"{base.rstrip('/')}/{src}"
        try:
            text, what = checked(name, fetch(url, deadline), url, strict=strict)
        except Unreachable as e:
            host = urllib.parse.urlsplit(url).netloc or base
            raise SystemExit(f"cannot download from {host}: {e}; {done} file(s) downloaded, {len(wanted) - i} not "
                             f"(--out {out} keeps what arrived): check the connection and run it again, or point "
                             f"--base_url at a mirror or a file:// folder") from None
        except (OSError, ValueError, AnnotationError) as e:
            print(f"{url}: {e}", file=sys.stderr)
            failed += 1
            continue
        atomic_write_text(dst, text)
        done += 1
        print(f"{dst}: {what}")
    if failed:
        print(f"{failed} file(s) could not be downloaded (no internet here, or the repository moved them: "
              f"--base_url points at a mirror)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
