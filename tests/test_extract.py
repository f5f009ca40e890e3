"""The feat_script stage: shapes, metadata, resumability after a kill, and bad input."""
import json
import shutil
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from avqa.media import read_sampled_frames, write_wav
from conftest import AUDIO, ROOT, VGG, X14, run_here


def test_features_have_spec_shapes_and_metadata(tiny_features):
    feats = tiny_features / "feats"
    videos = sorted(p.stem for p in (tiny_features / "videos").glob("*.mp4"))
    for vid in videos:
        a = np.load(feats / "vggish" / f"{vid}.npy")
        v = np.load(feats / "res18_14x14" / f"{vid}.npy", mmap_mode="r")
        assert a.shape == (4, 128) and a.dtype == np.float32 and np.isfinite(a).all()
        assert v.shape == (4, 512, 14, 14) and v.dtype == np.float32
    meta = json.loads((feats / "res18_14x14.json").read_text())
    assert meta["init"] == "random, seed 0" and meta["weights"] is None and meta["seconds"] == 4
    assert meta["shape_per_video"] == [4, 512, 14, 14] and "224x224" in meta["preprocessing"]
    assert json.loads((feats / "vggish.json").read_text())["init"] == "random, seed 0"


def test_rerun_skips_complete_outputs(tiny_features):
    meta = tiny_features / "feats" / "res18_14x14.json"
    before = (meta.read_bytes(), meta.stat().st_mtime_ns)
    out = run_here(X14, "--video_path", str(tiny_features / "videos"),
                   "--output_dir", str(tiny_features / "feats" / "res18_14x14")).stdout
    assert "0 written, 14 already complete" in out
    # nothing to do, nothing touched: a rewritten metadata file would make every training that read
    # the folder refuse --resume ("other settings")
    assert (meta.read_bytes(), meta.stat().st_mtime_ns) == before


def test_other_settings_are_not_mixed_into_a_folder(tiny_features, tmp_path):
    folder = tmp_path / "res18_14x14"
    shutil.copytree(tiny_features / "feats" / "res18_14x14", folder)
    shutil.copy(tiny_features / "feats" / "res18_14x14.json", tmp_path / "res18_14x14.json")
    proc = run_here(X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(folder), "--seed", "9",
                    check=False)
    assert proc.returncode != 0 and "other settings" in proc.stderr and "--overwrite" in proc.stderr
    before = np.load(next(folder.glob("*.npy")))
    run_here(X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(folder), "--seed", "9",
             "--overwrite")
    after = np.load(next(folder.glob("*.npy")))
    assert not np.allclose(before, after)
    assert json.loads((tmp_path / "res18_14x14.json").read_text())["init"] == "random, seed 9"


def test_killed_run_resumes_to_complete_valid_outputs(tiny_features, tmp_path):
    out = tmp_path / "res18_14x14"
    cmd = [sys.executable, X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(out),
           "--threads", "1", "--prefetch", "0", "--batch_frames", "4"]  # one 4 s clip per call: many saves
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.npy"))) < 3 and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    done_before = list(out.glob("*.npy"))
    assert 0 < len(done_before) < 14, "the kill should land mid-run"
    for f in done_before:  # whatever is under a final name is complete
        assert np.load(f).shape == (4, 512, 14, 14)
    result = run_here(X14, "--video_path", str(tiny_features / "videos"), "--output_dir", str(out)).stdout
    assert f"{len(done_before)} already complete" in result
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files were left behind"
    for ref in (tiny_features / "feats" / "res18_14x14").glob("*.npy"):
        np.testing.assert_allclose(np.load(out / ref.name), np.load(ref), atol=1e-5)  # thread counts differ


def _video_without_sound(path):
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=Fraction(10))
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(40):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 6 * k, np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture()
def messy_folder(tiny_set, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    good = sorted((tiny_set / "videos").glob("*.mp4"))[0]
    shutil.copy(good, folder / "good.mp4")
    data = good.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) * 2 // 5])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video")
    _video_without_sound(folder / "silent.mp4")
    return folder


@pytest.mark.e2e
def test_bad_videos_get_a_message_each_and_the_run_goes_on(messy_folder, tmp_path):
    proc = run_here(AUDIO, "--video_dir", str(messy_folder),
                    "--audio_dir", str(tmp_path / "audio"), check=False)
    assert proc.returncode == 1
    for name in ("truncated.mp4", "empty.mp4", "notes.txt", "silent.mp4"):
        assert f"FAILED {messy_folder / name}" in proc.stderr
    assert "no audio track" in proc.stderr and "empty file" in proc.stderr
    assert "1 written" in proc.stdout and "4 failed" in proc.stdout
    assert (tmp_path / "audio" / "good.wav").exists()

    proc = run_here(X14, "--video_path", str(messy_folder), "--output_dir", str(tmp_path / "v14"), "--seconds", "4",
                    check=False)
    assert proc.returncode == 1 and "2 written" in proc.stdout and "3 failed" in proc.stdout
    assert {p.name for p in (tmp_path / "v14").glob("*.npy")} == {"good.npy", "silent.npy"}


@pytest.mark.e2e
def test_mono_stereo_and_short_sound(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    t = np.arange(4 * 16000) / 16000
    tone = np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    write_wav(folder / "mono.wav", tone, 16000)
    write_wav(folder / "stereo.wav", np.stack([tone, tone // 2], axis=1), 16000)
    write_wav(folder / "short.wav", np.stack([tone, tone], axis=1)[: 2 * 16000], 16000)
    proc = run_here(VGG, "--audio_dir", str(folder), "--save_dir", str(tmp_path / "vggish"), "--num_secs", "4")
    assert "3 written" in proc.stdout and "1 warning(s)" in proc.stdout
    assert "short.wav: 2.00 s of sound for 4 s; padded with silence" in proc.stderr
    for name in ("mono", "stereo", "short"):
        assert np.load(tmp_path / "vggish" / f"{name}.npy").shape == (4, 128)


@pytest.mark.e2e
def test_frames_are_spec_frames_as_jpeg(tiny_set, tmp_path):
    run_here("feat_script/extract_visual_frames/extract_frames_adaptive_script.py", "--dir_path",
             str(tiny_set / "videos"), "--dst_path", str(tmp_path / "frames"))
    video = sorted((tiny_set / "videos").glob("*.mp4"))[0]
    folder = tmp_path / "frames" / video.stem
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:08d}.jpg" for i in range(1, 5)]
    from PIL import Image
    decoded, _ = read_sampled_frames(video, 4)
    for i, frame in enumerate(decoded):
        jpg = np.asarray(Image.open(folder / f"{i + 1:08d}.jpg"), dtype=np.float32)
        assert np.abs(jpg - frame).mean() < 4


@pytest.mark.e2e
@pytest.mark.parametrize("script, name", [("feat_script/extract_visual_feat/extract_rgb_feat.py", "res18"),
                                          ("feat_script/extract_visual_feat/extract_3D_feat.py", "r2plus1d_18")])
def test_pooled_and_3d_features(tiny_set, tmp_path, script, name):
    run_here(script, "--video_path", str(tiny_set / "videos"), "--output_dir", str(tmp_path / name))
    files = list((tmp_path / name).glob("*.npy"))
    assert len(files) == 14 and all(np.load(f).shape == (4, 512) for f in files)


def test_frame_folders_are_accepted_as_input(tiny_features, tmp_path):
    run_here("feat_script/extract_visual_frames/extract_frames_adaptive_script.py", "--dir_path",
             str(tiny_features / "videos"), "--dst_path", str(tmp_path / "frames"))
    run_here(X14, "--video_path", str(tmp_path / "frames"), "--output_dir", str(tmp_path / "from_frames"),
             "--seconds", "4")
    meta = json.loads((tmp_path / "from_frames.json").read_text())
    assert meta["input"].startswith("1 fps JPEG")
    for ref in list((tiny_features / "feats" / "res18_14x14").glob("*.npy"))[:3]:
        a, b = np.load(tmp_path / "from_frames" / ref.name), np.load(ref)
        assert np.abs(a - b).mean() / np.abs(b).mean() < 0.1  # JPEG round trip only


@pytest.mark.parametrize("per_core", [False, True])
def test_numpy_blas_runs_on_one_thread_while_a_network_extracts(tmp_path, per_core):
    """OpenBLAS's idle workers spin on the cores the network's threads need (the log-mel's mel projection
    runs in the loader thread): held to one thread for the run, given back after it, failed clips included,
    and PyTorch's own threads (one per worker in per_core mode) given back as they were."""
    import torch
    from threadpoolctl import ThreadpoolController, threadpool_info
    from avqa.features.files import Report
    from avqa.features.network import Job, run_network

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []

    def load(job):
        seen.append(blas_threads())
        if job.key == "bad":
            raise ValueError("unreadable")
        return torch.ones(2, 3), []

    jobs = [Job("a", tmp_path / "a"), Job("bad", tmp_path / "bad"), Job("b", tmp_path / "b")]
    threads = torch.get_num_threads()
    with ThreadpoolController().select(user_api="blas").limit(limits=2):  # as numpy starts on 2 cores
        report = run_network("test", jobs, tmp_path / "out", (2, 3), load, lambda x: x.numpy() * 2, 1,
                             Report("test"), per_core=per_core)
        assert blas_threads() == {2}
        assert torch.get_num_threads() == threads  # PyTorch's threads are given back as they were
    assert report.done == 2 and len(report.failed) == 1
    assert seen and all(s == {1} for s in seen)
    assert np.array_equal(np.load(tmp_path / "out" / "a.npy"), np.full((2, 3), 2.0, np.float32))


def _frame_folder(folder, numbers, size=32):
    """A 1 fps frame folder whose files carry ``numbers`` (00000001.jpg, ...), each frame one flat grey."""
    from PIL import Image
    folder.mkdir(parents=True)
    for n in numbers:
        Image.fromarray(np.full((size, size, 3), 40 * n, np.uint8)).save(folder / f"{n:08d}.jpg", quality=95)
    return folder


def test_frames_are_read_by_their_number_and_a_gap_is_named(tmp_path):
    from avqa.features.backbones import BACKBONES
    from avqa.features.inputs import load_frames
    from avqa.media import MediaError
    spec = BACKBONES["res18_14x14"]
    gap = _frame_folder(tmp_path / "gap", [1, 2, 4, 5])  # four files for a 4-second clip, second 2 missing
    with pytest.raises(MediaError) as e:
        load_frames(gap, 4, spec, None)
    assert str(gap) in str(e.value) and "no frame numbered 3, the frame of second 2" in str(e.value)
    # numbered from 0, or with other zero padding: second s is still the file of number (first + s)
    zero = tmp_path / "zero"
    zero.mkdir()
    from PIL import Image
    for n in range(4):
        Image.fromarray(np.full((32, 32, 3), 40 * (n + 1), np.uint8)).save(zero / f"frame_{n:03d}.jpg", quality=95)
    ordered, _ = load_frames(_frame_folder(tmp_path / "ok", [1, 2, 3, 4]), 4, spec, None, rows=[2, 3])
    from_zero, _ = load_frames(zero, 4, spec, None, rows=[2, 3])
    assert ordered.float().mean((1, 2, 3)).tolist() == from_zero.float().mean((1, 2, 3)).tolist()
    assert ordered[0].float().mean() < ordered[1].float().mean()  # second 2 is the frame numbered 3, not 4
