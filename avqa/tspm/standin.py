"""Stand-in TSPM features made from a synthetic set's own features, with no CLIP or ViT network at all.

    python -m avqa.tspm.standin --data data --out data/feats

writes, under --out, the release's folder layout (the TSPM scripts' defaults read it from data/feats):

- ``vggish/``: the set's VGGish features as they are (not copied when --out is the set's feats/);
- ``clip_feats/frame_1fps_ViT-L14@336px/``: [T,768], each second's 14x14 ResNet map averaged over
  positions, then a fixed seeded projection 512 -> 768;
- ``ToMe_feat/tome14/``: [F,14,1024] float16 at seconds ``token_seconds(T, F)`` (F = min(10, T)): the
  14 rows of each 14x14 map averaged into 14 region tokens, projected 512 -> 1024;
- ``clip_feats/qst_ViT-L14@336px/`` and ``clip_feats/qaPrompt_ViT-L14@336px/``: [768] per question id,
  the mean of fixed seeded vectors of the question's words (fillers in place); the prompt is the
  question's template sentence (its <Object> tags left as words).

They are not CLIP or ToMe features: the same information as the AVST inputs, in TSPM's shapes, so
TSPM runs end to end on a synthetic set. Each folder's metadata (``<folder>.json``) says ``stand-in``,
the seed and the set it came from; a folder without a stand-in's metadata is never replaced
unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..annotations import load_annotations, question_key, tokenize
from ..data import AUDIO_SHAPE, VISUAL_SHAPE
from ..store import FeatureError, FeatureStore
from ..utils import EXIT_CODES, atomic_dir, atomic_write_text, metadata_path, user_errors
from ..features.seconds import token_seconds

FOLDERS = {"audio": "vggish", "frames": "clip_feats/frame_1fps_ViT-L14@336px", "tokens": "ToMe_feat/tome14",
           "question": "clip_feats/qst_ViT-L14@336px", "prompt": "clip_feats/qaPrompt_ViT-L14@336px"}
TOKEN_FRAMES = 10
KIND = "stand-in"


def _projection(seed: int, name: str, rows: int, cols: int) -> np.ndarray:
    """A fixed random matrix [rows, cols] of variance 1/rows, the same for one (seed, name)."""
    rng = np.random.default_rng([seed, int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)])
    return (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32)


def word_vector(word: str, seed: int, dim: int = 768) -> np.ndarray:
    """The stand-in embedding of one word: a fixed unit-variance vector of (seed, word)."""
    return _projection(seed, f"word:{word}", 1, dim)[0]


def sentence_vector(words: Sequence[str], seed: int, dim: int = 768) -> np.ndarray:
    """The mean of the words' stand-in vectors, [dim] float32."""
    return np.mean([word_vector(w, seed, dim) for w in words], axis=0).astype(np.float32)


def _guard(target: Path, overwrite: bool) -> None:
    """Refuse to replace a folder that is not a stand-in (real features, say) unless --overwrite."""
    if not target.exists() or overwrite:
        return
    try:
        kind = json.loads(metadata_path(target).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != KIND:
        raise SystemExit(f"{target} exists and is not a stand-in folder (no stand-in metadata in "
                         f"{metadata_path(target)}): choose another --out, or pass --overwrite to replace it")


def _meta(what: str, data: Path, seed: int, seconds: int | None, shape: list | None, dtype: str) -> dict:
    return {"backbone": f"{KIND} {what}", "kind": KIND, "seed": seed, "source": str(data.resolve()),
            "seconds": seconds, "shape_per_video": shape, "dtype": dtype,
            "description": __doc__.split("\n\n")[0], "written": time.strftime("%Y-%m-%d %H:%M:%S")}


def make_standins(data: str | Path, out: str | Path, seed: int = 0, overwrite: bool = False,
                  token_frames: int = TOKEN_FRAMES) -> dict[str, Path]:
    """Write TSPM-format stand-in folders under ``out`` from the set ``data`` (json/*.json, feats/vggish,
    feats/res18_14x14); returns each input's folder (keys of FOLDERS)."""
    data, out = Path(data), Path(out)
    annotation_files = sorted((data / "json").glob("*.json"))
    if not annotation_files:
        raise SystemExit(f"--data {data}: no annotation files in {data / 'json'}: give a set made by "
                         f"python -m avqa.synthetic (and its features)")
    samples = [s for f in annotation_files for s in load_annotations(f)]
    videos = sorted({s["video_id"] for s in samples})
    audio = FeatureStore(data / "feats" / "vggish", AUDIO_SHAPE)
    visual = FeatureStore(data / "feats" / "res18_14x14", VISUAL_SHAPE)
    try:
        T = audio.check(videos, name="VGGish features")
        if visual.check(videos, name="14x14 features") != T:
            raise SystemExit(f"--data {data}: VGGish and 14x14 features differ in length: extract both again")
    except FeatureError as e:
        raise SystemExit(f"--data {data}: {e}") from None
    F = min(token_frames, T)
    seconds = token_seconds(T, F)
    targets = {k: out / v for k, v in FOLDERS.items()}
    for target in targets.values():
        _guard(target, overwrite)
    frame_proj = _projection(seed, "frames", 512, 768)
    token_proj = _projection(seed, "tokens", 512, 1024)

    if targets["audio"].resolve() != audio.folder.resolve():
        with atomic_dir(targets["audio"]) as tmp:
            for v in videos:
                shutil.copyfile(audio.path(v), tmp / f"{v}.npy")
        source = metadata_path(audio.folder)
        original = json.loads(source.read_text()) if source.is_file() else {}
        atomic_write_text(metadata_path(targets["audio"]),
                          json.dumps({**original, **_meta("copy of the set's VGGish features", data, seed, T,
                                                          [T, 128], "float32")}, indent=1))
    with atomic_dir(targets["frames"]) as frames_tmp, atomic_dir(targets["tokens"]) as tokens_tmp:
        for v in videos:
            maps = np.load(visual.path(v), mmap_mode="r")                        # [T, 512, 14, 14]
            pooled = np.asarray(maps.mean(axis=(2, 3)), dtype=np.float32)        # [T, 512]
            np.save(frames_tmp / f"{v}.npy", pooled @ frame_proj)                # [T, 768]
            rows = np.asarray(maps[seconds].mean(axis=3), dtype=np.float32)     # [F, 512, 14]
            tokens = np.einsum("fcr,cd->frd", rows, token_proj)                 # [F, 14, 1024]
            np.save(tokens_tmp / f"{v}.npy", tokens.astype(np.float16))
    atomic_write_text(metadata_path(targets["frames"]),
                      json.dumps(_meta("frame features (pooled 14x14 maps, projected)", data, seed, T, [T, 768],
                                       "float32"), indent=1))
    atomic_write_text(metadata_path(targets["tokens"]),
                      json.dumps({**_meta("region tokens (14 row means of the 14x14 maps, projected)", data, seed, T,
                                          [F, 14, 1024], "float16"),
                                  "token_seconds": seconds.tolist()}, indent=1))
    by_key = {question_key(s): s for s in samples}
    for what, words_of in (("question", tokenize), ("prompt", _template_words)):
        with atomic_dir(targets[what]) as tmp:
            for key, s in by_key.items():
                np.save(tmp / f"{key}.npy", sentence_vector(words_of(s), seed))
        atomic_write_text(metadata_path(targets[what]),
                          json.dumps(_meta(f"{what} text features (mean of seeded word vectors)", data, seed, None,
                                           [768], "float32"), indent=1))
    return targets


def _template_words(sample: dict) -> list[str]:
    """The question's template sentence as words (its tags, e.g. <Object>, stay)."""
    return sample["question_content"].rstrip().rstrip("?？").split()


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a synthetic set: json/*.json, feats/vggish, feats/res18_14x14")
    p.add_argument("--out", required=True, help="where the five TSPM folders go (the set's feats/ suits the "
                                                "TSPM scripts' defaults)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed projections and word vectors")
    p.add_argument("--overwrite", action="store_true", help="replace folders that are not stand-ins")
    args = p.parse_args(argv)
    for what, folder in make_standins(args.data, args.out, args.seed, args.overwrite).items():
        print(f"{what}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
