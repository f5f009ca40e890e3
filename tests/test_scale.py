"""Features at real-data scale: only the seconds the models read, float16 storage, sharded extraction."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from avqa.data import VISUAL_SHAPE, FeatureError, FeatureStore
from avqa.features.seconds import used_seconds
from conftest import AVST, GRD, ROOT, VGG, X14, e2e_fixture, run_here

T = 24  # the tiny set's 4 s clips, read as 24 s (their last second repeats): AVST with --segments 2
        # reads seconds 0 and 12, grounding the first 10, so 11 of 24 seconds are used


@e2e_fixture(scope="module")
def used_feats(tiny_features, tmp_path_factory):
    """14x14 features of the used seconds alone (float16, AVST with --segments 2), and VGGish, as 24 s clips."""
    feats = tmp_path_factory.mktemp("used") / "feats"
    run_here(X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(feats / "res18_14x14"),
             "--seconds", str(T), "--used_seconds", "--segments", "2", "--float16")
    run_here(VGG, "--audio_dir", str(tiny_features / "audio"), "--save_dir", str(feats / "vggish"), "--seconds",
             str(T))
    return feats


def test_used_seconds(tiny_features, used_feats, tmp_path):
    assert used_seconds(60, 10) == [*range(10), 12, 18, 24, 30, 36, 42, 48, 54]
    assert used_seconds(T, 2) == [*range(10), 12]
    # the tiny set's own float32 features of its 4 s, every second computed; read as 24 s, second 3 repeats
    full, used = tiny_features / "feats" / "res18_14x14", used_feats / "res18_14x14"
    meta = json.loads((used_feats / "res18_14x14.json").read_text())
    assert meta["seconds_computed"] == used_seconds(T, 2) and meta["dtype"] == "float16"
    assert json.loads((tiny_features / "feats" / "res18_14x14.json").read_text())["seconds_computed"] == "all"
    kept = used_seconds(T, 2)
    for f in sorted(full.glob("*.npy")):
        # plain numpy opens them, as original code would
        a, b = np.load(f)[np.minimum(np.arange(T), 3)], np.load(used / f.name)
        assert b.shape == a.shape == (T, *VISUAL_SHAPE) and b.dtype == np.float16
        np.testing.assert_allclose(b[kept].astype(np.float32), a[kept], rtol=2e-3, atol=2e-3)
        assert not b[[s for s in range(T) if s not in kept]].any()  # holes read as zeros
        st = os.stat(used / f.name)
        assert st.st_blocks * 512 < 0.6 * st.st_size  # the holes take no disk
    # the loader refuses a second that was not computed, naming file, second and fix
    store = FeatureStore(used, VISUAL_SHAPE)
    vid = sorted(full.glob("*.npy"))[0].stem
    assert store.read(vid, [0, 12]).shape == (2, *VISUAL_SHAPE)
    with pytest.raises(FeatureError, match=rf"{vid}.npy: second 13 was not computed.*--used_seconds"):
        store.read(vid, [12, 13])


def test_training_reads_used_second_files_and_refuses_other_segments(tiny_features, used_feats, tmp_path):
    d, feats = tiny_features, used_feats
    flags = ["--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
             "--label_train", str(d / "json" / "avqa-train.json"), "--label_val", str(d / "json" / "avqa-val.json"),
             "--label_test", str(d / "json" / "avqa-test.json"), "--quiet", "--tensorboard_dir", "", "--epochs", "1"]
    run_here(GRD, *flags, "--model_save_dir", str(tmp_path / "g"))
    run_here(AVST, *flags, "--segments", "2", "--model_save_dir", str(tmp_path / "a"), "--pretrained_grounding",
             str(tmp_path / "g" / "main_grounding_gen_best.pt"))
    run_here(AVST, *flags, "--segments", "2", "--mode", "test", "--model_save_dir", str(tmp_path / "a"))
    proc = run_here(AVST, *flags, "--model_save_dir", str(tmp_path / "b"), "--pretrained_grounding", "none",
                    check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "holds only seconds" in proc.stderr and "reads second(s) [10, 14, 16, 18]" in proc.stderr
    assert "--used_seconds --segments 10" in proc.stderr


@pytest.mark.parametrize("script, inputs", [(X14, "videos"), (VGG, "audio")])
def test_two_shards_make_what_one_process_makes(tiny_features, tmp_path, script, inputs):
    # --batch_frames 8: VGGish batches 2 clips of 4 s together, 7 fixed groups for the shards to share
    src = ["--video_path" if script == X14 else "--audio_dir", str(tiny_features / inputs), "--batch_frames", "8"]
    out = "--output_dir" if script == X14 else "--save_dir"
    run_here(script, *src, out, str(tmp_path / "one"))
    shards = [subprocess.Popen([sys.executable, script, *src, out, str(tmp_path / "two"), "--shard", f"{k}/2",
                                "--threads", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for k in range(2)]
    logs = [p.communicate(timeout=300) for p in shards]
    assert all(p.returncode == 0 for p in shards), logs
    written = [int(o.split(" written")[0].split()[-1]) for o, _ in logs]
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").glob("*.npy")}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").glob("*.npy")}
    assert sum(written) == len(one) == len(two) > 0 and min(written) > 0  # each video by exactly one shard
    assert one == two  # byte for byte
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert {k: v for k, v in a.items() if k != "written"} == {k: v for k, v in b.items() if k != "written"}
    # resumable like a single process: a rerun of one shard finds its share complete
    again = run_here(script, *src, out, str(tmp_path / "two"), "--shard", "1/2").stdout
    assert f"0 written, {written[1]} already complete" in again


def test_features_larger_than_the_page_cache_are_dropped_from_it_after_each_read(tmp_path, monkeypatch):
    """The policy is the store's from its construction (or given): checking the folder does not change it."""
    import avqa.store as store
    assert store.page_cache_holds(1 << 20) and not store.page_cache_holds(1 << 60)
    rng = np.random.default_rng(0)
    arrays = {f"{v:08d}": rng.standard_normal((6, 4, 3)).astype(np.float32) for v in range(3)}
    for vid, a in arrays.items():
        np.save(tmp_path / f"{vid}.npy", a)
    calls = []
    real_fadvise = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: calls.append((off, n, advice))
                        or real_fadvise(fd, off, n, advice))
    small = FeatureStore(tmp_path, (4, 3))
    assert not small.drop_pages  # 3 small files: the cache keeps them
    assert small.check(list(arrays)) == 6 and not small.drop_pages
    np.testing.assert_array_equal(small.read("00000001", [0, 5]), arrays["00000001"][[0, 5]])
    assert calls == []
    store.verified_path(tmp_path).unlink()   # scan again, as a first run would
    monkeypatch.setattr(store, "page_cache_holds", lambda nbytes: nbytes < 3 * 6 * 48)   # "larger than the cache"
    large = FeatureStore(tmp_path, (4, 3))
    assert large.drop_pages and not FeatureStore(tmp_path, (4, 3), drop_pages=False).drop_pages
    assert not FeatureStore(tmp_path / "absent", (4, 3)).drop_pages  # check names the missing folder
    calls.clear()
    np.testing.assert_array_equal(large.read("00000002", [1, 4]), arrays["00000002"][[1, 4]])  # before any check
    assert len(calls) == 2
    calls.clear()
    assert large.check(list(arrays)) == 6 and large.drop_pages
    assert sorted(calls) == [(0, 0, os.POSIX_FADV_DONTNEED)] * 3          # the NaN scan hands each file back
    calls.clear()
    np.testing.assert_array_equal(large.read("00000002", [1, 4]), arrays["00000002"][[1, 4]])
    offset = 128  # the .npy header of these files
    assert calls == [(offset + s * 48, 48, os.POSIX_FADV_DONTNEED) for s in (1, 4)]


def test_held_features_read_as_the_files_do(tmp_path, monkeypatch):
    """A store holding its videos in memory (the batch's channels-last layout) returns what the files hold, in any
    layout asked for, refuses what the files refuse, and holds nothing when memory is short."""
    import torch

    import avqa.store as store
    from avqa.data import visual_buffer
    rng = np.random.default_rng(0)
    arrays = {f"{v:08d}": rng.standard_normal((3, *VISUAL_SHAPE)).astype(np.float16) for v in range(3)}
    for vid, a in arrays.items():
        np.save(tmp_path / f"{vid}.npy", a)
    held = FeatureStore(tmp_path, VISUAL_SHAPE)
    assert held.hold(list(arrays), visual_buffer)
    monkeypatch.setattr(os, "preadv", lambda *a: pytest.fail("a held video was read from its file"))
    for vid, a in arrays.items():
        for out in (visual_buffer(2), torch.empty((2, *VISUAL_SHAPE))):   # channels-last, as held, and contiguous
            held.read_into(out, vid, [2, 0])
            np.testing.assert_array_equal(out.numpy(), a[[2, 0]].astype(np.float32))
        one = visual_buffer()
        held.read_into(one, vid, 1)
        np.testing.assert_array_equal(one.numpy(), a[1].astype(np.float32))
    with pytest.raises(FeatureError, match=r"00000001.npy: second 3 asked for, the file holds 3"):
        held.read("00000001", [0, 3])
    monkeypatch.undo()
    # files of some seconds (--used_seconds): the held copy refuses the others, as the file does
    store.metadata_path(tmp_path).write_text(json.dumps({"seconds_computed": [0, 2]}))
    used = FeatureStore(tmp_path, VISUAL_SHAPE)
    assert used.hold(["00000002"], visual_buffer)
    np.testing.assert_array_equal(used.read("00000002", [2]), arrays["00000002"][[2]].astype(np.float32))
    with pytest.raises(FeatureError, match="second 1 was not computed"):
        used.read("00000002", [1])
    # not enough memory: nothing held, every read from the file
    monkeypatch.setattr(store, "memory_holds", lambda nbytes, fraction: False)
    short = FeatureStore(tmp_path, VISUAL_SHAPE)
    assert not short.hold(list(arrays), visual_buffer) and not short._held
    np.testing.assert_array_equal(short.read("00000000", [0]), arrays["00000000"][[0]].astype(np.float32))
