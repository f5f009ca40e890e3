"""QA-TIGER in the main job and the ladder: python -m avqa.pipeline --tiny --family avst,qatiger on a finished
tiny main job runs QA-TIGER's stages (features, training, test, the time score), the summary holds its
column beside AVST's and question-only's and its time table, a rerun skips them; python -m avqa.ladder
--family qatiger trains and tests its rungs on those features; the time score's arithmetic on a
hand-made case.

The stand-in CLIP and ViT of the features are test_pipeline_tspm's placeholders; the question encoder is
the shipped stand-in (avqa.qatiger.standin.TEXT_ENCODER)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from avqa.qatiger.time_score import format_time, spread, time_table
from conftest import MAIN_JOB, copy_of_main_job, e2e_fixture
from test_pipeline_tspm import pipeline as in_process, placeholders

STAGES = ["tspm_clip_frames", "tspm_tokens", "qatiger_clip_frames", "qatiger_tokens", "qatiger", "test_qatiger",
          "qatiger_time"]


def pipeline(root: Path, clip: Path, vit: Path) -> tuple[int, str, str]:
    """The main job with --tiny --family avst,qatiger in ``root``, in this process."""
    return in_process(root, clip, vit, [*MAIN_JOB[2:], "--family", "avst,qatiger"])


@e2e_fixture(scope="module")
def job(tiny_main_job, tmp_path_factory):
    root = copy_of_main_job(tiny_main_job, tmp_path_factory, "pipeline_qatiger")
    clip, vit = placeholders(tmp_path_factory.mktemp("standins"))
    code, out, err = pipeline(root, clip, vit)
    assert code == 0, err[-3000:]
    return root, clip, vit, out


def test_qatiger_stages_run_and_the_summary_shows_its_table_untrained_figure_and_time_score(job):
    root, _, _, out = job
    o = root / "out"
    summary = json.loads((o / "summary.json").read_text())
    ran = {s["stage"]: s["status"] for s in summary["stages"]}
    assert list(ran)[-len(STAGES):] == STAGES and all(ran[s] == "ran" for s in STAGES), ran
    assert all(status.startswith("skipped") for s, status in ran.items() if s not in STAGES), ran
    report = json.loads((o / "qatiger_test.json").read_text())
    test = json.loads((root / "data" / "json" / "avqa-test.json").read_text())
    assert report["model"] == "qatiger" and len(report["predictions"]) == len(test)
    assert summary["tables"]["qatiger"] == report["table"]
    assert set(summary["tables"]) == {"avst", "question_only", "qatiger"}
    header = next(line for line in out.splitlines() if "question_only" in line and "avst" in line)
    assert header.split() == ["avst", "question_only", "qatiger"]
    time = json.loads((o / "qatiger_time.json").read_text())
    assert summary["qatiger_time"] == time
    row = time["table"]["all"]
    assert row["questions"] > 0 and all(0.0 <= row[k] <= 100.0 + 1e-4 for k in row if k != "questions")  # float32 sums
    # the time score's pass over the test split gives the trained accuracy the test report holds
    assert time["accuracy"]["trained"] == pytest.approx(report["table"]["Overall"]["accuracy"], abs=0.01)
    assert f"trained {time['accuracy']['trained']:.2f}%, the same model untrained " \
           f"{time['accuracy']['untrained']:.2f}%, val before training" in out
    assert "QA-TIGER's Gaussian experts" in out and "uniform" in out
    assert set(time["spread"]) == {"audio", "video"} and "how the trained weights move with the question" in out
    # the training stage's stamp holds the tiny recipe and the stand-in text encoder's sha256
    from avqa.qatiger.standin import TEXT_ENCODER
    from avqa.utils import sha256
    stamp = json.loads((o / ".stages" / "qatiger.json").read_text())
    assert stamp["config"]["text_encoder_sha256"] == sha256(TEXT_ENCODER)
    assert stamp["config"]["flags"] == ["--epochs", "1", "--lr", "1e-3", "--lr_step", "1", "--batch-size", "16",
                                        "--d_model", "64", "--no-release_pairing"]


def test_a_second_run_skips_every_qatiger_stage(job):
    root, clip, vit, _ = job
    code, out, err = pipeline(root, clip, vit)
    assert code == 0, err[-3000:]
    assert all(f"[{s}] complete, skipped" in out for s in STAGES)
    assert "\n== " not in out


def test_the_ladder_trains_and_tests_qatigers_rungs_on_its_features(job, tmp_path):
    from avqa.ladder import main
    root, clip, vit, _ = job
    out = tmp_path / "ladder"
    code, printed, err = in_process(root, clip, vit, ["--family", "qatiger", "--data", str(root / "data"), "--out",
                                                      str(out), "--epochs", "1", "--batch-size", "16", "--quiet"], main)
    assert code == 0, err[-3000:]
    rows = json.loads((out / "ladder.json").read_text())["rungs"]
    assert [r["model"] for r in rows] == ["no_question_fusion", "no_patch_selector", "mean_pool", "few_experts",
                                         "qatiger"]
    for r in rows:
        report = json.loads(Path(r["report"]).read_text())
        assert report["model"] == "qatiger" and r["table"]["Overall"]["accuracy"] is not None
    from avqa import checkpoint
    args = checkpoint.load_dict(Path(rows[3]["checkpoint"]))["args"]
    assert (args["num_experts"], args["topK"], args["patch_dim"]) == (3, 3, 192)
    assert "QA-TIGER's ablation rungs" in printed


def test_time_score_arithmetic_on_a_hand_made_case():
    """Two questions on 4-s clips: weights, sounding seconds and the expected shares written out by hand."""
    questions = [{"row": 0, "sounding": {0, 1}, "T": 4},      # sounds in half the clip: informative
                 {"row": 5, "sounding": {0, 1, 2, 3}, "T": 4}]  # sounds throughout: every weighting scores 100
    trained = {0: {"audio": [0.4, 0.4, 0.1, 0.1], "video": [0.7, 0.1, 0.1, 0.1]},
               5: {"audio": [0.25] * 4, "video": [0.1, 0.2, 0.3, 0.4]}}
    untrained = {0: {"audio": [0.0, 0.1, 0.4, 0.5], "video": [0.25] * 4},
                 5: {"audio": [0.25] * 4, "video": [0.25] * 4}}
    table = time_table(questions, trained, untrained)
    assert table["all"] == pytest.approx({"questions": 2, "trained_audio": (80 + 100) / 2, "trained_video": (80 + 100) / 2,
                                          "untrained_audio": (10 + 100) / 2, "untrained_video": (50 + 100) / 2,
                                          "uniform": (50 + 100) / 2})
    assert table["informative"] == pytest.approx({"questions": 1, "trained_audio": 80, "trained_video": 80,
                                                  "untrained_audio": 10, "untrained_video": 50, "uniform": 50})
    assert "informative      1 qst    80.00%  80.00%    10.00%  50.00%    50.00%" in format_time(table)
    # how the weights move with the question: seconds' standard deviations over the two questions, averaged
    assert spread(trained) == pytest.approx({"audio": (0.075 + 0.075 + 0.075 + 0.075) / 4,
                                             "video": (0.3 + 0.05 + 0.1 + 0.15) / 4})
    assert spread(untrained)["video"] == 0.0
