"""The 1 fps frame sampling (docs/model.md, Inputs and sampling), on numbers and on decoded video."""
from fractions import Fraction

import av
import numpy as np
import pytest

from avqa.media import MediaError, read_audio, read_sampled_frames, sample_frame_numbers


def reference_numbers(total, fps, seconds):
    """The sampling written out plainly: the middle of second i, wrapped into the last partial second."""
    last = int(total % fps)
    if last == 0:
        last = int(fps)
    start = total - last
    out = []
    for i in range(seconds):
        n = round((0.5 + i) * fps)
        if n > total:
            n = start + 1 + ((n - start - 1) % last)
        out.append(n)
    return out


def test_middle_of_each_second_with_python_rounding():
    # round(12.5) == 12 and round(37.5) == 38: halves go to the even number
    assert sample_frame_numbers(250, 25, 10) == [12, 38, 62, 88, 112, 138, 162, 188, 212, 238]
    assert sample_frame_numbers(600, 10, 3) == [5, 15, 25]


@pytest.mark.parametrize("total, fps", [(250, 25), (61, 25), (299, 29.97), (1800, 30), (37, 12), (24, 24.0)])
def test_short_videos_wrap_into_their_last_partial_second(total, fps):
    got = sample_frame_numbers(total, fps, 60)
    assert got == reference_numbers(total, fps, 60)
    assert all(1 <= n <= total for n in got)


def test_wrap_example():
    # 250 frames at 25 fps: second 10 asks for frame 262, which wraps to 237 (last second is frames 226..250)
    assert sample_frame_numbers(250, 25, 11)[10] == 237


def _coded_video(path, n_frames, fps):
    """Each frame shows its own number as 10 black/white blocks (robust to compression)."""
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = 160, 32, "yuv420p"
        s.options = {"crf": "10"}
        for k in range(n_frames):
            bits = [(k + 1) >> b & 1 for b in range(10)]
            img = np.zeros((32, 160, 3), np.uint8)
            for b, on in enumerate(bits):
                img[:, b * 16:(b + 1) * 16] = 255 * on
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _decode_number(img):
    return sum((int(img[16, b * 16 + 8].mean() > 127)) << b for b in range(10))


@pytest.mark.parametrize("n_frames, fps, seconds", [(125, 25, 5), (70, 25, 6), (90, 29.97, 4)])
def test_decoder_returns_exactly_the_sampled_frames(tmp_path, n_frames, fps, seconds):
    path = tmp_path / "coded.mp4"
    _coded_video(path, n_frames, fps)
    frames, info = read_sampled_frames(path, seconds)
    assert info["frames"] == n_frames
    assert [_decode_number(f) for f in frames] == reference_numbers(n_frames, fps, seconds)


def test_unreadable_inputs_raise_media_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for p in (empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(MediaError, match=str(p.name)):
            read_sampled_frames(p, 3)
    silent = tmp_path / "silent.mp4"
    _coded_video(silent, 10, 10)
    with pytest.raises(MediaError, match="no audio track"):
        read_audio(silent)


FORKED_DECODE = """
import multiprocessing as mp, sys
from avqa.media import read_sampled_frames

def count(path):
    return len(read_sampled_frames(path, 2)[0])

if __name__ == "__main__":
    videos = sys.argv[1:]
    count(videos[0])                      # the parent converts first, as the test process and the main job do
    with mp.get_context("fork").Pool(2) as pool:
        print(list(pool.imap(count, videos)))
"""


def test_workers_forked_after_the_parent_decoded_still_decode(tmp_path):
    """PyAV 17 and later convert frames with a pool of threads; a process forked after its parent
    converted inherits the pool without its threads and hung at its first frame. The extractors' and
    the generator's workers are forked, so every conversion runs on one thread (media.rgb_array)."""
    import os
    import signal
    import subprocess
    import sys
    videos = []
    for i in range(4):
        videos.append(tmp_path / f"{i}.mp4")
        _coded_video(videos[-1], 50, 25)
    script = tmp_path / "forked_decode.py"
    script.write_text(FORKED_DECODE)
    proc = subprocess.Popen([sys.executable, str(script), *map(str, videos)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)          # the parent and its hung workers
        proc.communicate()
        raise AssertionError("workers forked after the parent decoded hung at their first frame") from None
    assert proc.returncode == 0 and out.strip() == "[2, 2, 2, 2]", err


def test_frames_are_converted_only_through_media_rgb_array():
    """A conversion with PyAV's default threads anywhere in a process makes the workers it forks later
    hang (above): video frames go through avqa.media.rgb_array, in the library and in the tests."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    found = []
    for folder in ("avqa", "tests", "benchmarks", "feat_script", "net_grd_avst", "net_tspm", "grounding_gen"):
        for f in (root / folder).rglob("*.py"):
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if (".to_image(" in line or 'to_ndarray(format="rgb24"' in line) and "rgb_array" not in line \
                        and f.name not in ("media.py", "test_media.py"):
                    found.append(f"{f.relative_to(root)}:{n}")
    assert not found, found
