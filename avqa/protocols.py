"""Evaluation protocols: which validation file selects the model that the test file then reports.

- ``official``: the release's split by question. In ``json_update/``, 2,296 of the 3,815 validation
  videos also appear in the test file, so model selection on validation has seen test videos.
- ``video-disjoint``: the validation file less every question whose video appears in the test file
  (the rows kept in their order, nothing else changed, nothing moved into training). It depends on the
  two files alone, so every run writes the same bytes:

    python -m avqa.protocols video-disjoint --data data/music_avqa/json_update
    python net_grd_avst/main_avst.py --mode train --label_val data/music_avqa/json_update/avqa-val-video-disjoint.json ...

It writes the split (an annotation file that any training script takes as ``--label_val``) and beside
it ``<split>.record.json``: the source files' names and sha256, how many questions and videos were
kept and removed, and the keys of the removed questions. ``python -m avqa.evaluate --protocol
video-disjoint`` records in its tables that the figures come from a model selected that way.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .annotations import load_annotations, question_key
from .utils import EXIT_CODES, atomic_write_text, sha256, user_errors

PROTOCOLS = {"official": "the release's split by question: validation may share videos with the test file",
             "video-disjoint": "model selection on a validation split with no video of the test file "
                               "(python -m avqa.protocols video-disjoint)"}
SPLIT_NAME = "avqa-val-video-disjoint.json"


def video_disjoint(val: Sequence[dict], test: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The validation rows whose video is not in ``test`` (kept), and the others (removed), in file order."""
    test_videos = {str(s["video_id"]) for s in test}
    kept = [s for s in val if str(s["video_id"]) not in test_videos]
    removed = [s for s in val if str(s["video_id"]) in test_videos]
    return kept, removed


def _counts(rows: Sequence[dict]) -> dict:
    return {"questions": len(rows), "videos": len({str(s["video_id"]) for s in rows})}


def write_video_disjoint(val_path: str | Path, test_path: str | Path, out: str | Path) -> dict:
    """Write the video-disjoint validation split to ``out`` and its record beside it; return the record."""
    val, test = load_annotations(val_path), load_annotations(test_path)
    kept, removed = video_disjoint(val, test)
    if not kept:
        raise SystemExit(f"--val {val_path}: every one of its videos is in --test {test_path}; a video-disjoint "
                         f"validation split would be empty: give the validation file of the same release")
    out = Path(out)
    atomic_write_text(out, json.dumps(kept, indent=1, ensure_ascii=False) + "\n")
    record = {"protocol": "video-disjoint", "description": PROTOCOLS["video-disjoint"],
              "split": {"path": str(out), "sha256": sha256(out), **_counts(kept)},
              "val": {"path": str(val_path), "sha256": sha256(val_path), **_counts(val)},
              "test": {"path": str(test_path), "sha256": sha256(test_path), **_counts(test)},
              "removed": {**_counts(removed), "question_keys": [question_key(s) for s in removed]}}
    atomic_write_text(record_path(out), json.dumps(record, indent=1) + "\n")
    return record


def record_path(split: str | Path) -> Path:
    split = Path(split)
    return split.with_name(split.stem + ".record.json")


def selected_on(label_val: str | None) -> dict | None:
    """The validation file a checkpoint was selected on (``--label_val`` of its training): its name,
    sha256 and protocol, "video-disjoint" where this module wrote it (its record beside it names the
    file by sha256), else "official"; None where the file is unknown or gone."""
    if not label_val or not Path(label_val).is_file():
        return None
    digest = sha256(label_val)
    try:
        record = json.loads(record_path(label_val).read_text())
        protocol = record["protocol"] if record["split"]["sha256"] == digest else "official"
    except (OSError, ValueError, KeyError, TypeError):
        protocol = "official"
    return {"file": Path(label_val).name, "sha256": digest, "protocol": protocol}


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m avqa.protocols", description="Write an evaluation protocol's validation split: video-disjoint is the "
                                            "validation file less every question whose video is in the test file.",
                                epilog=EXIT_CODES)
    p.add_argument("protocol", choices=["video-disjoint"], help="the split to write")
    p.add_argument("--data", default="data/music_avqa/json_update", metavar="DIR",
                   help="the folder of avqa-val.json and avqa-test.json (default: %(default)s)")
    p.add_argument("--val", default=None, metavar="FILE", help="the validation file (default: DIR/avqa-val.json)")
    p.add_argument("--test", default=None, metavar="FILE", help="the test file (default: DIR/avqa-test.json)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help=f"the split to write (default: DIR/{SPLIT_NAME}); its record goes beside it as "
                        f"<name>.record.json")
    args = p.parse_args(argv)
    d = Path(args.data)
    val, test = Path(args.val or d / "avqa-val.json"), Path(args.test or d / "avqa-test.json")
    for flag, path in (("--val", val), ("--test", test)):
        if not path.is_file():
            raise SystemExit(f"{flag} {path}: {'is a folder' if path.is_dir() else 'not found'}; give the annotation "
                             f"file (or --data, the folder that holds avqa-val.json and avqa-test.json)")
    out = Path(args.out or d / SPLIT_NAME)
    rec = write_video_disjoint(val, test, out)
    print(f"{out}: {rec['split']['questions']:,} of {rec['val']['questions']:,} validation questions on "
          f"{rec['split']['videos']:,} of {rec['val']['videos']:,} videos; removed {rec['removed']['questions']:,} "
          f"questions on the {rec['removed']['videos']:,} videos that {test} also holds (sha256 {rec['split']['sha256'][:16]})")
    print(f"record: {record_path(out)}; train with --label_val {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
