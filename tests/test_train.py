"""Grounding, AVST, baseline and question-only through their command lines, on the tiny set."""
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from avqa.annotations import INSTRUMENTS
from conftest import REAL, ROOT, data_flags, needs_real, run_here, trained_avst_flags

AVST = "net_grd_avst/main_avst.py"
GRD = "grounding_gen/main_grd_gen.py"
BASE = "net_grd_baseline/main_qa_grd_baseline.py"


def test_training_writes_checkpoints_log_and_tensorboard(trained, tiny_features):
    ckpt = torch.load(trained / "avst" / "avst.pt", weights_only=True)
    assert ckpt["model"] == "avst" and ckpt["question_vocab"][0] == "<pad>" and 1 <= ckpt["epoch"] <= 2
    log = (trained / "avst" / "avst.log").read_text()
    assert "flags:" in log and "sha256" in log and '"init": "random, seed 0"' in log
    assert "started from the grounding model" in log
    assert "epoch 1:" in log and "epoch 2:" in log and "samples/s" in log and "val accuracy" in log
    assert list((trained / "runs" / "net_avst").glob("*/events.out.tfevents.*"))
    assert list((trained / "runs" / "grounding_gen").glob("*/events.out.tfevents.*"))
    assert (trained / "grd" / "main_grounding_gen_best.pt").exists()


def test_test_mode_reports_every_type_in_order_with_any_batch_size(trained, tiny_features):
    d = data_flags(tiny_features)
    tables = []
    for bs in ("1", "7"):
        res = trained / f"test_{bs}.json"
        out = run_here(AVST, *d, "--mode", "test", "--model_save_dir", str(trained / "avst"), "--eval_batch_size",
                       bs, "--results", str(res)).stdout
        names = [line[2:20].strip() for line in out.splitlines() if line.startswith("  ") and "questions)" in line]
        assert names == ["Audio Counting", "Audio Comparative", "Audio Avg", "Visual Counting", "Visual Location",
                         "Visual Avg", "AV Existential", "AV Location", "AV Counting", "AV Comparative",
                         "AV Temporal", "AV Avg", "Overall"]
        report = json.loads(res.read_text())
        tables.append(report["table"])
    samples = json.loads((tiny_features / "json" / "avqa-test.json").read_text())
    preds = report["predictions"]
    assert [p["row"] for p in preds] == list(range(len(samples)))
    assert [p["question_id"] for p in preds] == [s["question_id"] for s in samples]
    acc = 100 * np.mean([p["correct"] for p in preds])
    assert abs(acc - report["table"]["Overall"]["accuracy"]) < 0.01
    assert tables[0] == tables[1]


def test_grounding_test_mode(trained, tiny_features):
    out = run_here(GRD, *data_flags(tiny_features), "--mode", "test", "--model_save_dir", str(trained / "grd")).stdout
    assert "match accuracy on" in out


def test_baseline_trains_and_tests(tiny_features, tmp_path):
    """(Question-only through main_avst.py trains and tests in test_tspm_run.py and in the main job's test.)"""
    d = data_flags(tiny_features)
    run_here(BASE, *d, "--model", "AVQA_Fusion_Net", "--model_save_dir", str(tmp_path), "--checkpoint", "m",
             "--epochs", "1", "--tensorboard_dir", "")
    out = run_here(BASE, *d, "--model", "AVQA_Fusion_Net", "--model_save_dir", str(tmp_path), "--checkpoint", "m",
                   "--mode", "test").stdout
    assert "Overall" in out


def test_resume_after_a_kill_gives_the_weights_of_an_unbroken_run(trained, tiny_features, tmp_path):
    """The shared trained AVST is the unbroken run; the same flags, killed after its first epoch and resumed."""
    d = [*trained_avst_flags(tiny_features, trained), "--tensorboard_dir", ""]
    broken = tmp_path / "broken"
    proc = subprocess.Popen([sys.executable, AVST, *d, "--model_save_dir", str(broken)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (broken / "avst_last.pt").exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert proc.returncode == -9, "the run should be killed before it ends"
    first = torch.load(broken / "avst_last.pt", weights_only=True)["epoch"]
    assert first < 2
    out = run_here(AVST, *d, "--model_save_dir", str(broken), "--resume").stdout
    assert "resumed from" in out and f"after epoch {first}" in out
    a = torch.load(trained / "avst" / "avst_last.pt", weights_only=True)["state_dict"]
    b = torch.load(broken / "avst_last.pt", weights_only=True)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def _copy_set(tiny_features, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_features / "json", d / "json")
    shutil.copytree(tiny_features / "feats", d / "feats")
    return d


def _expect_refusal(d, tmp_path, *extra, words=()):
    save = tmp_path / "save"
    proc = run_here(AVST, *data_flags(d), "--model_save_dir", str(save), "--epochs", "1", "--pretrained_grounding",
                    "none", "--tensorboard_dir", "", *extra, check=False)
    assert proc.returncode != 0
    for w in words:
        assert w in proc.stderr, proc.stderr[-2000:]
    assert not list(save.glob("*.pt")) if save.exists() else True
    return proc


def test_missing_feature_file_stops_before_training(tiny_features, tmp_path):
    d = _copy_set(tiny_features, tmp_path)
    train_video = json.loads((d / "json" / "avqa-train.json").read_text())[0]["video_id"]
    victim = d / "feats" / "res18_14x14" / f"{train_video}.npy"
    victim.unlink()
    _expect_refusal(d, tmp_path, words=(str(victim), "missing"))


def test_wrong_shape_and_nan_stop_before_training(tiny_features, tmp_path):
    d = _copy_set(tiny_features, tmp_path)
    files = sorted((d / "feats" / "vggish").glob("*.npy"))
    np.save(files[0], np.zeros((4, 64), np.float32))
    bad = np.load(files[1])
    bad[2, 5] = np.nan
    np.save(files[1], bad)
    _expect_refusal(d, tmp_path, words=(str(files[0]), "shape [4, 64]"))
    np.save(files[0], np.zeros((4, 128), np.float32))
    _expect_refusal(d, tmp_path, words=(str(files[1]), "NaN"))


def test_words_and_answers_outside_the_vocabulary_are_named(tiny_features, tmp_path):
    d = _copy_set(tiny_features, tmp_path)
    train = json.loads((d / "json" / "avqa-train.json").read_text())
    seen = {w for s in train for w in json.loads(s["templ_values"])}
    unseen = next(c for c in ("suona", "bagpipe", "erhu", "tuba", "guzheng", "banjo", "pipa") if c not in seen)
    val = json.loads((d / "json" / "avqa-val.json").read_text())
    val[0].update(question_content="Is there a <Object> sound?", templ_values=json.dumps([unseen]), question_id=99001)
    (d / "json" / "avqa-val.json").write_text(json.dumps(val))
    _expect_refusal(d, tmp_path, words=("avqa-val.json", "question_id 99001", unseen))
    answers = {s["anser"] for s in train}
    val[0].update(templ_values=json.dumps([min(seen & set(INSTRUMENTS))]),
                  anser=next(a for a in ("more than ten", "ten", "nine", "simultaneously") if a not in answers))
    (d / "json" / "avqa-val.json").write_text(json.dumps(val))
    _expect_refusal(d, tmp_path, words=("question_id 99001", "never occurs in the train file"))


def test_checkpoint_of_another_model_or_vocabulary_is_refused(trained, tiny_features, tmp_path):
    d = data_flags(tiny_features)
    shutil.copy(trained / "grd" / "main_grounding_gen_best.pt", tmp_path / "avst.pt")
    proc = run_here(AVST, *d, "--mode", "test", "--model_save_dir", str(tmp_path), check=False)
    assert proc.returncode != 0 and "holds a 'grounding' model, not 'avst'" in proc.stderr
    other_train = tmp_path / "train.json"
    rows = json.loads((tiny_features / "json" / "avqa-train.json").read_text())
    other_train.write_text(json.dumps(rows[::-1]))  # same words, another order: another vocabulary
    proc = run_here(AVST, *d, "--label_train", str(other_train), "--mode", "test", "--model_save_dir",
                    str(trained / "avst"), "--results", str(tmp_path / "r.json"), check=False)
    assert proc.returncode != 0 and "another question vocabulary" in proc.stderr


@needs_real
@pytest.mark.parametrize("release", ["json", "json_update"])
def test_real_annotation_files_work_in_test_mode(tmp_path, release):
    """Both releases of the real test file, through test mode, with any batch size (features are stand-ins)."""
    from avqa.annotations import Vocab, load_annotations
    from avqa.models import AVST as AVSTModel
    from avqa.checkpoint import FORMAT as CHECKPOINT_FORMAT
    rows = load_annotations(REAL / release / "avqa-test.json")[:160]
    train = load_annotations(REAL / release / "avqa-val.json")  # stands in for the train file (not shipped here)
    vocab = Vocab.from_samples(train + rows)
    (tmp_path / "train.json").write_text(json.dumps(train + rows))
    (tmp_path / "test.json").write_text(json.dumps(rows))
    rng = np.random.default_rng(0)
    for sub, shape in (("vggish", (1, 128)), ("res18_14x14", (1, 512, 14, 14))):
        (tmp_path / sub).mkdir()
        for vid in {r["video_id"] for r in rows}:
            np.save(tmp_path / sub / f"{vid}.npy", rng.random(shape, dtype=np.float32))
    model = AVSTModel(len(vocab.questions), len(vocab.answers))
    torch.save({"format": CHECKPOINT_FORMAT, "model": "avst", "state_dict": model.state_dict(),
                "question_vocab": list(vocab.questions), "answer_vocab": list(vocab.answers)}, tmp_path / "avst.pt")
    out = run_here(AVST, "--mode", "test", "--audio_dir", str(tmp_path / "vggish"), "--video_res14x14_dir",
              str(tmp_path / "res18_14x14"), "--label_train", str(tmp_path / "train.json"), "--label_test",
              str(tmp_path / "test.json"), "--model_save_dir", str(tmp_path), "--eval_batch_size", "13",
              "--results", str(tmp_path / "r.json"), "--quiet").stdout
    assert "(160 questions)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert [p["question_id"] for p in report["predictions"]] == [r["question_id"] for r in rows]
