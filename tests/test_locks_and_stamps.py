"""Runs that would write into a folder another live run writes are refused, naming that run; a lock of
a dead run is taken over; the fingerprint of what a run reads names what changed; a mixed-length
feature folder names its odd files; a foreign checkpoint says what it is; exit statuses follow one
convention."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from avqa.checkpoint import load_file
from avqa.data import FeatureError, FeatureStore
from conftest import AVST, ROOT, VGG, data_flags, run_here

HOLD = ("import sys, time; from avqa.utils import run_lock\n"
        "with run_lock(sys.argv[1], sys.argv[2]):\n    print('held', flush=True); time.sleep(120)")


@pytest.fixture
def holder():
    """A second process that takes a folder's lock and keeps it until the test ends."""
    procs = []

    def hold(folder, name):
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), name], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def _refused(proc, pid, folder):
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"{folder} is being written by another run, process {pid}" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.e2e
def test_a_second_main_job_is_refused_naming_the_first(tmp_path):
    argv = ["-m", "avqa.pipeline", "--tiny", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    first = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"})
    try:
        for line in first.stdout:  # the first job is at work
            if line.startswith("== generate"):
                break
        second = run_here(*argv[:-1], str(tmp_path / "out2"), check=False)
        _refused(second, first.pid, tmp_path / "data")
        assert not (tmp_path / "out2").exists()  # nothing of the second run is left behind
    finally:
        first.kill()
        first.wait()


def test_a_second_training_into_one_checkpoint_is_refused(holder, tiny_features, tmp_path):
    save = tmp_path / "avst"
    first = holder(save, "avst")
    proc = run_here(AVST, *data_flags(tiny_features), "--model_save_dir", str(save), "--pretrained_grounding", "none",
                    "--tensorboard_dir", "", "--epochs", "1", "--batch-size", "16", check=False)
    _refused(proc, first.pid, save)
    assert not list(save.glob("*.pt"))


def test_extractors_into_one_folder_are_refused_but_shards_run_together(holder, tiny_features, tmp_path):
    out = tmp_path / "vggish"
    first = holder(out, "extract")
    flags = ["--audio_dir", str(tiny_features / "audio"), "--save_dir", str(out)]
    _refused(run_here(VGG, *flags, check=False), first.pid, out)
    assert not list(out.glob("*.npy"))
    # the shards of one extraction write into one folder together; a second process of one shard is refused
    shard = holder(out, "extract-shard-1-of-2")
    run_here(VGG, *flags, "--shard", "0/2")
    _refused(run_here(VGG, *flags, "--shard", "1/2", check=False), shard.pid, out)


READ = ("import sys, time; from avqa.utils import reading\n"
        "with reading(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)")


def test_overwrite_waits_for_a_run_that_reads_the_folder(tiny_features, tmp_path):
    out = tmp_path / "vggish"
    flags = ["--audio_dir", str(tiny_features / "audio"), "--save_dir", str(out)]
    run_here(VGG, *flags)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    reader = subprocess.Popen([sys.executable, "-c", READ, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "held"
        proc = run_here(VGG, *flags, "--overwrite", check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"--overwrite: {out} is being read by another run, process {reader.pid}" in proc.stderr, proc.stderr
        assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == before
    finally:
        reader.kill()
        reader.wait()
    # the reader is gone: its mark is cleared and --overwrite goes ahead
    assert run_here(VGG, *flags, "--overwrite").returncode == 0
    assert not list(out.glob(".reading.*.lock"))


def test_shards_of_another_n_in_one_folder_leave_a_note(tiny_features, tmp_path):
    out = tmp_path / "vggish"
    flags = ["--audio_dir", str(tiny_features / "audio"), "--save_dir", str(out), "--batch_frames", "4"]
    first = run_here(VGG, *flags, "--shard", "0/2").stdout
    assert "holds the outputs of 7 of the 14 inputs; 7 have none yet" in first and "--shard K/2" in first
    then = run_here(VGG, *flags, "--shard", "1/3").stdout
    assert len(list(out.glob("*.npy"))) == 10  # 0/2 makes 0, 2, ..., 12; 1/3 adds 1, 7 and 13
    assert "holds the outputs of 10 of the 14 inputs; 4 have none yet" in then, then
    assert "each with the same N" in then


def test_a_lock_left_by_a_dead_run_is_taken_over_and_said(tiny_features, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "vggish"
    out.mkdir()
    (out / ".extract.lock").write_text(json.dumps({"pid": dead.pid, "host": __import__("socket").gethostname()}))
    proc = run_here(VGG, "--audio_dir", str(tiny_features / "audio"), "--save_dir", str(out))
    assert f"left by process {dead.pid}, which no longer runs; taking it over" in proc.stderr
    assert not (out / ".extract.lock").exists() and len(list(out.glob("*.npy"))) == 14


def test_the_lock_is_released_on_errors_and_interrupts(tmp_path):
    from avqa.utils import run_lock
    for error in (KeyboardInterrupt, ValueError):
        with pytest.raises(error):
            with run_lock(tmp_path, "job"):
                assert (tmp_path / ".job.lock").is_file()
                raise error()
        assert not (tmp_path / ".job.lock").exists()


def test_the_fingerprint_names_what_changed_in_place(tmp_path):
    from avqa.utils import changes, fingerprint
    folder = tmp_path / "feats"
    folder.mkdir()
    for k in range(3):
        np.save(folder / f"{k}.npy", np.zeros((4, 128), np.float32))
    before = fingerprint([folder])
    assert changes(before, fingerprint([folder])) == []
    time.sleep(0.01)
    np.save(folder / "1.npy", np.ones((4, 128), np.float32))  # same shape and size, other values
    (folder / "2.npy").unlink()
    said = changes(before, fingerprint([folder]))
    assert said == [f"1 file(s) changed since (size or modification time): {folder / '1.npy'}",
                    f"1 file(s) gone: {folder / '2.npy'}"]


def test_a_mixed_length_folder_names_its_odd_files(tmp_path):
    folder = tmp_path / "vggish"
    folder.mkdir()
    for k in range(11):
        np.save(folder / f"{k:08d}.npy", np.zeros((4, 128), np.float32))
    np.save(folder / "short.npy", np.zeros((6, 128), np.float32))
    with pytest.raises(FeatureError) as e:
        FeatureStore(folder, (128,)).check([f"{k:08d}" for k in range(11)] + ["short"], finite=False)
    text = str(e.value)
    assert f"{folder / 'short.npy'}: T=6" in text and "T=4 of the others" in text
    assert str(folder / "00000001.npy") not in text


def test_mixed_lengths_name_the_file_that_differs_from_the_recorded_length_or_both_on_a_tie(tmp_path):
    folder = tmp_path / "vggish"
    folder.mkdir()
    np.save(folder / "kept.npy", np.zeros((4, 128), np.float32))
    np.save(folder / "changed.npy", np.zeros((6, 128), np.float32))
    for recorded in (None, 4):
        if recorded:
            (tmp_path / "vggish.json").write_text(json.dumps({"shape_per_video": [recorded, 128]}))
        with pytest.raises(FeatureError) as e:
            FeatureStore(folder, (128,)).check(["kept", "changed"], finite=False)
        text = str(e.value)
        assert f"{folder / 'changed.npy'}: T=6" in text and "of the others" not in text
        if recorded:  # the length its metadata records: only the changed file is named
            assert f"differ from the T=4 that {tmp_path / 'vggish.json'} records" in text
            assert str(folder / "kept.npy") not in text
        else:  # a tie, and no metadata: both are named
            assert "no length is the most common" in text and f"{folder / 'kept.npy'}: T=4" in text


def test_a_text_file_given_as_a_checkpoint_says_what_it_is(tmp_path):
    notes = tmp_path / "avst.pt"
    notes.write_text("epoch 1: loss 0.9\n")
    with pytest.raises(ValueError) as e:
        load_file(notes)
    assert "cannot be read: it is a text file (it begins: 'epoch 1: loss 0.9')" in str(e.value)
    assert "a checkpoint of this project is" in str(e.value) and "an original checkpoint is" in str(e.value)


@pytest.mark.parametrize("argv, code", [
    (["-m", "avqa.ladder", "--rungs", "abc"], 2),                        # a bad value
    ([AVST, "--epochs", "0"], 2),
    (["-m", "avqa.ask", "missing.mp4", "Is there a voiceover?"], 1),     # a file that is not there
    ([AVST, "--mode", "test", "--label_train", "missing.json"], 1),
])
def test_exit_status_is_2_for_the_command_line_and_1_for_files(argv, code):
    proc = run_here(*argv, check=False)
    assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("argv", [["-m", "avqa.ask"], ["-m", "avqa.ladder"], ["-m", "avqa.pipeline"], [AVST], [VGG]])
def test_every_help_states_the_exit_statuses(argv):
    assert "exit status: 0 done; 1 a file" in " ".join(run_here(*argv, "--help").stdout.split())
