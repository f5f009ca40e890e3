"""VGGish input: one 96x64 log-mel example per second of sound (the AudioSet recipe).

Per second s, the slice [s*16000, (s+1)*16000) of the mono 16 kHz signal becomes one example:
magnitude STFT over complete 25 ms frames (400-sample periodic Hann window, 160-sample hop,
FFT 512, hence 98 frames), 64 triangular HTK-mel bands between 125 and 7500 Hz (the DC bin
weighted 0), log(mel + 0.01), first 96 frames. The original crashed on mono files and on sound
shorter than the clip; here mono works and short sound is padded with silence (with a warning).
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 400
HOP = 160
FFT = 512
BANDS = 64
FRAMES = 96
MEL_LOW, MEL_HIGH = 125.0, 7500.0
LOG_OFFSET = 0.01


class ShortAudioWarning(UserWarning):
    pass


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """[257, 64] weights from STFT magnitude bins to mel bands."""
    bins = FFT // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))
    edges = np.linspace(hz_to_mel(MEL_LOW), hz_to_mel(MEL_HIGH), BANDS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi / WINDOW * np.arange(WINDOW))  # periodic Hann


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """int16 [n] or [n, channels] -> float64 mono at 16 kHz in [-1, 1]."""
    x = np.asarray(samples)
    x = x.astype(np.float64) / 32768.0 if x.dtype == np.int16 else x.astype(np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g)
    return x


def examples(samples: np.ndarray, sample_rate: int, seconds: int, warn: bool = True) -> np.ndarray:
    """[seconds, 96, 64] float32 log-mel examples of int16 samples [n, channels]."""
    mono = to_mono_16k(samples, sample_rate)
    need = seconds * SAMPLE_RATE
    if len(mono) < need:
        if warn:
            warnings.warn(f"{len(mono) / SAMPLE_RATE:.2f} s of sound for {seconds} s; padded with silence",
                          ShortAudioWarning, stacklevel=2)
        mono = np.pad(mono, (0, need - len(mono)))
    per_second = mono[:need].reshape(seconds, SAMPLE_RATE)
    n_frames = 1 + (SAMPLE_RATE - WINDOW) // HOP  # 98
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = per_second[:, idx] * _window()                      # [seconds, 98, 400]
    spectrum = np.abs(np.fft.rfft(frames, FFT, axis=-1))         # [seconds, 98, 257]
    log_mel = np.log(spectrum @ mel_matrix() + LOG_OFFSET)       # [seconds, 98, 64]
    return log_mel[:, :FRAMES].astype(np.float32)
