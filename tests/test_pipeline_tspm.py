"""python -m avqa.pipeline --tiny --tspm on a finished tiny main job: the main job's stages skip, and TSPM's
stages make its features with the stand-in weights, train, test and score its selection; the summary holds
its table and score, a rerun skips every stage, and a missing stand-in weights file stops its stage with
one sentence.

The stand-in weights here are placeholders (random weights of the stand-in architectures, in the
shipped files' formats) written to a temporary folder; the stages are pointed at them."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avqa.annotations import load_annotations
from avqa.tspm import stages as tspm_stages
from conftest import MAIN_JOB, copy_of_main_job, e2e_fixture, run_here

TSPM_STAGES = ["tspm_clip_frames", "tspm_clip_questions", "tspm_clip_prompts", "tspm_tokens", "tspm", "test_tspm",
               "tspm_selection"]
FLAGS = [*MAIN_JOB[2:], "--tspm"]  # the main job's flags and folders


def placeholders(folder: Path) -> tuple[Path, Path]:
    """Random CLIP (OpenAI's state_dict layout) and token ViT (timm's, safetensors) of the stand-in sizes."""
    import timm
    from safetensors.torch import save_file

    from avqa.features.clip import random_clip
    folder.mkdir(parents=True, exist_ok=True)
    clip, vit = folder / "clip_synthetic.pt", folder / "vit_tokens_synthetic.safetensors"
    torch.save(random_clip("standin", 0).state_dict(), clip)
    torch.manual_seed(0)
    net = timm.create_model("vit_large_patch16_384", pretrained=False, num_classes=0, img_size=224, patch_size=16,
                            embed_dim=192, depth=4, num_heads=3)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(vit))
    return clip, vit


def pipeline(root: Path, clip: Path, vit: Path, argv: list[str] = FLAGS, main=None) -> tuple[int, str, str]:
    """The main job with --tiny --tspm in ``root``, in this process, with the given stand-in files (``main(argv)``:
    another command, or other flags, run the same way)."""
    if main is None:
        from avqa.pipeline import main
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tspm_stages, "STANDIN_CLIP", clip)
        mp.setattr(tspm_stages, "STANDIN_VIT", vit)
        mp.setenv("TQDM_DISABLE", "1")
        mp.chdir(root)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
    return code, out.getvalue(), err.getvalue()


@e2e_fixture(scope="module")
def job(tiny_main_job, tmp_path_factory):
    """--tspm on a copy of the session's finished tiny main job: its stages skip, TSPM's run."""
    root = copy_of_main_job(tiny_main_job, tmp_path_factory, "pipeline_tspm")
    clip, vit = placeholders(tmp_path_factory.mktemp("standins"))
    code, out, err = pipeline(root, clip, vit)
    assert code == 0, err[-3000:]
    return root, clip, vit, out


def test_tspm_stages_run_after_the_main_job_and_write_the_table_report_and_selection(job):
    root, _, _, out = job
    d, o = root / "data", root / "out"
    summary = json.loads((o / "summary.json").read_text())
    ran = {s["stage"]: s["status"] for s in summary["stages"]}
    assert list(ran)[-len(TSPM_STAGES):] == TSPM_STAGES and all(ran[s] == "ran" for s in TSPM_STAGES)
    # --tspm after a finished main job adds TSPM's stages and redoes none of the main job's
    assert all(status.startswith("skipped") for s, status in ran.items() if s not in TSPM_STAGES), ran
    # the features, in the release's layout under the set's feats/, at the stand-ins' widths
    feats = d / "feats"
    video = sorted(p.stem for p in (d / "videos").glob("*.mp4"))[0]
    assert np.load(feats / "clip_feats" / "frame_1fps_ViT-L14@336px" / f"{video}.npy").shape == (4, 768)
    assert np.load(feats / "ToMe_feat" / "tome14" / f"{video}.npy").shape == (4, 14, 192)
    # the stand-in ViT's 4 blocks cannot leave 14 of 197 tokens at the release's r = 25: the fewest that do
    assert json.loads((feats / "ToMe_feat" / "tome14.json").read_text())["merging"]["r"] == 92
    test = load_annotations(d / "json" / "avqa-test.json")
    for folder in ("qst_ViT-L14@336px", "qaPrompt_ViT-L14@336px"):
        assert np.load(feats / "clip_feats" / folder / f"{test[0]['question_id']}.npy").shape == (1, 768)
    # trained on them (the token width read from their metadata), tested on every test question
    report = json.loads((o / "tspm_test.json").read_text())
    assert report["model"] == "tspm" and len(report["predictions"]) == len(test)
    assert summary["tables"]["tspm"] == report["table"] and set(summary["tables"]) == {"avst", "question_only", "tspm"}
    assert len((o / "tspm_results" / "tspm.result").read_text().splitlines()) == len(test)
    selection = json.loads((o / "tspm_selection.json").read_text())
    assert selection["top_k"] == 2 and summary["tspm_selection"] == selection
    assert {"trained", "untrained", "random"} <= set(selection["table"]["all"])
    # the summary prints TSPM's column beside AVST's and question-only's, and its selection score
    header = next(line for line in out.splitlines() if "question_only" in line and "avst" in line)
    assert header.split() == ["avst", "question_only", "tspm"]
    assert "TSPM's kept seconds (--top_k 2)" in out and "random k seconds" in out


def test_a_second_run_skips_every_stage(job):
    root, clip, vit, _ = job
    code, out, _ = pipeline(root, clip, vit)
    assert code == 0
    assert all(f"[{s}] complete, skipped" in out for s in TSPM_STAGES)
    assert "\n== " not in out  # nothing ran


def test_training_on_features_of_another_width_names_the_file_and_the_flag(job):
    root, *_ = job
    d = root / "data"
    feats = d / "feats"
    proc = run_here("net_tspm/main_train.py", "--audios_feat_dir", feats / "vggish",
                    "--visual_feat_dir", feats / "clip_feats" / "frame_1fps_ViT-L14@336px",
                    "--visual_patch_dir", feats / "ToMe_feat" / "tome14",
                    "--qst_feat_dir", feats / "clip_feats" / "qst_ViT-L14@336px",
                    "--qst_prompt_dir", feats / "clip_feats" / "qaPrompt_ViT-L14@336px",
                    "--label_train", d / "json" / "avqa-train.json", "--label_val", d / "json" / "avqa-val.json",
                    "--top_k", "2", "--model_save_dir", root / "wrong_width", check=False)
    message = proc.stderr.strip()
    assert proc.returncode == 1 and len(message.splitlines()) == 1, message
    assert str(feats / "ToMe_feat" / "tome14") in message and "width 192" in message and "--token_dim 192" in message
    assert not (root / "wrong_width").exists()


def test_a_missing_standin_file_stops_its_stage_with_the_file_and_the_command(job, tmp_path):
    root, clip, _, _ = job
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    absent = tmp_path / "vit_tokens_synthetic.safetensors"
    code, out, err = pipeline(copy, clip, absent)
    assert code == 1
    assert f"[tspm_tokens] failed: {absent} not found" in err and tspm_stages.MAKE["vit"] in err
    assert "== tspm:" not in out  # the stages after it did not run
