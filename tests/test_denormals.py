"""Subnormal floats are flushed to zero in every thread that computes while TSPM or QA-TIGER runs with
--flush_denormals (avqa.engine.denormals): their attention's gradients underflow as they train, and on Intel
cores arithmetic on them is slow."""
from __future__ import annotations

import pytest
import torch

import avqa.engine.denormals
import avqa.qatiger.run
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
@pytest.mark.parametrize("argv, intel, flushed", [
    (["--flush_denormals"], False, True),            # the bare flag: on, on any CPU
    (["--flush_denormals", "on"], False, True),
    (["--flush_denormals", "off"], True, False),
    ([], True, True),                                # auto: on where the CPU slows on subnormals (Intel) ...
    ([], False, False),                              # ... off elsewhere (AMD keeps its bits)
    (["--flush_denormals", "auto"], True, True)])
@pytest.mark.parametrize("family", [avqa.tspm.run, avqa.qatiger.run])
def test_a_family_flushes_subnormals_everywhere_as_asked_and_records_what_it_did(monkeypatch, family, argv, intel,
                                                                               flushed):
    _kept_subnormals()
    seen = []
    monkeypatch.setattr(avqa.engine.denormals, "slows_on_subnormals", lambda: intel)
    monkeypatch.setattr(family, "run",
                        lambda cfg, kind, family: seen.append((_kept_subnormals(), cfg.flags()["flush_denormals"])) or 0)
    assert family.run_config(family.parse(argv, "train")) == 0
    # every thread flushed inside, or none; the run's flags (the checkpoint's "args") carry the resolved bool
    assert seen == [(0 if flushed else 1 << 20, flushed)]
    assert _kept_subnormals() == 1 << 20  # and the default again after


def test_a_value_not_auto_on_or_off_stops_with_one_sentence():
    with pytest.raises(SystemExit, match="--flush_denormals 'yes': not one of auto, on, off"):
        avqa.engine.denormals.flush_denormals_on("yes")


@needs_threads
def test_the_speed_benchmarks_time_each_model_under_its_own_setting():
    """benchmarks/turns.py: the release kept and ours flushed (--as_trained), in turns, and nothing flushed after."""
    import sys
    from argparse import Namespace
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from turns import flush_settings, timed_in_turns
    settings = flush_settings(["release", "ours"], Namespace(flush_denormals="on", as_trained=True), "release")
    assert settings == {"release": False, "ours": True}
    assert flush_settings(["release", "ours"], Namespace(flush_denormals="on", as_trained=False), "release") == \
        {"release": True, "ours": True}
    kept: dict[str, list[int]] = {"release": [], "ours": []}
    steps = {name: (lambda name=name: kept[name].append(_kept_subnormals())) for name in kept}
    seconds = timed_in_turns(steps, 1, 2, settings)
    assert kept == {"release": [1 << 20] * 3, "ours": [0] * 3}
    assert [len(s) for s in seconds.values()] == [2, 2]                  # the warm-up round is not timed
    assert _kept_subnormals() == 1 << 20
