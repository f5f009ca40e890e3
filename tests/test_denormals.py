"""Subnormal floats are flushed to zero in every thread that computes while TSPM runs with --flush_denormals
(avqa.engine.denormals): its attention's gradients underflow as it trains, and on Intel cores arithmetic on
them is slow."""
from __future__ import annotations

import pytest
import torch

import avqa.tspm.run
from avqa.engine.denormals import flush_denormals

SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def _kept_subnormals() -> int:
    """How many of a product spread over the intra-op threads come out subnormal (0 when every thread flushes)."""
    x = torch.full((1 << 20,), SUBNORMAL)  # large enough for ATen to split it over its threads
    return int((x * 1.0 != 0).sum())


needs_threads = pytest.mark.skipif(torch.get_num_threads() < 2 or not torch.set_flush_denormal(False),
                                   reason="needs two intra-op threads and a CPU with flush-to-zero")


@needs_threads
def test_every_thread_flushes_inside_and_none_after():
    _kept_subnormals()  # the OpenMP pool runs before the flag is set, as in a process that has trained already
    assert _kept_subnormals() == 1 << 20
    with flush_denormals() as supported:
        assert supported and _kept_subnormals() == 0
    assert _kept_subnormals() == 1 << 20


@needs_threads
def test_tspm_runs_with_subnormals_flushed_everywhere_when_asked(monkeypatch):
    _kept_subnormals()
    seen = []
    monkeypatch.setattr(avqa.tspm.run, "run", lambda cfg, kind, family: seen.append(_kept_subnormals()) or 0)
    on = avqa.tspm.run.parse(["--flush_denormals"], "train")
    assert on.flush_denormals and avqa.tspm.run.run_config(on) == 0
    assert avqa.tspm.run.run_config(avqa.tspm.run.parse([], "train")) == 0  # off by default: the same numbers
    assert seen == [0, 1 << 20] and _kept_subnormals() == 1 << 20
