"""The engine trains a model family it has never heard of, the scripts' flags fill the config exactly,
and avqa.checkpoint names every run's files by one rule."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import SequentialSampler

from avqa import checkpoint
from avqa.engine.loop import Objective, fit
from avqa.engine.runlog import RunLog
from avqa.engine.runtime import Runtime, make_loader
from avqa.tasks.cli import build_parser, parse
from avqa import registry


class Points:
    """Two separable clouds of 2-d points: a dataset with the BatchLoader interface and no features."""

    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.label = torch.arange(n) % 2
        self.x = torch.randn(n, 2, generator=g) + 3.0 * (self.label[:, None] * 2 - 1)

    def __len__(self) -> int:
        return len(self.label)

    def set_epoch(self, epoch: int) -> None:
        pass

    def buffers(self, batch_size: int, pin: bool = False) -> dict:
        return {}

    def batch(self, indices, buffers=None) -> dict:
        idx = torch.as_tensor(list(indices))
        return {"points": self.x[idx], "label": self.label[idx]}


def _cross_entropy(model: nn.Module, batch: dict):
    loss = F.cross_entropy(model(batch["points"]), batch["label"])
    return {"loss": loss, "answer": loss}


def test_the_loop_trains_a_family_it_does_not_know(tmp_path):
    """A model with its own forward signature trains through fit() given only an Objective; the
    checkpoints land under avqa.checkpoint's names, and a resume of a finished run trains no further."""
    torch.manual_seed(0)
    rt = Runtime(SimpleNamespace(gpu=None, device="cpu", amp=False))
    data = Points()
    train = make_loader(data, 16, True, rt, 0, seed=1)
    val = make_loader(data, 64, False, rt, 0, seed=1)
    assert isinstance(val.sampler, SequentialSampler)
    model = nn.Linear(2, 2)

    def accuracy(m):
        batch = next(iter(val))
        return 100.0 * (m(batch["points"]).argmax(1) == batch["label"]).float().mean().item()

    cfg = SimpleNamespace(epochs=3, lr=0.05, lr_step=8, lr_gamma=0.1, resume=False, seed=1, quiet=True,
                          log_interval=50)
    files = checkpoint.Files(tmp_path, "points")
    log = RunLog(files.log, "", "points", True, fresh=True)
    before = accuracy(model)
    best = fit(cfg, Objective(_cross_entropy), model, train, accuracy, rt, log, files, {"model": "points"},
               {"epochs": 3}, None)
    assert best == 100.0 and before < 100.0
    last = checkpoint.load_dict(files.last)
    assert checkpoint.is_ours(last) and last["model"] == "points" and last["epoch"] == 3 and last["args"] == {"epochs": 3}
    assert [h["epoch"] for h in last["history"]] == [0, 1, 2, 3] and last["history"][1]["match_loss"] is None
    assert files.best == tmp_path / "points.pt" and files.best.is_file()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    again = fit(cfg, Objective(_cross_entropy), model, train, accuracy, rt, log, files, {"model": "points"},
                {"epochs": 3}, last)
    assert again == best and all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert "all 3 epochs were already done" in files.log.read_text()
    log.close()


@pytest.mark.parametrize("kind,argv", [("avst", []), ("avst", ["--model", "question_only", "--mode", "test"]),
                                       ("baseline", ["--results", "r.json"]), ("grounding", ["--mode", "val"])])
def test_the_config_holds_exactly_the_scripts_flags(kind, argv):
    """What a checkpoint records as its "args" and a log as its flags is the script's own flag set, in order."""
    namespace = vars(build_parser(kind, "").parse_args(argv))
    assert list(parse(kind, argv).flags().items()) == list(namespace.items())


def test_checkpoint_names_follow_one_rule(tmp_path):
    grounding, qa = checkpoint.Files(tmp_path, "g", "grounding"), checkpoint.Files(tmp_path, "avst", "avst")
    assert (grounding.best.name, grounding.last.name, grounding.log.name) == ("g_best.pt", "g_last.pt", "g.log")
    assert (qa.best.name, qa.last.name) == ("avst.pt", "avst_last.pt")
    assert checkpoint.trained_path(tmp_path, "g", "grounding") == grounding.best
    assert checkpoint.record_path(qa.best).name == "avst_recorded.json"


def test_every_qa_model_is_a_registered_family():
    """The ablation rungs and the baseline train through the same adapter; only AVST reports its match loss."""
    from avqa.models import QA_MODELS
    assert set(registry.entry("avst").models) == set(QA_MODELS)
    assert set(registry.qa_models()) == {*QA_MODELS, "tspm", "qatiger"}
    assert [name for name, f in registry.qa_models().items() if "match" in f.reported] == ["avst"]


@pytest.mark.parametrize("kind", ["avst", "baseline", "grounding"])
def test_a_scripts_defaults_are_its_recipe(kind):
    """The command line's defaults and the typed config's come from one recipe (avqa.recipes.ORIGINAL)."""
    from avqa.recipes import ORIGINAL
    from avqa.tasks.config import RunConfig
    cfg = RunConfig.for_script(kind)
    assert parse(kind, []) == cfg and {k: getattr(cfg, k) for k in ORIGINAL[kind]} == ORIGINAL[kind]


def test_a_recipe_is_a_typed_value_and_its_flags_are_what_its_script_reads():
    """Each family's demo and tiny recipe (its registry entry's): its flags, as stamps and checkpoint records show
    them, read by the script it runs give back its typed settings."""
    from avqa.qatiger.run import build_parser as qatiger_parser
    from avqa.tspm.run import build_parser as tspm_parser
    avst, tspm = registry.entry("avst").recipes, registry.entry("tspm").recipes
    qatiger = registry.entry("qatiger").recipes
    assert avst["demo"]["avst"].flags() == ["--epochs", "4", "--lr", "5e-4", "--lr_step", "4", "--batch-size", "32"]
    assert avst["demo"]["grounding"].flags() == ["--epochs", "22", "--lr", "1e-3", "--lr_step", "22",
                                                 "--batch-size", "16"]
    assert tspm["tiny"]["tspm"].flags() == ["--epochs", "1", "--batch-size", "16", "--top_k", "2"]
    assert qatiger["demo"]["qatiger"].flags() == ["--epochs", "12", "--lr", "5e-4", "--lr_step", "10", "--batch-size",
                                                  "32", "--d_model", "128", "--no-release_pairing"]
    assert list(registry.recipes("demo")) == ["grounding", "avst", "tspm", "qatiger"]
    parsers = {"tspm": tspm_parser, "qatiger": qatiger_parser}
    for name, recipes in (("avst", avst), ("tspm", tspm), ("qatiger", qatiger)):
        for trained, recipe in (*recipes["demo"].items(), *recipes["tiny"].items()):
            parser = parsers[name]() if name in parsers else build_parser(trained, "")
            parsed = vars(parser.parse_args(recipe.flags()))
            assert {k: parsed[k] for k in recipe.settings()} == recipe.settings(), (name, trained)


def test_staleness_is_a_value(tmp_path):
    """Each reason a stage or rung runs again, in the order they are checked, from real files."""
    from avqa import stamps
    from avqa.utils import fingerprint
    data = tmp_path / "a.txt"
    data.write_text("one")
    path = tmp_path / "stamp.json"
    reads = lambda: fingerprint([data])  # noqa: E731
    assert stamps.staleness(stamps.read(path), {"x": 1}, reads).reason == stamps.NOT_RUN
    stamps.write(path, config={"x": 1}, reads=reads(), complete=False)
    assert stamps.staleness(stamps.read(path), {"x": 2}, reads).reason == stamps.SETTINGS
    assert stamps.staleness(stamps.read(path), {"x": 1}, reads, upstream={"a": "1"}).reason == stamps.UPSTREAM
    interrupted = stamps.staleness(stamps.read(path), {"x": 1}, reads)
    assert interrupted.reason == stamps.INTERRUPTED and not interrupted.fresh
    stamps.write(path, config={"x": 1}, reads=reads(), complete=True)
    assert stamps.staleness(stamps.read(path), {"x": 1}, reads) is None
    data.write_text("two, longer")
    changed = stamps.staleness(stamps.read(path), {"x": 1}, reads)
    assert changed.reason == stamps.READS and changed.fresh and "a.txt" in changed.changed[0]


def test_the_bundled_checkpoints_check_names_the_cause_within_its_tolerance_and_what_to_check_beyond():
    bundled = Path(__file__).resolve().parents[1] / "net_grd_avst" / "avst_models" / "avst.pt"
    recorded = json.loads(checkpoint.record_path(bundled).read_text())["table"]["Overall"]["accuracy"]
    near = checkpoint.record_comparison(bundled, recorded + checkpoint.RECORD_TOLERANCE - 0.01)
    assert f"recorded overall accuracy of this checkpoint: {recorded:.2f}" in near
    assert "within the" in near and "computed on this CPU" in near and "bfloat16 compute" in near
    far = checkpoint.record_comparison(bundled, recorded - checkpoint.RECORD_TOLERANCE - 0.5)
    assert "more than the" in far and "weights_sha256" in far and "avst_recorded.json" in far
    assert checkpoint.record_comparison(bundled.with_name("no_such.pt"), 50.0) is None
