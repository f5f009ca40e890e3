"""Question answering: train a model family on the answers (net_grd_avst/main_avst.py,
net_grd_baseline/main_qa_grd_baseline.py and the ablation rungs), or test a checkpoint of it.

Each model is a ``Family`` (its model class, its named losses on a batch, its answer scores, its
optimiser and schedule, its checkpoint load hook), listed in its family's entry of avqa.registry. The
loop (avqa.engine.loop), the checkpoint module and the test table never ask which family runs.
"""
from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint, registry
from ..annotations import Vocab, question_key
from ..data import AVQADataset, QASplit, segment_seconds
from ..engine.batches import BatchLoader
from ..engine.loop import Objective, adam, fit, step_lr
from ..engine.ownership import claim_outputs, run_record
from ..engine.runlog import RunLog, describe_inputs
from ..engine.runtime import Runtime, make_loader, to_device
from ..engine.trained_with import check_trained_features, check_trained_flags, recorded_config
from ..evaluate import format_table, score_table
from ..protocols import selected_on
from ..store import FeatureStore
from ..utils import atomic_write_text, check_writable, progress, reading, run_lock, sha256, user_errors
from .cli import parse, resolve_model
from .config import RunConfig
from .inputs import feature_stores, load_split


def qa_loss(model: nn.Module, batch: dict, match_weight: float) -> dict[str, torch.Tensor | None]:
    """CE(answer) + match_weight * CE(match) over positive (label 1) and negative (label 0) frames: the named
    losses "loss" (the total), "answer" and "match" (None for a model without negatives)."""
    logits, match_pos, match_neg = model(batch.get("audio"), batch.get("visual_posi"), batch.get("visual_nega"),
                                         batch["question"])
    answer_loss = F.cross_entropy(logits.float(), batch["label"])
    if match_pos is None or match_neg is None:
        return {"loss": answer_loss, "answer": answer_loss, "match": None}
    match_logits = torch.cat((match_pos, match_neg)).float()
    match_labels = torch.cat((torch.ones(len(match_pos), dtype=torch.long, device=match_logits.device),
                              torch.zeros(len(match_neg), dtype=torch.long, device=match_logits.device)))
    match_loss = F.cross_entropy(match_logits, match_labels)
    return {"loss": answer_loss + match_weight * match_loss, "answer": answer_loss, "match": match_loss}


def answer_scores(model: nn.Module, batch: dict) -> torch.Tensor:
    """The answer logits of the models of avqa.models: forward(audio, visual, negatives, question)[0]."""
    return model(batch.get("audio"), batch.get("visual_posi"), None, batch["question"])[0]


class QAInputs(Protocol):
    """A family's checked inputs for one run: ``total`` seconds per video, and its datasets."""

    total: int

    def dataset(self, split: QASplit, train: bool, seed: int): ...


@dataclass
class StoreInputs:
    """The inputs of the models of avqa.models: VGGish and 14x14 feature stores read at --segments seconds."""

    audio: FeatureStore | None
    visual: FeatureStore | None
    total: int
    segments: int
    negatives: bool

    def dataset(self, split: QASplit, train: bool, seed: int) -> AVQADataset:
        if train:
            return AVQADataset(split, self.audio, self.visual, self.total, self.segments, negatives=self.negatives,
                               seed=seed)
        return AVQADataset(split, self.audio, self.visual, self.total, self.segments)


@dataclass(frozen=True)
class Family:
    """A question-answering model family as the engine sees it.

    ``cls(question_vocab_size, answer_count)`` builds it and says which inputs it reads (``uses_audio``,
    ``uses_visual``, ``uses_negatives``) and which original keys it ignores (``unused_keys``);
    ``loss(model, batch, match_weight)`` (its named losses: "loss", the total, first, then the parts named
    in ``parts``) and ``scores(model, batch)`` are its training and test steps;
    ``reported``: the parts its epoch log prints; ``optimizer(model, cfg)`` and ``scheduler(optimizer, cfg)``:
    what trains it (Adam, StepLR); ``release_state(obj, model)``: the checkpoint load hook, the state_dict of
    a file that is not this project's format (the original release's plain state_dict), or None;
    ``start(cfg)``: what a fresh training starts from (a callable (model, log) applied to the built model,
    checked before any training), or None; ``vocab(cfg, train_samples)``: its question words and answers (the
    classes, in order; default: both from --label_train in order of first appearance).

    A family whose model is built from other settings, or reads other feature files, overrides
    ``build``, ``feature_dirs``, ``files_read``, ``open_inputs`` and ``write_outputs``; the defaults are
    those of the models of avqa.models.
    """

    cls: type[nn.Module]
    loss: Callable = qa_loss
    scores: Callable[[nn.Module, dict], torch.Tensor] = answer_scores
    parts: tuple[str, ...] = ("answer", "match")
    reported: tuple[str, ...] = ("answer",)
    optimizer: Callable = adam
    scheduler: Callable = step_lr
    release_state: Callable[[object, nn.Module], dict | None] = checkpoint.original_state
    start: Callable[[RunConfig], Callable | None] | None = None

    def objective(self, match_weight: float | None) -> Objective:
        weight = 0.5 if match_weight is None else match_weight
        return Objective(lambda model, batch: self.loss(model, batch, weight), parts=self.parts,
                         reported=self.reported, optimizer=self.optimizer, scheduler=self.scheduler)

    def is_release_of(self, keys: set[str]) -> bool:
        """Whether an original state_dict with these keys (``module.`` removed) is this model's."""
        try:
            model = self.cls()
        except TypeError:  # a model built only from a run's settings: its release is not told by its keys
            return False
        return {k for k in keys if not k.startswith(model.unused_keys)} == set(model.state_dict())

    def vocab(self, cfg: RunConfig, train_samples: Sequence[dict]) -> Vocab:
        """The run's question words and answers (the model's classes, in order), from --label_train."""
        return Vocab.from_samples(train_samples)

    def split(self, path: str, vocab: Vocab | None = None, samples: list[dict] | None = None):
        """The rows of annotation file ``path``, checked for this model (default: questions of at most 14 of
        this project's tokens); with ``vocab``, encoded as a QASplit (``samples``: the rows, already read)."""
        return load_split(path, vocab, samples)

    def build(self, cfg: RunConfig, vocab: Vocab) -> nn.Module:
        """The untrained model of this run's settings."""
        return self.cls(len(vocab.questions), len(vocab.answers))

    def feature_dirs(self, cfg: RunConfig) -> list[str]:
        """The feature folders the run reads: logged, and their metadata recorded for --resume."""
        return [d for d, used in ((cfg.audio_dir, self.cls.uses_audio), (cfg.video_res14x14_dir, self.cls.uses_visual))
                if used]

    def files_read(self, cfg: RunConfig, samples: Sequence[dict]) -> list[Path] | None:
        """The feature files the run reads (their stamps go into the run's record); None: <dir>/<video_id>.npy."""
        return None

    def open_inputs(self, cfg: RunConfig, samples: Sequence[dict]) -> QAInputs:
        """Open and check every feature file the questions ``samples`` read, before any training."""
        audio, visual, total = feature_stores(cfg, [s["video_id"] for s in samples], self.cls.uses_visual,
                                              need_audio=self.cls.uses_audio,
                                              reads=lambda T: segment_seconds(T, cfg.segments))
        return StoreInputs(audio, visual, total, cfg.segments, self.cls.uses_negatives)

    def output_dirs(self, cfg: RunConfig) -> list[tuple[str, str]]:
        """Test mode: (folder, flag) of the files ``write_outputs`` writes, checked writable before testing."""
        return []

    def write_outputs(self, cfg: RunConfig, split: QASplit, vocab: Vocab, out: dict, table: dict) -> list[Path]:
        """Test mode: the family's own result files beside the JSON report; returns their paths."""
        return []


@torch.no_grad()
def predict_qa(model: nn.Module, loader: BatchLoader, rt: Runtime, quiet: bool = True, desc: str = "eval",
               scores: Callable[[nn.Module, dict], torch.Tensor] = answer_scores) -> dict:
    """Predicted and true answer ids, question types, rows and finiteness of every question of ``loader``."""
    model.eval()
    preds, labels, types, index, finite = [], [], [], [], []
    for batch in progress(loader, desc=desc, unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            logits = scores(model, batch)
        preds.append(logits.argmax(1).cpu())
        finite.append(torch.isfinite(logits).all(1).cpu())
        labels.append(batch["label"].cpu())
        types.append(batch["type"].cpu())
        index.append(batch["index"].cpu())
    return {k: torch.cat(v) for k, v in (("pred", preds), ("label", labels), ("type", types), ("index", index),
                                         ("finite", finite))}


def _other_family(path: Path, model_kind: str) -> str | None:
    """The sentence for an original state_dict that another registered family's model would load, else None."""
    try:
        obj = checkpoint.load_file(path)
    except (ValueError, OSError):
        return None
    if not checkpoint.is_original(obj):
        return None
    keys = {k.removeprefix("module.") for k in obj}
    for kind, family in registry.qa_models().items():
        if kind != model_kind and family.is_release_of(keys):
            return (f"{path} is an original '{kind}' state_dict, not a '{model_kind}' checkpoint: test it with the "
                    f"script and --model of '{kind}', or give a '{model_kind}' checkpoint (--model_save_dir, --checkpoint)")
    return None


def _load_tested(cfg: RunConfig, model_kind: str, family: Family, vocab: Vocab) -> tuple[nn.Module, Path, dict]:
    """Test mode's model and checkpoint, refused before any prediction where the flags that shape its answers
    or the feature files it learned from differ from its training (engine.trained_with)."""
    ckpt = checkpoint.trained_path(Path(cfg.model_save_dir), cfg.checkpoint, cfg.script)
    try:
        loaded = checkpoint.load_file(ckpt) if ckpt.is_file() else None
    except ValueError:
        loaded = None  # load_trained_state reads it again and says what it is
    meta = checkpoint.metadata(loaded) if checkpoint.is_ours(loaded) and loaded.get("model") == model_kind else {}
    # a model that reads no features (question-only): no flag of how they are read changes its answers
    check_trained_flags(ckpt, meta, cfg, None if family.feature_dirs(cfg) else ())
    model = family.build(cfg, vocab)
    try:
        checkpoint.load_trained_state(ckpt, model_kind, model, vocab, loaded, family.release_state)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(_other_family(ckpt, model_kind) or str(e)) from None
    if not checkpoint.record_path(ckpt).is_file():  # the bundled checkpoint's features are named in its record
        check_trained_features(ckpt, meta, family.feature_dirs(recorded_config(cfg, meta)), family.feature_dirs(cfg),
                               cfg.flags())
    return model, ckpt, meta


def train_qa(cfg: RunConfig, model_kind: str, rt: Runtime, held: ExitStack, family: Family | None = None) -> None:
    """Train ``model_kind`` as ``cfg`` says; ``held`` keeps the run's lock and log until the caller is done.

    ``family``: the family to train (default: the registry's ``model_kind``).
    """
    family, save_dir = family or registry.qa_models()[model_kind], Path(cfg.model_save_dir)
    train_samples = family.split(cfg.label_train)
    vocab = family.vocab(cfg, train_samples)
    splits = {"train": family.split(cfg.label_train, vocab, train_samples), "val": family.split(cfg.label_val, vocab)}
    samples = [s for sp in splits.values() for s in sp.samples]
    videos = [s["video_id"] for s in samples]
    feature_dirs = family.feature_dirs(cfg)
    record = run_record(cfg, model_kind, vocab, feature_dirs, videos, family.files_read(cfg, samples))
    files = checkpoint.Files(save_dir, cfg.checkpoint, cfg.script)
    if rt.main:  # one training at a time into one checkpoint (torchrun's ranks are one run)
        held.enter_context(run_lock(save_dir, cfg.checkpoint, "--model_save_dir"))
    state = claim_outputs(cfg, files.best, files.last, record, rt)
    # a resumed run has its weights in _last.pt; a fresh one's start is checked before any training
    start = family.start(cfg) if family.start is not None and state is None else None
    inputs = family.open_inputs(cfg, samples)
    model = family.build(cfg, vocab).to(rt.device)
    log = RunLog(files.log, cfg.tensorboard_dir, f"net_{model_kind}", rt.main, fresh=state is None)
    held.callback(log.close)
    meta = {"model": model_kind, "question_vocab": list(vocab.questions), "answer_vocab": list(vocab.answers),
            "run": record}
    for line in describe_inputs(cfg.flags(), [cfg.label_train, cfg.label_val], feature_dirs):
        log.line(line, echo=False)
    log.line(f"{model_kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
             f"{len(splits['train'].samples)} train / {len(splits['val'].samples)} val questions, "
             f"T={inputs.total} seconds per video, device {rt.device}, {rt.world} process(es)")
    if start is not None:
        start(model, log)
    train_loader = make_loader(inputs.dataset(splits["train"], True, cfg.seed), rt.per_process(cfg.batch_size), True,
                               rt, cfg.num_workers, cfg.seed)
    val_loader = make_loader(inputs.dataset(splits["val"], False, cfg.seed), cfg.eval_batch_size, False, rt,
                             cfg.num_workers, cfg.seed)

    def evaluate(m):
        out = predict_qa(m, val_loader, rt, quiet=cfg.quiet, desc="val", scores=family.scores)
        return 100.0 * (out["pred"] == out["label"]).float().mean().item()

    best = fit(cfg, family.objective(getattr(cfg, "match_weight", None)), model, train_loader, evaluate, rt, log, files, meta,
               cfg.flags(), state)
    log.line(f"best val accuracy {best:.2f}; checkpoint {files.best}")


def test_qa(cfg: RunConfig, model_kind: str, rt: Runtime, family: Family | None = None) -> None:
    """Test a checkpoint on --label_test: print the table and write the report (rank 0)."""
    family, save_dir = family or registry.qa_models()[model_kind], Path(cfg.model_save_dir)
    vocab = family.vocab(cfg, family.split(cfg.label_train))
    split = family.split(cfg.label_test, vocab)
    model, ckpt, meta = _load_tested(cfg, model_kind, family, vocab)
    selection = selected_on((meta.get("args") or {}).get("label_val"))
    results = Path(cfg.results) if cfg.results else save_dir / f"{cfg.checkpoint}_{Path(cfg.label_test).stem}.json"
    check_writable(results.parent, "--results" if cfg.results else "--model_save_dir")
    for folder, flag in family.output_dirs(cfg):
        check_writable(folder, flag)
    inputs = family.open_inputs(cfg, split.samples)
    model.to(rt.device)
    if not rt.main:
        return
    print(f"protocol: {cfg.label_test} (sha256 {sha256(cfg.label_test)[:16]}, {len(split.samples)} questions), "
          f"vocabularies from {cfg.label_train} (sha256 {sha256(cfg.label_train)[:16]}), checkpoint {ckpt}"
          + (f", selected on {selection['file']} (sha256 {selection['sha256'][:16]}, {selection['protocol']} "
             f"protocol)" if selection else ""))
    loader = make_loader(inputs.dataset(split, False, cfg.seed), cfg.eval_batch_size, False, rt, cfg.num_workers,
                         cfg.seed)
    out = predict_qa(model, loader, rt, quiet=cfg.quiet, desc="test", scores=family.scores)
    table = score_table((out["pred"] == out["label"]).numpy(), out["type"].numpy())
    print(format_table(table, f"{model_kind} on {cfg.label_test} ({len(split.samples)} questions):"))
    nonfinite = int((~out["finite"]).sum())
    if nonfinite:
        print(f"WARNING: {nonfinite} of {len(split.samples)} predictions come from non-finite scores (NaN or "
              f"inf), so their answers mean nothing: the features hold NaN or inf"
              f"{' (--no_feature_check skipped the scan that finds them)' if cfg.no_feature_check else ''}. "
              f"They are marked in the report.", file=sys.stderr)
    write_results(results, cfg.label_test, model_kind, ckpt, split, vocab, out, table, cfg.flags(), selection)
    print(f"results: {results}")
    for path in family.write_outputs(cfg, split, vocab, out, table):
        print(f"results: {path}")
    line = checkpoint.record_comparison(ckpt, table["Overall"]["accuracy"])
    if line:
        print(line)


def write_results(path: Path, annotations: str, model_kind: str, ckpt: Path, split, vocab: Vocab, out: dict,
                  table: dict, flags: dict | None = None, selection: dict | None = None) -> None:
    """The test report: the flags it ran with, the validation file and protocol its checkpoint was selected
    on, the table and every prediction, in the annotation file's order."""
    order = torch.argsort(out["index"])
    preds = []
    for i in order.tolist():
        row = int(out["index"][i])
        s = split.samples[row]
        p = vocab.answers[int(out["pred"][i])]
        preds.append({"row": row, "key": question_key(s), "question_id": s.get("question_id"), "video_id": s["video_id"],
                      "type": s["type"],
                      "prediction": p, "answer": s["anser"], "correct": p == s["anser"],
                      "scores_finite": bool(out["finite"][i])})
    atomic_write_text(path, json.dumps({"model": model_kind, "checkpoint": str(ckpt), "checkpoint_sha256": sha256(ckpt),
                                        "annotations": annotations, "annotations_sha256": sha256(annotations),
                                        "flags": flags, "selected_on": selection, "questions": len(preds),
                                        "nonfinite_predictions": sum(not p["scores_finite"] for p in preds),
                                        "table": table, "predictions": preds}, indent=1))


def run(cfg: RunConfig, model_kind: str | None = None, family: Family | None = None) -> int:
    """Train or test (cfg.mode) the model cfg.model names, with the script cfg.script's defaults.

    ``model_kind`` and ``family``: a model outside the registry (its scripts pass both).
    """
    model_kind = model_kind or resolve_model(cfg.script, cfg)
    rt = Runtime(cfg)
    torch.manual_seed(cfg.seed)
    held = ExitStack()
    try:
        if rt.main:  # an extractor's --overwrite of a folder this run reads waits for it to end
            for folder in (family or registry.qa_models()[model_kind]).feature_dirs(cfg):
                held.enter_context(reading(folder))
        if cfg.mode == "train":
            train_qa(cfg, model_kind, rt, held, family)
        else:
            test_qa(cfg, model_kind, rt, family)
        return 0
    finally:
        held.close()
        rt.close()


@user_errors
def run_qa(kind: str, argv: Sequence[str] | None = None, description: str = "") -> int:
    """main_avst.py and main_qa_grd_baseline.py: their flags onto a RunConfig, then ``run``."""
    return run(parse(kind, argv, description))
