"""The VGGish log-mel front end against a plain NumPy rendering of its recipe (docs/model.md, Inputs and sampling)."""
import warnings

import numpy as np
import pytest

from avqa.features.logmel import ShortAudioWarning, examples


def reference_examples(int16_samples, seconds):
    """The recipe, step by step, with loops: 16 kHz int16 in, [seconds, 96, 64] log-mel out."""
    x = int16_samples / 32768.0
    if x.ndim > 1:
        x = x.mean(axis=1)
    sr, win, hop, nfft = 16000, 400, 160, 512
    window = np.array([0.5 - 0.5 * np.cos(2 * np.pi * k / win) for k in range(win)])

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    bins_hz = np.linspace(0, sr / 2, nfft // 2 + 1)
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    weights = np.zeros((nfft // 2 + 1, 64))
    for band in range(64):
        lo, mid, hi = edges[band], edges[band + 1], edges[band + 2]
        for k, f in enumerate(bins_hz):
            m = mel(f)
            weights[k, band] = max(0.0, min((m - lo) / (mid - lo), (hi - m) / (hi - mid)))
    weights[0, :] = 0.0
    out = np.zeros((seconds, 96, 64))
    for s in range(seconds):
        seg = x[s * sr:(s + 1) * sr]
        n_frames = 1 + (len(seg) - win) // hop
        for i in range(min(n_frames, 96)):
            frame = seg[i * hop:i * hop + win] * window
            mag = np.abs(np.fft.rfft(frame, nfft))
            out[s, i] = np.log(mag @ weights + 0.01)
    return out


@pytest.mark.parametrize("channels", [1, 2])
def test_matches_plain_numpy_within_1e5(channels):
    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    samples = np.stack([tone, 0.5 * tone][:channels], axis=1)
    pcm = np.round(samples * 32767).astype(np.int16)
    got = examples(pcm, 16000, 3)
    assert got.shape == (3, 96, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_examples(pcm, 3), atol=1e-5, rtol=0)


def test_other_rates_are_resampled_to_16k():
    t = np.arange(2 * 44100) / 44100
    pcm = np.round(0.3 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)[:, None]
    got = examples(pcm, 44100, 2)
    # a 1 kHz tone: the band around 1 kHz carries the energy
    assert got.shape == (2, 96, 64)
    band = got[0].mean(axis=0).argmax()
    centers = np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66)[1:-1]
    assert abs(700 * (np.exp(centers[band] / 1127) - 1) - 1000) < 150


def test_short_sound_is_padded_with_a_warning():
    pcm = np.zeros((16000 + 500, 1), np.int16)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = examples(pcm, 16000, 3)
    assert any(issubclass(x.category, ShortAudioWarning) for x in w)
    np.testing.assert_allclose(got[2], np.log(0.01), atol=1e-6)
