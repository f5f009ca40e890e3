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
