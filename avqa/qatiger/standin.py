"""QA-TIGER's inputs on a synthetic set, made with the synthetic-world stand-ins, in its release's layout.

    python -m avqa.qatiger.standin --data data

QA-TIGER reads three folders under ``DATA/feats`` (FOLDERS) and encodes the question itself with a
frozen CLIP text tower:

- ``vggish/`` [T,128]: the set's VGGish features, as the main job makes them;
- ``frame_ViT-L14@336px/`` [T,768]: CLIP frame features, one per second. They are TSPM's
  (``clip_feats/frame_1fps_ViT-L14@336px/``, made by the ``tspm_clip_frames`` stage or TSPM's frame
  extractor), so the folder and its metadata are relative symbolic links to TSPM's, never a second
  extraction;
- ``visual_tome14/`` [T,14,D]: ToMe tokens of every second's frame (``--frames per_second`` of the
  ToMe extractor), here from the stand-in ViT (D = 192). Where TSPM's token folder already holds one
  frame per second of the same ViT (clips of at most 10 s, as the synthetic sets' are), it is linked
  too; otherwise the tokens are extracted;
- the question encoder: the text tower of the stand-in CLIP file (TEXT_ENCODER; text width 64, the
  published 768-wide output), which QA-TIGER's model loads frozen.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..features.files import Report, default_seconds
from ..tspm.stages import MAKE, STANDIN_CLIP, STANDIN_VIT, standin_problem
from ..utils import EXIT_CODES, metadata_path, sha256

FOLDERS = {"audio": "vggish", "frames": "frame_ViT-L14@336px", "tokens": "visual_tome14"}
# where TSPM's features of the same kind are, under feats/, how they are made, and what they are
TSPM_FOLDERS = {"frames": "clip_feats/frame_1fps_ViT-L14@336px", "tokens": "ToMe_feat/tome14"}
MAKE_TSPM = {"frames": "feat_script/extract_clip_feat/extract_frames_ViT-L14@336px.py",
             "tokens": "feat_script/extract_ToMe/extract_tome14.py --frames per_second"}
WHAT = {"frames": "CLIP frame features", "tokens": "ToMe tokens"}
TEXT_ENCODER = STANDIN_CLIP  # the frozen question encoder of QA-TIGER on a synthetic set
TOKENS = 14


@dataclass(frozen=True)
class StandinConfig:
    """Where a synthetic set is and how its QA-TIGER inputs are made."""
    data: Path                     # the set: videos/, json/, feats/
    seconds: int                   # T, the clips' length
    device: str | None = None      # for the token ViT (default: CUDA when present, else the CPU)
    vit_weights: Path = STANDIN_VIT

    @property
    def feats(self) -> Path:
        return self.data / "feats"

    def folder(self, name: str) -> Path:
        """QA-TIGER's folder of input ``name`` (a key of FOLDERS)."""
        return self.feats / FOLDERS[name]


def link_to_tspm(cfg: StandinConfig, name: str) -> None:
    """QA-TIGER's folder ``name`` ('frames' or 'tokens') and its metadata: relative links to TSPM's folder of
    the same features, replaced atomically. SystemExit when TSPM's folder is missing, or when QA-TIGER's
    name holds something else."""
    source = cfg.feats / TSPM_FOLDERS[name]
    if not metadata_path(source).is_file():
        raise SystemExit(f"{source} (or its metadata) not found: QA-TIGER reads TSPM's {WHAT[name]} on this set; "
                         f"make them with python -m avqa.pipeline --tspm, or {MAKE_TSPM[name]} --output_dir {source}")
    for target, origin in _links(cfg, name):
        if target.exists() and not target.is_symlink():
            raise SystemExit(f"{target} exists and is not a link to {origin}: move it away or delete it (on a "
                             f"synthetic set QA-TIGER reads TSPM's {WHAT[name]} through that link)")
        temp = target.with_name(f".{target.name}.{os.getpid()}.link")
        temp.unlink(missing_ok=True)
        temp.symlink_to(os.path.relpath(origin, target.parent), target_is_directory=origin.is_dir())
        os.replace(temp, target)


def linked_to_tspm(cfg: StandinConfig, name: str) -> str | None:
    """None when QA-TIGER's folder ``name`` and its metadata are the links to TSPM's, else why not."""
    for target, origin in _links(cfg, name):
        if not target.is_symlink() or target.resolve() != origin.resolve() or not origin.exists():
            return f"{target} is not a link to {origin}"
    return None


def _links(cfg: StandinConfig, name: str) -> list[tuple[Path, Path]]:
    """(link, what it points at) for QA-TIGER's folder ``name`` and for its metadata."""
    target, origin = cfg.folder(name), cfg.feats / TSPM_FOLDERS[name]
    return [(target, origin), (metadata_path(target), metadata_path(origin))]


def tspm_tokens_per_second(cfg: StandinConfig) -> bool:
    """Whether TSPM's token folder holds a token frame for every second (its clips are at most 10 s long,
    TSPM's --sample_frames), made with the same ViT: then it is QA-TIGER's, linked, not extracted again."""
    try:
        recorded = json.loads(metadata_path(cfg.feats / TSPM_FOLDERS["tokens"]).read_text())
    except (OSError, ValueError):
        return False
    return (recorded.get("token_seconds") == list(range(cfg.seconds)) and cfg.vit_weights.is_file()
            and recorded.get("weights_sha256") == sha256(cfg.vit_weights)
            and recorded.get("shape_per_video", [None, None])[1] == TOKENS)


def extract_tokens_per_second(cfg: StandinConfig) -> Report:
    """ToMe tokens of every second's frame, [T, 14, D], with the stand-in ViT, into ``feats/visual_tome14``."""
    from ..features.tokens import extract_tokens
    problem = standin_problem(cfg.vit_weights, MAKE["vit"])
    if problem:
        raise SystemExit(problem)
    return extract_tokens(cfg.data / "videos", cfg.folder("tokens"), cfg.seconds, cfg.seconds, TOKENS,
                          weights=str(cfg.vit_weights), device=cfg.device)


def text_encoder_problem(path: Path = TEXT_ENCODER) -> str | None:
    """The sentence that stops a QA-TIGER run on a synthetic set whose stand-in CLIP file is missing."""
    return standin_problem(path, MAKE["clip"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="a synthetic set whose TSPM CLIP frame features exist (feats/" + TSPM_FOLDERS["frames"] + ")")
    p.add_argument("--seconds", type=int, default=None, help="T, the clip length (default: the set's)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N for the token ViT (default: cuda when present)")
    args = p.parse_args(argv)
    data = Path(args.data)
    cfg = StandinConfig(data, args.seconds or default_seconds(data / "videos"), args.device)
    link_to_tspm(cfg, "frames")
    if tspm_tokens_per_second(cfg):
        link_to_tspm(cfg, "tokens")
        report = None
    else:
        report = extract_tokens_per_second(cfg)
        print(report.summary())
    problem = text_encoder_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    for name in FOLDERS:
        print(f"{name}: {cfg.folder(name)}")
    print(f"question encoder: {TEXT_ENCODER}")
    return report.exit_code() if report else 0


if __name__ == "__main__":
    sys.exit(main())
