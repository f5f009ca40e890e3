"""The model families, one entry each, registered in one place.

An entry (``FamilyEntry``) is everything that belongs to one family and that the rest of the library
asks for by iterating the registry: the question-answering models it trains (each a
``avqa.tasks.qa.Family``: config, flags, model builder, named losses, optimiser and schedule,
checkpoint load hook, feature folders, test-mode outputs), its stages of the main job and what the
main job's summary prints of it, its ablation rungs (``avqa.ladder_families.LadderFamily``) and how
``avqa.ask`` answers with it. The engine, the main job, the ladder, ``ask`` and the demo never name a
family: they ask this module.

Each entry lives in its family's package and is registered by its import path, one line per family
(``REGISTERED``); an entry is imported the first time it is asked for, so that this module, at the
bottom of the layers, imports none of them and no cycle appears. A test or a plug-in adds a family
with one call: ``register("toy", "tests.toyfamily:FAMILY")``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

# name -> "module:ATTRIBUTE" of its entry, in the order the main job runs and its summary prints them
REGISTERED: dict[str, str] = {
    "avst": "avqa.avst.family:FAMILY",
    "tspm": "avqa.tspm.family:FAMILY",
    "qatiger": "avqa.qatiger.family:FAMILY",
}
_loaded: dict[str, "FamilyEntry"] = {}


@dataclass(frozen=True)
class FamilyEntry:
    """One model family as the library sees it.

    ``models``: the question-answering models it trains and tests, by the name their checkpoints and
    test reports carry (``model``), each an ``avqa.tasks.qa.Family``;
    ``in_main_job``: the main job runs it without --family;
    ``stages(job)``: its stages of the main job (``job``: the ``avqa.job.MainJob`` of the set), after the
    set's own;
    ``tables``: the models whose ``<out>/<model>_test.json`` the main job's summary table shows;
    ``summary(out, tables)``: what the summary prints of it after the table; returns what it adds to
    summary.json;
    ``ladder``: its ablation rungs (an ``avqa.ladder_families.LadderFamily``), or None;
    ``answerer(checkpoint, label_train, **options)``: how ``avqa.ask`` answers with a checkpoint of one of the
    models ``answers`` names: an object with ``vocab`` and ``answer(video, question)``, whose reply has ``answer``,
    ``probability`` and ``as_dict()``; optionally ``details(reply_dict)``, the lines ``python -m avqa.ask`` prints
    after the answer, and ``sheet(reply)``, the image ``--sheet`` saves. ``python -m avqa.ask`` passes its flags
    (vggish_weights, res18_weights, seconds, device) and prepare=False (build what is slow on the first
    answer) as ``options``, which an answerer takes as keywords and may ignore;
    ``recipes``: its training recipes by name ("demo": the main job's, "tiny": --tiny's), each a dict of
    ``avqa.recipes.Recipe`` values by what it trains (a model, or a stage such as AVST's grounding), in the
    order the bundled checkpoint's record lists them;
    ``train_config(job, **settings)``: how its main model trains in the main job on ``job``'s set (``job``: data,
    feats, out, seconds, tiny and args.device of an ``avqa.job.MainJob``): ``(config, run)``, the config of that
    training with ``settings`` over it (e.g. epochs, overwrite, mode="test") and the function that runs a config
    of it, returning an exit code (what benchmarks/bench_train_breakdown.py trains), or None.
    """

    name: str
    title: str
    models: dict[str, Any]
    in_main_job: bool = False
    stages: Callable[[Any], list] | None = None
    tables: tuple[str, ...] = ()
    summary: Callable[[Any, dict], dict] | None = None
    ladder: Any = None
    answerer: Callable[..., Any] | None = None
    answers: tuple[str, ...] = ()
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    help: str = ""
    train_config: Callable[..., tuple[Any, Callable[[Any], int]]] | None = None


def recipes(name: str) -> dict[str, Any]:
    """The recipes ``name`` ("demo", "tiny") of every family, by what each trains, in registration order."""
    return {trained: recipe for e in entries() for trained, recipe in e.recipes.get(name, {}).items()}


def register(name: str, where: str) -> None:
    """Add (or replace) the family ``name`` whose entry is ``where``, "package.module:ATTRIBUTE"."""
    REGISTERED[name] = where
    _loaded.pop(name, None)


def entry(name: str) -> FamilyEntry:
    """The registered family ``name``; a KeyError names the registered ones."""
    if name not in REGISTERED:
        raise KeyError(f"no model family '{name}' (registered: {', '.join(REGISTERED)})")
    if name not in _loaded:
        module, _, attribute = REGISTERED[name].partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if found.name != name:
            raise ValueError(f"{REGISTERED[name]} is the family '{found.name}', registered as '{name}'")
        _loaded[name] = found
    return _loaded[name]


def entries() -> list[FamilyEntry]:
    """Every registered family, in registration order."""
    return [entry(name) for name in REGISTERED]


def qa_models() -> dict[str, Any]:
    """Every question-answering model of every family: model name -> its ``avqa.tasks.qa.Family``."""
    return {name: family for e in entries() for name, family in e.models.items()}


def owner(model: str) -> FamilyEntry | None:
    """The family whose models include ``model`` (a checkpoint's or a report's "model"), or None."""
    return next((e for e in entries() if model in e.models), None)


def answering() -> dict[str, FamilyEntry]:
    """The models ``avqa.ask`` answers with, and the family that answers with each, in registration order."""
    return {model: e for e in entries() if e.answerer is not None for model in e.answers}
