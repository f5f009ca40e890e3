"""Faults a user meets: resuming with other inputs, training over someone else's checkpoint, killed
writes, bad flags and files. Each must end in one sentence naming the file or flag and the fix,
with nothing the user made before overwritten."""
import errno
import json
import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from conftest import AUDIO, AVST, GRD, ROOT, VGG, X14, data_flags, run_here


def _train(d, save, *extra, check=True):
    """The train command, in this process: resuming, refusing and overwriting need no process of their own."""
    return run_here(AVST, *data_flags(d), "--model_save_dir", str(save), "--pretrained_grounding", "none",
                    "--tensorboard_dir", "", "--batch-size", "16", *extra, check=check)


def _refused(d, save, *extra):
    """The train command expected to stop at its checks."""
    return _train(d, save, *extra, check=False)


def _sentence(proc, *words):
    """A refusal: non-zero exit, no traceback, and the words that name the problem and the fix."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for w in words:
        assert w in proc.stderr, f"{w!r} not in:\n{proc.stderr[-2000:]}"


def _bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.pt"))}


@pytest.fixture(scope="module")
def one_run(trained):
    """A user's earlier run: the shared two-epoch AVST (the tests work on copies of it)."""
    return trained / "avst"


def test_resume_refuses_other_inputs_and_leaves_the_run_intact(one_run, tiny_features, tmp_path):
    save = tmp_path / "avst"
    shutil.copytree(one_run, save)
    before = _bytes(save)
    rows = json.loads((tiny_features / "json" / "avqa-train.json").read_text())
    shuffled = tmp_path / "train.json"
    shuffled.write_text(json.dumps(rows[::-1]))  # the same questions in another order
    proc = _refused(tiny_features, save, "--epochs", "3", "--resume", "--label_train", str(shuffled))
    _sentence(proc, "cannot resume", "--label_train", "vocabularies", "--overwrite")
    proc = _refused(tiny_features, save, "--epochs", "3", "--resume", "--lr", "1e-3")
    _sentence(proc, "cannot resume", "--lr (0.0001 then, 0.001 now)")
    proc = _refused(tiny_features, save, "--epochs", "3", "--resume", "--model", "question_only")
    _sentence(proc, "the model ('avst' then, 'question_only' now)")
    assert _bytes(save) == before
    # the same inputs resume
    out = _train(tiny_features, save, "--epochs", "3", "--resume").stdout
    assert "resumed from" in out and "after epoch 2" in out
    assert torch.load(save / "avst_last.pt", weights_only=True)["epoch"] == 3


def test_resume_refuses_feature_files_changed_in_place(tiny_features, tmp_path):
    feats, save = tmp_path / "feats", tmp_path / "avst"
    shutil.copytree(tiny_features / "feats", feats)
    flags = ["--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14")]
    _train(tiny_features, save, "--epochs", "1", *flags)
    before = _bytes(save)
    changed = sorted((feats / "vggish").glob("*.npy"))[0]
    np.save(changed, np.load(changed)[::-1].copy())  # other values, the same shape and size
    proc = _refused(tiny_features, save, "--epochs", "2", "--resume", *flags)
    _sentence(proc, "cannot resume", f"the feature files (1 file(s) changed since (size or modification time): "
                                     f"{changed})", "--overwrite")
    assert _bytes(save) == before


def test_a_damaged_last_checkpoint_is_named_and_the_best_is_kept(one_run, tiny_features, tmp_path):
    save = tmp_path / "avst"
    shutil.copytree(one_run, save)
    best = (save / "avst.pt").read_bytes()
    last = save / "avst_last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    proc = _refused(tiny_features, save, "--epochs", "3", "--resume")
    _sentence(proc, "cannot resume", str(last), "damaged", "avst.pt is kept", "--overwrite")
    assert (save / "avst.pt").read_bytes() == best


def test_training_never_writes_over_a_checkpoint_it_did_not_make(one_run, tiny_features, tmp_path):
    # a bundled checkpoint: the step-by-step train command (docs/usage.md) must not replace it
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    shutil.copy(ROOT / "net_grd_avst" / "avst_models" / "avst.pt", bundled / "avst.pt")
    shutil.copy(ROOT / "net_grd_avst" / "avst_models" / "avst_recorded.json", bundled / "avst_recorded.json")
    before = _bytes(bundled)
    proc = _refused(tiny_features, bundled, "--epochs", "1")
    _sentence(proc, "is the bundled checkpoint", "--checkpoint NAME", "--overwrite")
    assert _bytes(bundled) == before
    # another run's checkpoint, with or without --resume (its _last.pt is gone: nothing to continue)
    other = tmp_path / "other"
    shutil.copytree(one_run, other)
    (other / "avst_last.pt").unlink()
    before = _bytes(other)
    for extra in ([], ["--resume", "--lr", "1e-3"]):
        proc = _refused(tiny_features, other, "--epochs", "1", *extra)
        _sentence(proc, "of another run", "--overwrite")
    assert _bytes(other) == before
    # --overwrite replaces it, and says so
    proc = _train(tiny_features, other, "--epochs", "1", "--overwrite")
    assert "--overwrite: replacing" in proc.stderr
    assert torch.load(other / "avst.pt", weights_only=True)["epoch"] == 1


def test_stale_temporary_checkpoints_are_removed_by_the_next_run(one_run, tiny_features, tmp_path):
    save = tmp_path / "avst"
    shutil.copytree(one_run, save)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs: the writer was killed mid-write
    stale = save / f".avst_last.pt.{dead.pid}.k3j2.tmp"
    stale.write_bytes(b"half a checkpoint")
    _train(tiny_features, save, "--epochs", "3", "--resume")
    assert not stale.exists()
    assert not [p for p in save.iterdir() if p.name.endswith(".tmp")]


BAD_FLAGS = [
    (AVST, ["--epochs", "0"], "argument --epochs: must be at least 1"),
    (AVST, ["--batch-size", "0"], "argument --batch-size: must be at least 1"),
    (AVST, ["--lr", "nan"], "argument --lr"),
    (AVST, ["--segments", "0"], "argument --segments"),
    (GRD, ["--num_workers", "-1"], "argument --num_workers"),
    (X14, ["--threads", "0"], "argument --threads"),
    (VGG, ["--batch_frames", "0"], "argument --batch_frames"),
    (AUDIO, ["--shard", "-1/2"], "argument --shard: -1/2: need 0 <= K < N"),
    (X14, ["--shard", "-1/2"], "argument --shard: -1/2: need 0 <= K < N"),
]


@pytest.mark.parametrize("script, flags, words", BAD_FLAGS)
def test_degenerate_flags_are_refused_when_parsed(script, flags, words, tmp_path):
    proc = run_here(script, *flags, check=False)  # refused while parsing: nothing is read or written
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def test_bad_files_and_folders_are_one_sentence(trained, tiny_features, tmp_path, monkeypatch):
    d = data_flags(tiny_features)
    not_ckpt = tmp_path / "weights.pt"
    not_ckpt.write_text('{"not": "a checkpoint"}')
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    cases = [
        (_refused(tiny_features, tmp_path / "s1", "--pretrained_grounding", str(not_ckpt), "--epochs", "1"),
         ["--pretrained_grounding", str(not_ckpt), "cannot be read"]),
        (run_here(X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(tmp_path / "f1"),
                  "--weights", str(not_ckpt), check=False), ["--weights", str(not_ckpt), "cannot be read"]),
        (run_here(VGG, "--audio_dir", str(tiny_features / "audio"), "--save_dir", str(tmp_path / "f2"),
                  "--checkpoint", str(tmp_path / "absent.pth"), check=False),
         ["--checkpoint", "absent.pth", "not found"]),
        (_refused(tiny_features, a_file / "sub", "--epochs", "1"), ["--model_save_dir", "not a folder"]),
        (run_here(AVST, *d, "--model_save_dir", str(tmp_path / "s2"), "--epochs", "1", "--pretrained_grounding",
                  "none", "--tensorboard_dir", str(a_file / "tb"), check=False), ["--tensorboard_dir", "not a folder"]),
        (run_here(GRD, *d, "--mode", "test", "--model_save_dir", str(trained / "grd"), "--results",
                  str(a_file / "r.json"), check=False), ["--results", "cannot write there"]),
        (run_here(VGG, "--audio_dir", str(tiny_features / "audio"), "--save_dir", str(a_file / "x"), check=False),
         [str(a_file / "x"), "not a folder"]),
        (_refused(tiny_features, tmp_path / "s3", "--label_val", str(empty), "--epochs", "1"),
         [str(empty), "holds no questions"]),
    ]
    with monkeypatch.context() as m:
        m.chdir(tmp_path)  # run from another folder: the default paths are relative to it, and the message says so
        cases.append((run_here(str(ROOT / AVST), "--mode", "test", check=False),
                      ["data/json/avqa-train.json", f"relative paths are read from the current folder, {tmp_path}"]))
    for proc, words in cases:
        _sentence(proc, *words)
    assert not (tmp_path / "s1").exists() or not list((tmp_path / "s1").glob("*.pt"))


def test_nonfinite_predictions_are_counted_and_flagged(trained, tiny_features, tmp_path):
    feats = tmp_path / "feats"
    shutil.copytree(tiny_features / "feats", feats)
    for p in (feats / "vggish").glob("*.npy"):
        np.save(p, np.full((4, 128), np.nan, np.float32))
    d = data_flags(tiny_features, feats)
    res = tmp_path / "r.json"
    proc = run_here(AVST, *d, "--mode", "test", "--model_save_dir", str(trained / "avst"), "--no_feature_check",
                    "--results", str(res))
    n = len(json.loads((tiny_features / "json" / "avqa-test.json").read_text()))
    assert f"WARNING: {n} of {n} predictions come from non-finite scores" in proc.stderr
    report = json.loads(res.read_text())
    assert report["nonfinite_predictions"] == n and not any(p["scores_finite"] for p in report["predictions"])
    # and without the opt-out, the NaN files stop the run before any prediction
    _sentence(run_here(AVST, *d, "--mode", "test", "--model_save_dir", str(trained / "avst"), "--results",
                       str(tmp_path / "r2.json"), check=False), "NaN")


def _faststart_clip(path, seconds=6):
    """An mp4 whose index comes first: truncated, it still opens and declares its full length."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=12", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
                    "-t", str(seconds), "-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart", str(path)],
                   check=True)


@pytest.mark.e2e
def test_truncated_video_is_told_from_a_short_one_and_named_once(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    _faststart_clip(tmp_path / "full.mp4")
    data = (tmp_path / "full.mp4").read_bytes()
    (videos / "cut.mp4").write_bytes(data[: len(data) * 2 // 5])
    _faststart_clip(videos / "short.mp4", seconds=2)
    (videos / "empty.mp4").write_bytes(b"")
    proc = run_here(X14, "--video_path", str(videos), "--output_dir", str(tmp_path / "v14"), "--seconds", "6",
                    check=False)
    assert "cut.mp4: truncated or damaged: it declares 6.0 s of video but only" in proc.stderr
    assert "short.mp4: 2.0 s long, the last second is repeated" in proc.stderr
    assert "truncated" not in next(line for line in proc.stderr.splitlines() if "short.mp4" in line).split("short.mp4")[1]
    failed = next(line for line in proc.stderr.splitlines() if "empty.mp4" in line)
    assert failed.count("empty.mp4") == 1, failed
    proc = run_here(AUDIO, "--video_dir", str(videos), "--audio_dir", str(tmp_path / "audio"), check=False)
    assert "cut.mp4: truncated or damaged: it declares 6.0 s of sound" in proc.stderr
    assert "short.mp4" not in proc.stderr  # its sound is as long as it says


def test_a_full_disk_during_a_checkpoint_save_is_one_sentence_and_the_log_does_not_say_saved(tiny_features, tmp_path,
                                                                                           monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full)
    save = tmp_path / "avst"
    proc = _refused(tiny_features, save, "--epochs", "2")
    _sentence(proc, f"cannot write {save / 'avst.pt'} (the disk is full): the run stops after epoch 1, which is not "
                    f"saved", "--resume")
    log = (save / "avst.log").read_text()
    assert "epoch 1: loss" in log and "(best, saved)" not in log and "(NOT saved: cannot write" in log
    assert sorted(p.name for p in save.iterdir()) == ["avst.log"]  # no checkpoint, no temporary file


def test_output_folders_in_the_way_name_the_flag_and_the_folder_once(tiny_features, tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [(run_here(X14, "--video_path", tiny_features / "videos", "--output_dir", a_file / "x", check=False),
              "--output_dir", a_file / "x", "a part of the path is a file, not a folder"),
             (run_here(AUDIO, "--video_dir", tiny_features / "videos", "--audio_dir", a_file / "w", check=False),
              "--audio_dir", a_file / "w", "a part of the path is a file, not a folder"),
             (run_here("-m", "avqa.pipeline", "--tiny", "--data", a_file / "d", "--out", tmp_path / "out",
                       check=False), "--data", a_file / "d", "a part of the path is a file, not a folder")]
    import tempfile
    real = tempfile.mkstemp
    def read_only(*args, dir=None, **kwargs):
        if dir is not None and "ro" in Path(dir).parts:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    cases.append((run_here(VGG, "--audio_dir", tiny_features / "audio", "--save_dir", tmp_path / "ro" / "v",
                           check=False), "--save_dir", tmp_path / "ro" / "v", "the file system is read-only"))
    for proc, flag, folder, why in cases:
        _sentence(proc, f"{flag} {folder}: cannot write there ({why})")
        assert proc.stderr.count(str(folder)) == 1, proc.stderr


def test_extractor_input_folder_without_inputs_writes_nothing(tmp_path):
    empty = tmp_path / "videos"
    empty.mkdir()
    proc = run_here(X14, "--video_path", empty, "--output_dir", tmp_path / "feats" / "x14", "--seconds", "4",
                    check=False)
    _sentence(proc, f"input folder {empty} holds no input files", "nothing is written")
    assert "0 written" not in proc.stdout
    assert not (tmp_path / "feats" / "x14").exists() and not (tmp_path / "feats" / "x14.json").exists()


def test_an_extractor_refusing_a_folder_does_not_first_say_it_recorded_there(tiny_features, tmp_path):
    out = tmp_path / "x14"
    out.mkdir()
    np.save(out / "00000001.npy", np.zeros((4, 512, 14, 14), np.float32))
    (tmp_path / "x14.json").write_text(json.dumps({"backbone": "res18_14x14", "init": "pretrained", "seconds": 4}))
    proc = run_here(X14, "--video_path", tiny_features / "videos", "--output_dir", out, "--seconds", "4", check=False)
    _sentence(proc, "holds features made with other settings", "--overwrite")
    assert "recorded in" not in proc.stderr, proc.stderr
