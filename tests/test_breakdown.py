"""The engine's per-epoch breakdown (avqa.engine.breakdown): off by default, and on it times every phase of
each epoch without touching the numbers."""
from __future__ import annotations

import contextlib
from types import SimpleNamespace

import torch
import torch.nn as nn
from test_engine import Points, _cross_entropy

from avqa import checkpoint
from avqa.engine import breakdown
from avqa.engine.loop import Objective, fit
from avqa.engine.runlog import RunLog
from avqa.engine.runtime import Runtime, make_loader


def _train(folder, recorded: bool):
    torch.manual_seed(0)
    rt = Runtime(SimpleNamespace(gpu=None, device="cpu", amp=False))
    data = Points()
    train, val = make_loader(data, 16, True, rt, 1, seed=1), make_loader(data, 64, False, rt, 0, seed=1)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))

    def accuracy(m):
        batch = next(iter(val))
        return 100.0 * (m(batch["points"]).argmax(1) == batch["label"]).float().mean().item()

    cfg = SimpleNamespace(epochs=3, lr=0.05, lr_step=8, lr_gamma=0.1, resume=False, seed=1, quiet=True, log_interval=2)
    files = checkpoint.Files(folder, "points")
    log = RunLog(files.log, "", "points", True, fresh=True)
    with breakdown.record() if recorded else contextlib.nullcontext() as b:
        fit(cfg, Objective(_cross_entropy), model, train, accuracy, rt, log, files, {"model": "points"}, {}, None)
    log.close()
    return model.state_dict(), b


def test_the_breakdown_times_each_phase_of_each_epoch_and_leaves_the_weights_as_they_are(tmp_path):
    plain, nothing = _train(tmp_path / "plain", recorded=False)
    timed, b = _train(tmp_path / "timed", recorded=True)
    assert nothing is None and breakdown._active is None  # off again after record()
    assert plain.keys() == timed.keys() and all(torch.equal(plain[k], timed[k]) for k in plain)
    assert [e.epoch for e in b.epochs] == [1, 2, 3]
    for e in b.epochs:
        assert e.samples == 64 and e.rss_mib > 0 and e.wall > 0 and e.cpu > 0
        for name in ("forward", "backward", "step", "validation", "checkpoint", "log"):
            assert e.seconds[name] > 0, name
        assert sum(e.seconds.values()) <= e.wall + 1e-6
    text = breakdown.table(b)
    assert text.splitlines()[0].split()[:8] == ["epoch", *breakdown.PHASES] and len(text.splitlines()) == 4


def test_off_by_default_the_hooks_time_nothing():
    assert breakdown._active is None
    items = [1, 2]
    assert breakdown.timed(items) is items
    with breakdown.phase("forward"):
        pass
    breakdown.begin_epoch(1)
    breakdown.end_epoch(1, 1.0)
    assert breakdown._active is None


def _benchmark():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_breakdown.py"
    spec = importlib.util.spec_from_file_location("bench_train_breakdown", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmarks_families_are_the_registrys_and_each_trains_its_main_job_recipe(tmp_path):
    """--family offers every registered family that says how the main job trains it, and nothing else; each
    one's config reads the set's folders, writes under --out and has the main job's recipe."""
    from avqa import registry
    bench = _benchmark()
    choices = next(a.choices for a in bench.build_parser()._actions if a.dest == "family")
    assert choices == [e.name for e in registry.entries() if e.train_config is not None]
    assert {"avst", "tspm"} <= set(choices)
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "feats").mkdir(parents=True)
    (data / "feats" / "vggish.json").write_text('{"seconds": 10}')
    for family in choices:
        for tiny, recipe in ((False, "demo"), (True, "tiny")):
            cfg, run = bench.family_config(family, data, out, tiny, {"overwrite": True})
            main = registry.entry(family).recipes[recipe][cfg.model]
            assert callable(run) and cfg.overwrite and cfg.mode == "train"
            assert {k: getattr(cfg, k) for k in main.settings()} == main.settings(), (family, recipe)
            assert cfg.label_train == str(data / "json" / "avqa-train.json")
            assert cfg.model_save_dir.startswith(str(out))
