"""Test mode against the training of its checkpoint: the flags that shape the answers and the feature
files it learned from must be those it was trained with, or it stops before it predicts; its report
records the flags it ran with. (TSPM's switches: tests/test_tspm_run.py.)"""
import json
import shutil

import numpy as np
import pytest

from avqa.utils import metadata_path
from conftest import AVST, data_flags, run_here, trained_avst_flags


def _test(features, save, *extra, feats=None, check=True):
    return run_here(AVST, *data_flags(features, feats), "--mode", "test", "--model_save_dir", str(save), *extra,
                    check=check)


def _refused(proc, *words):
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for w in words:
        assert w in proc.stderr, f"{w!r} not in:\n{proc.stderr[-2000:]}"


def test_avst_test_mode_refuses_another_segments_and_records_its_flags(trained, tiny_features, tmp_path):
    flags = [*trained_avst_flags(tiny_features, trained), "--model_save_dir", str(trained / "avst")]
    report = tmp_path / "r.json"
    proc = run_here(AVST, *flags, "--mode", "test", "--segments", "2", "--results", str(report), check=False)
    _refused(proc, str(trained / "avst" / "avst.pt"), "--segments (10 at training, 2 now)", "(--segments 10)")
    assert not report.exists()
    run_here(AVST, *flags, "--mode", "test", "--results", str(report))
    ran = json.loads(report.read_text())["flags"]
    assert ran["segments"] == 10 and ran["mode"] == "test" and ran["model"] == "AVQA_Fusion_Net"


@pytest.mark.e2e
def test_test_mode_refuses_features_changed_since_training(tiny_features, tmp_path):
    """An extractor that rewrote the folder, or a file changed in place: refused, naming the flag and the
    file; a feature folder other than the training's is not compared."""
    feats, save = tmp_path / "feats", tmp_path / "avst"
    shutil.copytree(tiny_features / "feats", feats)
    run_here(AVST, *data_flags(tiny_features, feats), "--model_save_dir", str(save), "--pretrained_grounding", "none",
             "--tensorboard_dir", "", "--epochs", "1", "--batch-size", "16")
    report = save / "avst_avqa-test.json"
    _test(tiny_features, save, feats=feats)
    tested = report.read_bytes()
    train = json.loads((tiny_features / "json" / "avqa-train.json").read_text())
    changed = feats / "vggish" / f"{train[0]['video_id']}.npy"
    np.save(changed, np.load(changed)[::-1].copy())  # other values, the same shape and size
    _refused(_test(tiny_features, save, feats=feats, check=False), f"cannot test {save / 'avst.pt'}",
             f"--audio_dir {feats / 'vggish'} (1 file(s) changed since (size or modification time): {changed})",
             "train it again")
    assert report.read_bytes() == tested  # the earlier report is kept
    meta = metadata_path(feats / "res18_14x14")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "weights_sha256": "0" * 64}))  # other weights
    _refused(_test(tiny_features, save, feats=feats, check=False), f"--video_res14x14_dir {feats / 'res18_14x14'}",
             f"its metadata {meta} was written again")
    # features in another folder (the bundled checkpoint's case, or a test set of its own) are not compared
    _test(tiny_features, save, feats=tiny_features / "feats")


@pytest.mark.e2e
def test_a_run_marks_the_feature_folders_it_reads_while_it_runs(tiny_features, tmp_path, monkeypatch):
    """Training and test mode hold a reading mark in each feature folder (an extractor's --overwrite waits
    for them: tests/test_locks_and_stamps.py); the marks go when the run ends."""
    import avqa.tasks.qa as qa
    seen = []
    def fit(*args, **kwargs):
        seen.extend(p.parent.name for d in ("vggish", "res18_14x14")
                    for p in (tiny_features / "feats" / d).glob(".reading.*.lock"))
        return 0.0
    monkeypatch.setattr(qa, "fit", fit)
    run_here(AVST, *data_flags(tiny_features), "--model_save_dir", str(tmp_path), "--pretrained_grounding", "none",
             "--tensorboard_dir", "", "--epochs", "1")
    assert seen == ["vggish", "res18_14x14"]
    assert not list((tiny_features / "feats").glob("*/.reading.*.lock"))
