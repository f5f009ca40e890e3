"""QA-TIGER's feature stages (avqa.qatiger.stages) on a finished tiny main job: TSPM's CLIP frame and
per-second token folders linked under QA-TIGER's names (extracted once), a rerun that skips them, a
folder in a link's place refused with one sentence; python -m avqa.qatiger.standin extracting the
per-second tokens where TSPM's are not per second.

The stand-in weights are the placeholders of test_pipeline_tspm (random weights of the stand-in sizes)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avqa.qatiger.stages import QATigerFeatureStages
from avqa.qatiger.standin import TSPM_FOLDERS
from conftest import copy_of_main_job, e2e_fixture, run_here

TSPM_FRAMES, TSPM_TOKENS = TSPM_FOLDERS["frames"], TSPM_FOLDERS["tokens"]
from test_pipeline_tspm import pipeline as tspm_pipeline, placeholders

STAGES = ["tspm_clip_frames", "tspm_tokens", "qatiger_clip_frames", "qatiger_tokens"]


def pipeline(root: Path, clip: Path, vit: Path) -> tuple[int, str, str]:
    """test_pipeline_tspm's run of the tiny main job, its stages those of the main job then QA-TIGER's features."""
    from avqa import pipeline as P
    from avqa.job import MainJob

    def define(self):
        job = MainJob(self.args, self.replaced)
        self.stages = {s.name: s for s in [*job.stages(), *QATigerFeatureStages(job).stages()]}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(P.Pipeline, "_define", define)
        return tspm_pipeline(root, clip, vit)


@e2e_fixture(scope="module")
def job(tiny_main_job, tmp_path_factory):
    root = copy_of_main_job(tiny_main_job, tmp_path_factory, "qatiger_features")
    clip, vit = placeholders(tmp_path_factory.mktemp("standins"))
    code, out, err = pipeline(root, clip, vit)
    assert code == 0, err[-3000:]
    return root, clip, vit


def _ran(root: Path) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in json.loads((root / "out" / "summary.json").read_text())["stages"]}


def test_the_stages_make_qa_tigers_layout_from_tspms_frames(job):
    root, _, vit = job
    feats = root / "data" / "feats"
    ran = _ran(root)
    assert all(ran[s] == "ran" for s in STAGES), ran
    frames, meta = feats / "frame_ViT-L14@336px", feats / "frame_ViT-L14@336px.json"
    # one extraction: QA-TIGER's folder and metadata are relative links to TSPM's
    assert frames.is_symlink() and meta.is_symlink()
    assert str(frames.readlink()) == TSPM_FRAMES and frames.resolve() == (feats / TSPM_FRAMES).resolve()
    videos = sorted(p.stem for p in (root / "data" / "videos").iterdir())
    assert sorted(p.stem for p in frames.glob("*.npy")) == videos
    assert np.load(frames / f"{videos[0]}.npy").shape == (4, 768)
    tokens = feats / "visual_tome14"
    assert tokens.is_symlink() and str(tokens.readlink()) == TSPM_TOKENS  # TSPM's 4 token frames of 4 s clips
    recorded = json.loads((feats / "visual_tome14.json").read_text())
    assert recorded["token_seconds"] == [0, 1, 2, 3] and recorded["shape_per_video"] == [4, 14, 192]
    assert recorded["weights"] == str(vit) and recorded["merging"]["r"] == 92
    assert all(np.load(tokens / f"{v}.npy").shape == (4, 14, 192) for v in videos)


def test_a_rerun_skips_them_and_a_folder_in_the_links_place_is_refused(job):
    root, clip, vit = job
    code, _, err = pipeline(root, clip, vit)
    assert code == 0, err[-3000:]
    assert all(_ran(root)[s].startswith("skipped") for s in STAGES)
    feats = root / "data" / "feats"
    link = feats / "frame_ViT-L14@336px"
    link.unlink()
    shutil.copytree(feats / TSPM_FRAMES, link)
    try:
        code, _, err = pipeline(root, clip, vit)
        assert code == 1
        assert f"data/feats/frame_ViT-L14@336px exists and is not a link to data/feats/{TSPM_FRAMES}: move it " \
               f"away or delete it" in err
        assert "Traceback" not in err
    finally:
        shutil.rmtree(link)
    code, _, err = pipeline(root, clip, vit)
    assert code == 0 and link.is_symlink(), err[-3000:]


def test_standin_extracts_per_second_tokens_where_tspms_are_not(job, tmp_path):
    """TSPM's token folder of 2 frames for 4 s clips is not QA-TIGER's: the stand-in command extracts its own,
    with the shipped stand-in ViT, and links the frames."""
    root, _, _ = job
    data = tmp_path / "data"
    shutil.copytree(root / "data", data, symlinks=True, ignore=shutil.ignore_patterns("res18_14x14*"))
    feats = data / "feats"
    (feats / "visual_tome14").unlink()
    (feats / "visual_tome14.json").unlink()
    meta = json.loads((feats / f"{TSPM_TOKENS}.json").read_text())
    (feats / f"{TSPM_TOKENS}.json").write_text(json.dumps({**meta, "token_seconds": [0, 2]}))
    r = run_here("-m", "avqa.qatiger.standin", "--data", data)
    assert "frames: " in r.stdout and not (feats / "visual_tome14").is_symlink()
    recorded = json.loads((feats / "visual_tome14.json").read_text())
    assert recorded["token_seconds"] == [0, 1, 2, 3] and recorded["weights"].endswith("vit_tokens_synthetic.safetensors")
    videos = sorted(p.stem for p in (data / "videos").iterdir())
    assert all(np.load(feats / "visual_tome14" / f"{v}.npy").shape == (4, 14, 192) for v in videos)
