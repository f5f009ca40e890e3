"""Training, evaluation and testing for grounding pre-training, AVST, the baseline and question-only.

One loop serves all of them; the scripts in grounding_gen/, net_grd_avst/ and net_grd_baseline/
only choose defaults. What the loop guarantees:
- the original recipe by default (Adam, StepLR(8, 0.1) stepped once per epoch, CE(answer) +
  0.5 CE(match), best-on-val checkpoint); every value is a flag;
- bad input stops before any training: missing or malformed feature files, words or answers
  outside the vocabulary, a checkpoint of another model or vocabulary;
- CPU or CUDA (--device), mixed precision (--amp), several GPUs or nodes with torchrun
  (DistributedDataParallel; --batch-size stays the global batch);
- --resume continues from the last epoch checkpoint and ends with the same weights as an
  unbroken run; checkpoints are written atomically and load with weights_only=True;
- TensorBoard scalars under runs/, a progress bar with samples/s, and a plain-text log next to
  each checkpoint with the flags, the data files, the feature metadata and the per-epoch figures.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import sys
import time
import types
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler
from tqdm import tqdm

from .annotations import AnnotationError, Vocab, load_annotations, question_key
from .data import (AUDIO_SHAPE, GROUNDING_SECONDS, VISUAL_SHAPE, AVQADataset, BatchLoader, FeatureError,
                   FeatureStore, GroundingDataset, encode_split, real_videos, segment_seconds)
from .evaluate import format_table, score_table
from .models import LADDER, QA_MODELS, AudioVisualGrounding, rung_doc, transfer_grounding
from . import checkpoint
from .checkpoint import FORMAT as CHECKPOINT_FORMAT, load_trained_state
from .utils import (EXIT_CODES, at_least, atomic_write_text, changes, check_writable, clean_stale_temps, fingerprint,
                    metadata_path, pick_device, progress, relative_hint, run_lock, sha256, user_errors)

MODEL_NAMES = {"AVQA_Fusion_Net": None, "baseline": "baseline", **{name: name for name in LADDER}}
LADDER_HELP = ("AVQA_Fusion_Net (= avst) is this script's model. The others are the rungs of the paper's ablation, "
               "bottom to top: same loop, recipe, checkpoint format and test report; only avst starts from "
               "--pretrained_grounding, the others from scratch.\n"
               + "\n".join(f"{name} ({label}): " + rung_doc(name).replace("\n", "\n    ")
                           for name, (label, _) in LADDER.items()))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the line breaks a help text holds (the --model ladder) and wraps each line."""

    def _split_lines(self, text, width):
        split = super()._split_lines
        return [part for line in text.splitlines() for part in split(line, width)]

# ----------------------------------------------------------------------------- command line


GROUNDING_DEFAULTS = dict(epochs=30, save="grounding_gen/models_grounding_gen/", ckpt="main_grounding_gen",
                          model="AVQA_AVatt_Grounding")


def build_parser(kind: str, description: str) -> argparse.ArgumentParser:
    """The original flags of each script, plus ours; defaults work from the repository root."""
    d = {
        "avst": dict(epochs=80, save="net_grd_avst/avst_models/", ckpt="avst", model="AVQA_Fusion_Net"),
        "baseline": dict(epochs=20, save="net_grd_baseline/models_grd_baseline/", ckpt="net_grd_baseline",
                         model="AVQA_Fusion_Net"),
        "grounding": GROUNDING_DEFAULTS,
    }[kind]
    d = dict(d, train="./data/json/avqa-train.json", val="./data/json/avqa-val.json", test="./data/json/avqa-test.json")
    p = argparse.ArgumentParser(description=description, epilog=EXIT_CODES, formatter_class=_HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--audio_dir", default="./data/feats/vggish", help="VGGish features, <video_id>.npy [T,128]")
    g.add_argument("--video_res14x14_dir", default="./data/feats/res18_14x14",
                   help="ResNet-18 14x14 features, <video_id>.npy [T,512,14,14]")
    if kind != "avst":
        g.add_argument("--video_dir", default="./data/frames",
                       help="original flag (frame folders); unused: the frozen ResNet's features are read "
                            "from --video_res14x14_dir instead")
        g.add_argument("--st_dir", default="./data/feats/r2plus1d_18", help="original flag; unused")
    g.add_argument("--label_train", default=d["train"],
                   help="train annotations; the vocabularies are built from it (test mode too)")
    g.add_argument("--label_val", default=d["val"], help="validation annotations (model selection)")
    g.add_argument("--label_test", default=d["test"], help="test annotations")
    g.add_argument("--segments", type=at_least(1), default=10,
                   help="seconds the model sees per video: every (T // segments)-th second ([::6] for T=60)")
    g.add_argument("--no_feature_check", action="store_true",
                   help="skip the NaN/inf scan of feature files (shapes are always checked)")
    o = p.add_argument_group("optimisation (defaults are the original recipe)")
    o.add_argument("--batch-size", dest="batch_size", type=at_least(1), default=64, metavar="N",
                   help="global batch size (split across processes under torchrun)")
    o.add_argument("--epochs", type=at_least(1), default=d["epochs"], metavar="N",
                   help="epochs to train (with --resume: the total, counting the epochs already done)")
    o.add_argument("--lr", type=at_least(0.0, float), default=1e-4, metavar="LR", help="Adam learning rate")
    o.add_argument("--lr_step", type=at_least(1), default=8, help="StepLR step size in epochs")
    o.add_argument("--lr_gamma", type=at_least(0.0, float, above=True), default=0.1, help="StepLR decay factor")
    if kind == "avst":
        o.add_argument("--match_weight", type=at_least(0.0, float), default=0.5, help="weight of the match loss")
        o.add_argument("--pretrained_grounding", default=checkpoint.trained_path(
            GROUNDING_DEFAULTS["save"], GROUNDING_DEFAULTS["ckpt"], "grounding").as_posix(),
                       help="grounding checkpoint whose fc_a1, fc_a2, fc_gl, fc1..fc4 start AVST; 'none' to start "
                            "from scratch")
    o.add_argument("--seed", type=int, default=1, metavar="S", help="random seed")
    r = p.add_argument_group("run")
    r.add_argument("--mode", default="train", choices=["train", "val", "test"] if kind == "grounding" else ["train", "test"],
                   help="train, or test a saved checkpoint")
    r.add_argument("--model", default=d["model"],
                   choices={"avst": ["AVQA_Fusion_Net", *LADDER],
                            "baseline": ["AVQA_Fusion_Net", "baseline", "question_only"],
                            "grounding": ["AVQA_AVatt_Grounding", "grounding"]}[kind],
                   help=LADDER_HELP if kind == "avst" else
                   "AVQA_Fusion_Net is this script's model; question_only is the question-only reference")
    r.add_argument("--model_save_dir", default=d["save"], help="folder of checkpoints and logs")
    r.add_argument("--checkpoint", default=d["ckpt"], help="checkpoint name (<model_save_dir>/<checkpoint>.pt)")
    r.add_argument("--resume", action="store_true",
                   help="continue from <checkpoint>_last.pt if it exists; refused when the model, vocabularies, data "
                        "files or recipe flags differ from those it was started with")
    r.add_argument("--overwrite", action="store_true",
                   help="train mode: replace the checkpoints already at <model_save_dir>/<checkpoint>*.pt (without "
                        "it, a run never writes over a checkpoint it did not make: it stops and says what is there)")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when present)")
    r.add_argument("--gpu", default=None, help="original flag: sets CUDA_VISIBLE_DEVICES; prefer --device")
    r.add_argument("--amp", action="store_true",
                   help="mixed precision: bfloat16 (or float16 with loss scaling) on CUDA, bfloat16 on CPU")
    r.add_argument("--num_workers", type=at_least(0), default=2,
                   help="batches prepared ahead in a background thread (0: prepare each batch when needed)")
    r.add_argument("--eval_batch_size", type=at_least(1), default=64, help="batch size of validation and test")
    r.add_argument("--log-interval", dest="log_interval", type=at_least(1), default=50, metavar="N",
                   help="batches between log lines")
    r.add_argument("--tensorboard_dir", default="runs", help="TensorBoard folder ('' to turn off)")
    r.add_argument("--results", default=None,
                   help="test mode: where the JSON report goes (default: <model_save_dir>/<checkpoint>_<split>.json)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def resolve_model(kind: str, args: argparse.Namespace) -> str:
    name = MODEL_NAMES[args.model]
    return name or kind


# ----------------------------------------------------------------------------- runtime


class Runtime:
    """Device, distributed setup and mixed precision of one process."""

    def __init__(self, args: argparse.Namespace):
        if args.gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        requested = pick_device(args.device)
        if requested == "cuda":  # an explicit index: set_device refuses a bare "cuda" in some torch versions
            requested = f"cuda:{local if self.world > 1 else torch.cuda.current_device()}"
        self.device = torch.device(requested)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.amp_dtype = None
        if args.amp:
            if self.device.type == "cuda":
                self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                self.amp_dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def per_process(self, global_batch: int) -> int:
        """Each process's share of --batch-size, which stays the global batch (as on one process)."""
        if global_batch % self.world:
            raise SystemExit(f"--batch-size {global_batch} does not split evenly over {self.world} processes; "
                             f"pass a multiple of {self.world}")
        return global_batch // self.world

    def share(self, value):
        """Rank 0's value, on every process."""
        if self.world > 1:
            box = [value]
            dist.broadcast_object_list(box, src=0)
            value = box[0]
        return value

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# ----------------------------------------------------------------------------- steps


def qa_loss(model: nn.Module, batch: dict, match_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """CE(answer) + match_weight * CE(match) over positive (label 1) and negative (label 0) frames."""
    logits, match_pos, match_neg = model(batch.get("audio"), batch.get("visual_posi"), batch.get("visual_nega"),
                                         batch["question"])
    answer_loss = F.cross_entropy(logits.float(), batch["label"])
    if match_pos is None or match_neg is None:
        return answer_loss, answer_loss, None
    match_logits = torch.cat((match_pos, match_neg)).float()
    match_labels = torch.cat((torch.ones(len(match_pos), dtype=torch.long, device=match_logits.device),
                              torch.zeros(len(match_neg), dtype=torch.long, device=match_logits.device)))
    match_loss = F.cross_entropy(match_logits, match_labels)
    return answer_loss + match_weight * match_loss, answer_loss, match_loss


def grounding_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, None]:
    logits = model(batch["audio"], batch["visual"])
    loss = F.cross_entropy(logits.float(), batch["label"].flatten())
    return loss, loss, None


def train_step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, rt: Runtime, kind: str,
               match_weight: float = 0.5):
    """One optimiser step on one (local) batch; returns the losses as floats."""
    optimizer.zero_grad(set_to_none=True)
    with rt.autocast():
        if kind == "grounding":
            loss, answer_loss, match_loss = grounding_loss(model, batch)
        else:
            loss, answer_loss, match_loss = qa_loss(model, batch, match_weight)
    if rt.scaler is not None:
        rt.scaler.scale(loss).backward()
        rt.scaler.step(optimizer)
        rt.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    # one device-to-host copy per step, not three
    values = torch.stack([t.detach().float() for t in (loss, answer_loss, match_loss) if t is not None]).tolist()
    return values[0], values[1], (values[2] if match_loss is not None else None)


@torch.no_grad()
def predict_qa(model: nn.Module, loader: BatchLoader, rt: Runtime, quiet: bool = True, desc: str = "eval") -> dict:
    model.eval()
    preds, labels, types, index, finite = [], [], [], [], []
    for batch in progress(loader, desc=desc, unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            logits = model(batch.get("audio"), batch.get("visual_posi"), None, batch["question"])[0]
        preds.append(logits.argmax(1).cpu())
        finite.append(torch.isfinite(logits).all(1).cpu())
        labels.append(batch["label"].cpu())
        types.append(batch["type"].cpu())
        index.append(batch["index"].cpu())
    return {k: torch.cat(v) for k, v in (("pred", preds), ("label", labels), ("type", types), ("index", index),
                                         ("finite", finite))}


@torch.no_grad()
def match_accuracy(model: nn.Module, loader: BatchLoader, rt: Runtime, quiet: bool = True) -> float:
    model.eval()
    correct = total = 0
    for batch in progress(loader, desc="eval", unit="batch", disable=quiet, leave=False):
        batch = to_device(batch, rt.device)
        with rt.autocast():
            logits = model(batch["audio"], batch["visual"])
        correct += (logits.argmax(1) == batch["label"].flatten()).sum().item()
        total += logits.shape[0]
    return 100.0 * correct / max(total, 1)


# ----------------------------------------------------------------------------- reports

def accuracy_table(pred: torch.Tensor, label: torch.Tensor, types: torch.Tensor) -> dict[str, dict]:
    """The standard table (avqa.evaluate.score_table) of predicted against true answer ids."""
    return score_table((pred == label).numpy(), types.numpy())


# what a run was started with: a resumed run must match it, and it tells whose checkpoint a file is
RECIPE_FLAGS = ("batch_size", "lr", "lr_step", "lr_gamma", "match_weight", "seed", "segments")


def run_record(args: argparse.Namespace, model_kind: str, vocab: Vocab | None, feature_dirs: Sequence[str],
               videos: Sequence[str] = ()) -> dict:
    """Model kind, vocabularies, data files and feature settings by sha256, the recipe flags, and the
    fingerprint of the feature files of ``videos`` (a file changed in place is not resumed over)."""
    vocab_hash = None
    if vocab is not None:
        vocab_hash = hashlib.sha256("\n".join([*vocab.questions, "", *vocab.answers]).encode()).hexdigest()
    data = {flag: sha256(getattr(args, flag)) for flag in ("label_train", "label_val")}
    feats = {}
    for d in feature_dirs:
        meta = metadata_path(d)
        feats[d] = sha256(meta) if meta.is_file() else None
    read = fingerprint(Path(d) / f"{v}.npy" for d in feature_dirs for v in sorted(set(videos)))
    return {"model": model_kind, "vocab_sha256": vocab_hash, "data_sha256": data,
            "features_metadata_sha256": list(feats.values()), "features_read": read,
            "recipe": {k: getattr(args, k) for k in RECIPE_FLAGS if hasattr(args, k)}}


def record_differences(then: dict, now: dict) -> list[str]:
    """What differs between the record of a checkpoint and this run, in words (empty: the same run)."""
    out = []
    if then.get("model") != now["model"]:
        return [f"the model ('{then.get('model')}' then, '{now['model']}' now)"]
    if then.get("vocab_sha256") != now["vocab_sha256"]:
        out.append("the vocabularies built from --label_train")
    for flag, digest in now["data_sha256"].items():
        old = then.get("data_sha256", {}).get(flag)
        if old != digest:
            out.append(f"the contents of --{flag} (sha256 {str(old)[:12]} then, {digest[:12]} now)")
    if then.get("features_metadata_sha256") != now["features_metadata_sha256"]:
        out.append("the feature folders' metadata (other backbone weights or settings)")
    if "features_read" in then:  # records of older versions lack it
        changed = changes(then["features_read"], now.get("features_read", {}))
        if changed:
            out.append(f"the feature files ({'; '.join(changed)})")
    for k, v in now["recipe"].items():
        if then.get("recipe", {}).get(k) != v:
            out.append(f"--{k.replace('_', '-') if k == 'batch_size' else k} ({then.get('recipe', {}).get(k)} then, {v} now)")
    return out


def _legacy_record(state: dict, now: dict) -> dict:
    """The record of a checkpoint written before runs were recorded: what it holds, the rest taken as now."""
    then = dict(now, model=state.get("model"), recipe={k: state.get("args", {}).get(k, v) for k, v in now["recipe"].items()})
    if "question_vocab" in state:
        then["vocab_sha256"] = hashlib.sha256("\n".join([*state["question_vocab"], "",
                                                         *state["answer_vocab"]]).encode()).hexdigest()
    return then


def _whose(path: Path, state: dict | None) -> str:
    if checkpoint.record_path(path).is_file():
        return f"{path} is the bundled checkpoint"
    if not checkpoint.is_ours(state):
        return f"{path} is a checkpoint this run did not make"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return (f"{path} holds the '{state.get('model')}' model of another run (epoch {state.get('epoch')}, val accuracy "
            f"{state.get('val_accuracy', float('nan')):.2f}, written {when})")


def claim_outputs(args: argparse.Namespace, best_path: Path, last_path: Path, record: dict,
                  rt: Runtime) -> dict | None:
    """Decide, before any file is written, what this run may write; returns the state to resume from.

    --resume continues <checkpoint>_last.pt only if it was started with the same model, vocabularies,
    data files and recipe; otherwise, without --overwrite, no checkpoint already there is replaced.
    """
    if rt.main:
        check_writable(best_path.parent, "--model_save_dir")
        clean_stale_temps(best_path.parent)  # a checkpoint write killed midway
    start_over = (f"start over with --overwrite (it replaces {best_path.name} and {last_path.name}), or train under "
                  f"another --checkpoint name")
    if args.resume and last_path.is_file() and not args.overwrite:
        try:
            state = checkpoint.load_dict(last_path)
            if not checkpoint.is_ours(state) or "optimizer" not in state:
                raise ValueError(f"{last_path} is not an epoch checkpoint of this project")
        except ValueError as e:
            kept = f"; {best_path} is kept as it is" if best_path.is_file() else ""
            raise SystemExit(f"cannot resume: {e}{kept}. To go on, {start_over}.") from None
        diffs = record_differences(state.get("run") or _legacy_record(state, record), record)
        if diffs:
            raise SystemExit(f"cannot resume {last_path}: it was started with other settings than this run: "
                             f"{'; '.join(diffs)}. Resume with the settings it was started with, or {start_over}.")
        return state
    existing = [p for p in (best_path, last_path) if p.is_file()]
    if not existing:
        return None
    if args.overwrite:
        if rt.main:
            last_path.unlink(missing_ok=True)  # a kill before the first epoch ends must not resume the old run
            print(f"--overwrite: replacing {', '.join(str(p) for p in existing)}", file=sys.stderr)
        return None
    try:
        state = checkpoint.load_dict(existing[0])
    except ValueError:
        state = None
    if args.resume and state is not None and state.get("run") and not record_differences(state["run"], record):
        return None  # this run's own best checkpoint, killed before its first _last.pt was written
    hint = "continue it with --resume, " if last_path.is_file() else ""
    raise SystemExit(f"{_whose(existing[0], state)}; this run would write over it. To keep it, {hint}train under "
                     f"another name with --checkpoint NAME (and test with the same --checkpoint); to replace it, "
                     f"pass --overwrite.")


# ----------------------------------------------------------------------------- logs


class RunLog:
    """A plain-text log beside the checkpoint, plus TensorBoard scalars (rank 0 only)."""

    def __init__(self, path: Path | None, tensorboard_dir: str, name: str, enabled: bool, fresh: bool = False):
        """``fresh``: a run that starts from epoch 1 begins a new log (a resumed one appends)."""
        self.enabled = enabled
        self.path = path
        self.writer = None
        if enabled and fresh and path is not None:
            path.unlink(missing_ok=True)
        if enabled and tensorboard_dir:
            check_writable(tensorboard_dir, "--tensorboard_dir")
            # TensorBoard imports TensorFlow when it is installed, and the two runtimes in one process
            # can crash; this marker module makes it use its own TF-free writer
            sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
            try:
                from torch.utils.tensorboard import SummaryWriter
                stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
                self.writer = SummaryWriter(os.path.join(tensorboard_dir, name, stamp))
            except ImportError:
                print("tensorboard is not installed: no TensorBoard scalars", file=sys.stderr)

    def line(self, text: str, echo: bool = True) -> None:
        if not self.enabled:
            return
        if echo:
            tqdm.write(text)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text + "\n")

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def describe_inputs(args: argparse.Namespace, files: Sequence[str], feature_dirs: Sequence[str]) -> list[str]:
    lines = ["flags: " + json.dumps({k: v for k, v in sorted(vars(args).items())}, default=str)]
    for f in files:
        p = Path(f)
        lines.append(f"data: {p} sha256 {sha256(p)[:16]}" if p.is_file() else f"data: {p} (absent)")
    for d in feature_dirs:
        meta = metadata_path(d)
        lines.append(f"features: {d} metadata " + (meta.read_text().replace("\n", " ") if meta.is_file()
                                                   else "(no metadata file)"))
    return lines


# ----------------------------------------------------------------------------- data


def load_split(path: str, vocab: Vocab | None = None, samples: list[dict] | None = None):
    """The validated rows of an annotation file; with ``vocab``, encoded (``samples``: rows already read)."""
    if samples is None:
        try:
            samples = load_annotations(path)
        except (AnnotationError, FileNotFoundError) as e:
            raise SystemExit(str(e)) from None
    if not samples:
        raise SystemExit(f"{path} holds no questions (an empty list): give a file with at least one question")
    if vocab is None:
        return samples
    try:
        return encode_split(samples, vocab, path)
    except AnnotationError as e:
        raise SystemExit(str(e)) from None


def feature_stores(args: argparse.Namespace, video_ids: Sequence[str], need_visual: bool, need_audio: bool = True,
                   reads=None):
    """Open and check every feature file the run will read, before any training.

    ``reads(T)``: the seconds of each video the run reads; a folder extracted with --used_seconds
    that lacks one of them stops the run here, not thousands of batches in.
    """
    audio = FeatureStore(args.audio_dir, AUDIO_SHAPE) if need_audio else None
    visual = FeatureStore(args.video_res14x14_dir, VISUAL_SHAPE) if need_visual else None
    lengths = []
    try:
        if audio is not None:
            lengths.append(audio.check(video_ids, finite=not args.no_feature_check, name="audio features"))
        if visual is not None:
            lengths.append(visual.check(video_ids, finite=not args.no_feature_check, name="visual features"))
    except FeatureError as e:
        raise SystemExit(str(e)) from None
    if len(set(lengths)) > 1:
        raise SystemExit(f"audio features have T={lengths[0]} seconds but visual features T={lengths[1]}: "
                         f"extract both with the same --seconds")
    total = lengths[0] if lengths else 0
    for store in (audio, visual):
        gap = store.missing_seconds(reads(total)) if store is not None and reads is not None else []
        if gap:
            raise SystemExit(f"{store.folder} holds only seconds {store.computed.tolist()} of each video (extracted "
                             f"with --used_seconds), but this run reads second(s) {gap[:8]}: extract it again with "
                             f"--used_seconds --segments {args.segments}, or without --used_seconds")
    return audio, visual, total


def make_loader(dataset, batch_size: int, shuffle: bool, rt: Runtime, prefetch: int, seed: int) -> BatchLoader:
    if shuffle and rt.world > 1:
        sampler = DistributedSampler(dataset, num_replicas=rt.world, rank=rt.rank, shuffle=True, seed=seed)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator())
    else:
        sampler = SequentialSampler(dataset)
    return BatchLoader(dataset, batch_size, sampler, prefetch, pin=rt.device.type == "cuda")


def set_loader_epoch(loader: BatchLoader, epoch: int, seed: int) -> None:
    loader.dataset.set_epoch(epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    elif isinstance(loader.sampler, RandomSampler):
        loader.sampler.generator.manual_seed(seed * 100003 + epoch)


# ----------------------------------------------------------------------------- the loop


def checkpoint_paths(args: argparse.Namespace, kind: str) -> tuple[Path, Path, Path]:
    """The best and the last checkpoint of a training run, and its log."""
    files = checkpoint.Files(Path(args.model_save_dir), args.checkpoint, kind)
    return files.best, files.last, files.log


def fit(args: argparse.Namespace, kind: str, model: nn.Module, train_loader: BatchLoader, evaluate, rt: Runtime,
        log: RunLog, extra_meta: dict, resume_state: dict | None) -> float:
    """Train for args.epochs; keep the best-on-val and the last checkpoint; returns the best score.

    ``resume_state``: the checked _last.pt to continue from (see claim_outputs); ``extra_meta`` goes
    into every checkpoint, with the run's record under "run".
    """
    best_path, last_path, _ = checkpoint_paths(args, kind)
    net = model
    if rt.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    start, best, history = 1, -math.inf, []
    if resume_state is not None:
        state = resume_state
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        start, best, history = state["epoch"] + 1, state["best"], state.get("history", [])
        log.line(f"resumed from {last_path} after epoch {state['epoch']} (best so far {best:.2f}; its model, "
                 f"vocabularies, data files and recipe match this run's)")
        if state["epoch"] >= args.epochs:
            log.line(f"all {args.epochs} epochs were already done: nothing to train")
    elif args.resume:
        log.line(f"--resume: no {last_path} yet, starting from epoch 1")
    if start == 1:  # the same model untrained: the reference every trained figure stands beside
        score = rt.share(evaluate(model) if rt.main else None)
        history.append({"epoch": 0, "val_accuracy": score})
        log.line(f"epoch 0 (before training): val accuracy {score:.2f}")
    match_weight = getattr(args, "match_weight", 0.5)
    step = (start - 1) * len(train_loader)
    for epoch in range(start, args.epochs + 1):
        set_loader_epoch(train_loader, epoch, args.seed)
        net.train()
        sums = {"loss": 0.0, "answer": 0.0, "match": 0.0}
        seen, t0 = 0, time.time()
        bar = progress(train_loader, desc=f"epoch {epoch}/{args.epochs}", unit="batch", disable=args.quiet or not rt.main,
                   leave=False, file=sys.stderr)
        for batch_idx, batch in enumerate(bar):
            batch = to_device(batch, rt.device)
            n = len(batch["label"])
            loss, answer_loss, match_loss = train_step(net, batch, optimizer, rt, kind, match_weight)
            seen += n
            sums["loss"] += loss * n
            sums["answer"] += answer_loss * n
            if match_loss is not None:
                sums["match"] += match_loss * n
            step += 1
            rate = seen * rt.world / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{rate:.0f}")
            log.scalar("train/answer_loss" if kind != "grounding" else "train/match_loss", answer_loss, step)
            if match_loss is not None:
                log.scalar("train/match_loss", match_loss, step)
            if batch_idx % args.log_interval == 0:
                log.line(f"Train Epoch: {epoch} [{batch_idx * n * rt.world}/{len(train_loader.dataset)} "
                         f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss:.6f}", echo=False)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        train_seconds = time.time() - t0
        score = rt.share(evaluate(model) if rt.main else None)
        log.scalar("train/lr", lr, epoch)
        log.scalar("val/accuracy", score, epoch)
        improved = score >= best
        best = max(best, score)
        history.append({"epoch": epoch, "loss": round(sums["loss"] / max(seen, 1), 4),
                        "answer_loss": round(sums["answer"] / max(seen, 1), 4),
                        "match_loss": round(sums["match"] / max(seen, 1), 4) if kind == "avst" else None,
                        "val_accuracy": score})
        log.line(f"epoch {epoch}: loss {sums['loss'] / max(seen, 1):.4f} (answer {sums['answer'] / max(seen, 1):.4f}"
                 + (f", match {sums['match'] / max(seen, 1):.4f}" if kind == "avst" else "")
                 + f"), lr {lr:.2e}, {seen * rt.world / train_seconds:.1f} samples/s, val accuracy {score:.2f}"
                 + (" (best, saved)" if improved else ""))
        if rt.main:
            payload = {"format": CHECKPOINT_FORMAT, **extra_meta, "state_dict": checkpoint.plain_state(model), "epoch": epoch,
                       "val_accuracy": score, "history": history, "args": {k: v for k, v in vars(args).items()}}
            if improved:
                checkpoint.save(best_path, payload)
            checkpoint.save(last_path, {**payload, "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict(), "best": best,
                                        "rng": {"torch": torch.get_rng_state(),
                                                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}})
        rt.barrier()
    return best


# ----------------------------------------------------------------------------- entry points


@user_errors
def run_qa(kind: str, argv: Sequence[str] | None = None, description: str = "") -> int:
    """main_avst.py and main_qa_grd_baseline.py."""
    args = build_parser(kind, description).parse_args(argv)
    model_kind = resolve_model(kind, args)
    rt = Runtime(args)
    torch.manual_seed(args.seed)
    train_samples = load_split(args.label_train)
    vocab = Vocab.from_samples(train_samples)
    cls = QA_MODELS[model_kind]
    save_dir = Path(args.model_save_dir)
    feature_dirs = [d for d, used in ((args.audio_dir, cls.uses_audio), (args.video_res14x14_dir, cls.uses_visual)) if used]
    log = RunLog(None, "", "", False)
    held = ExitStack()
    try:
        if args.mode == "train":
            splits = {"train": load_split(args.label_train, vocab, train_samples),
                      "val": load_split(args.label_val, vocab)}
            videos = [s["video_id"] for sp in splits.values() for s in sp.samples]
            record = run_record(args, model_kind, vocab, feature_dirs, videos)
            best_path, last_path, log_path = checkpoint_paths(args, kind)
            if rt.main:  # one training at a time into one checkpoint (torchrun's ranks are one run)
                held.enter_context(run_lock(save_dir, args.checkpoint, "--model_save_dir"))
            state = claim_outputs(args, best_path, last_path, record, rt)
            grounding = None
            if model_kind == "avst" and state is None:  # a resumed run has its weights in _last.pt
                grounding = load_pretrained_grounding(args.pretrained_grounding)
            audio, visual, total = feature_stores(args, videos, cls.uses_visual, need_audio=cls.uses_audio,
                                                  reads=lambda T: segment_seconds(T, args.segments))
            log = RunLog(log_path, args.tensorboard_dir, f"net_{model_kind}", rt.main, fresh=state is None)
            model = cls(len(vocab.questions), len(vocab.answers)).to(rt.device)
            meta = {"model": model_kind, "question_vocab": list(vocab.questions), "answer_vocab": list(vocab.answers),
                    "run": record}
            for line in describe_inputs(args, [args.label_train, args.label_val], feature_dirs):
                log.line(line, echo=False)
            log.line(f"{model_kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
                     f"{len(splits['train'].samples)} train / {len(splits['val'].samples)} val questions, "
                     f"T={total} seconds per video, device {rt.device}, {rt.world} process(es)")
            if grounding is not None:
                copied = transfer_grounding(model, grounding.state_dict())
                log.line(f"started from the grounding model {args.pretrained_grounding} ({len(copied)} tensors)")
            train_set = AVQADataset(splits["train"], audio, visual, total, args.segments,
                                    negatives=cls.uses_negatives, seed=args.seed)
            val_set = AVQADataset(splits["val"], audio, visual, total, args.segments)
            per_rank = rt.per_process(args.batch_size)
            train_loader = make_loader(train_set, per_rank, True, rt, args.num_workers, args.seed)
            val_loader = make_loader(val_set, args.eval_batch_size, False, rt, args.num_workers, args.seed)

            def evaluate(m):
                out = predict_qa(m, val_loader, rt, quiet=args.quiet, desc="val")
                return 100.0 * (out["pred"] == out["label"]).float().mean().item()

            best = fit(args, model_kind, model, train_loader, evaluate, rt, log, meta, state)
            log.line(f"best val accuracy {best:.2f}; checkpoint {best_path}")
            return 0
        # test
        split = load_split(args.label_test, vocab)
        model = cls(len(vocab.questions), len(vocab.answers))
        ckpt = checkpoint.trained_path(save_dir, args.checkpoint, kind)
        try:
            meta = load_trained_state(ckpt, model_kind, model, vocab)
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(str(e)) from None
        results = Path(args.results) if args.results else save_dir / f"{args.checkpoint}_{Path(args.label_test).stem}.json"
        check_writable(results.parent, "--results" if args.results else "--model_save_dir")
        audio, visual, total = feature_stores(args, [s["video_id"] for s in split.samples], cls.uses_visual,
                                              need_audio=cls.uses_audio, reads=lambda T: segment_seconds(T, args.segments))
        model.to(rt.device)
        if not rt.main:
            return 0
        print(f"protocol: {args.label_test} (sha256 {sha256(args.label_test)[:16]}, {len(split.samples)} questions), "
              f"vocabularies from {args.label_train} (sha256 {sha256(args.label_train)[:16]}), checkpoint {ckpt}")
        loader = make_loader(AVQADataset(split, audio, visual, total, args.segments), args.eval_batch_size, False,
                             rt, args.num_workers, args.seed)
        out = predict_qa(model, loader, rt, quiet=args.quiet, desc="test")
        table = accuracy_table(out["pred"], out["label"], out["type"])
        print(format_table(table, f"{model_kind} on {args.label_test} ({len(split.samples)} questions):"))
        nonfinite = int((~out["finite"]).sum())
        if nonfinite:
            print(f"WARNING: {nonfinite} of {len(split.samples)} predictions come from non-finite scores (NaN or "
                  f"inf), so their answers mean nothing: the features hold NaN or inf"
                  f"{' (--no_feature_check skipped the scan that finds them)' if args.no_feature_check else ''}. "
                  f"They are marked in the report.", file=sys.stderr)
        write_results(results, args, model_kind, ckpt, split, vocab, out, table)
        print(f"results: {results}")
        recorded = checkpoint.record_path(ckpt)
        if recorded.is_file():
            rec = json.loads(recorded.read_text())["table"]["Overall"]["accuracy"]
            print(f"recorded overall accuracy of this checkpoint: {rec:.2f} (now {table['Overall']['accuracy']:.2f})")
        return 0
    finally:
        log.close()
        rt.close()
        held.close()


def load_pretrained_grounding(src: str | None) -> AudioVisualGrounding | None:
    """--pretrained_grounding, checked before any training; None for 'none'."""
    if not src or src.lower() == "none":
        return None
    if not Path(src).is_file():
        raise SystemExit(f"--pretrained_grounding {src} not found{relative_hint(src)}: run grounding_gen/main_grd_gen.py "
                         f"first, or pass --pretrained_grounding none to start from scratch")
    grounding = AudioVisualGrounding()
    try:
        load_trained_state(src, "grounding", grounding, None)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"--pretrained_grounding: {e}. Give the _best.pt of grounding_gen/main_grd_gen.py, or "
                         f"none to start from scratch") from None
    return grounding


def write_results(path: Path, args, model_kind: str, ckpt: Path, split, vocab: Vocab, out: dict, table: dict) -> None:
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
                                        "annotations": args.label_test, "annotations_sha256": sha256(args.label_test),
                                        "questions": len(preds),
                                        "nonfinite_predictions": sum(not p["scores_finite"] for p in preds),
                                        "table": table, "predictions": preds}, indent=1))


@user_errors
def run_grounding(argv: Sequence[str] | None = None, description: str = "") -> int:
    """grounding_gen/main_grd_gen.py: pre-train sound-guided spatial grounding on a match task."""
    args = build_parser("grounding", description).parse_args(argv)
    rt = Runtime(args)
    torch.manual_seed(args.seed)
    save_dir = Path(args.model_save_dir)
    log = RunLog(None, "", "", False)
    held = ExitStack()
    try:
        def videos_of(path):
            return real_videos(load_split(path))

        if args.mode == "train":
            train_videos, val_videos = videos_of(args.label_train), videos_of(args.label_val)
            for path, vids in ((args.label_train, train_videos), (args.label_val, val_videos)):
                if len(vids) < 2:
                    raise SystemExit(f"{path}: grounding needs at least two real (8-digit) videos, found {len(vids)}")
            record = run_record(args, "grounding", None, [args.audio_dir, args.video_res14x14_dir],
                                train_videos + val_videos)
            best_path, last_path, log_path = checkpoint_paths(args, "grounding")
            if rt.main:
                held.enter_context(run_lock(save_dir, args.checkpoint, "--model_save_dir"))
            state = claim_outputs(args, best_path, last_path, record, rt)
            audio, visual, total = feature_stores(args, train_videos + val_videos, True,
                                                  reads=lambda T: range(min(GROUNDING_SECONDS, T)))
            log = RunLog(log_path, args.tensorboard_dir, "grounding_gen", rt.main, fresh=state is None)
            seconds = min(GROUNDING_SECONDS, total)
            for line in describe_inputs(args, [args.label_train, args.label_val],
                                        [args.audio_dir, args.video_res14x14_dir]):
                log.line(line, echo=False)
            model = AudioVisualGrounding().to(rt.device)
            train_set = GroundingDataset(train_videos, audio, visual, seconds, seed=args.seed)
            val_set = GroundingDataset(val_videos, audio, visual, seconds, seed=args.seed + 1)
            log.line(f"grounding: {len(train_videos)} train / {len(val_videos)} val videos, first {seconds} s each "
                     f"({len(train_set)} / {len(val_set)} samples), device {rt.device}")
            per_rank = rt.per_process(args.batch_size)
            train_loader = make_loader(train_set, per_rank, True, rt, args.num_workers, args.seed)
            val_loader = make_loader(val_set, args.eval_batch_size, False, rt, args.num_workers, args.seed)
            best = fit(args, "grounding", model, train_loader, lambda m: match_accuracy(m, val_loader, rt, args.quiet),
                       rt, log, {"model": "grounding", "run": record}, state)
            log.line(f"best val match accuracy {best:.2f}; checkpoint {best_path}")
            return 0
        path = args.label_val if args.mode == "val" else args.label_test
        videos = videos_of(path)
        audio, visual, total = feature_stores(args, videos, True, reads=lambda T: range(min(GROUNDING_SECONDS, T)))
        ckpt = checkpoint.trained_path(save_dir, args.checkpoint, "grounding")
        model = AudioVisualGrounding()
        try:
            meta = load_trained_state(ckpt, "grounding", model, None)
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(str(e)) from None
        results = Path(args.results) if args.results else save_dir / f"{args.checkpoint}_{Path(path).stem}.json"
        check_writable(results.parent, "--results" if args.results else "--model_save_dir")
        untrained = checkpoint.untrained(meta, AudioVisualGrounding)  # the reference every trained figure stands beside
        loader = make_loader(GroundingDataset(videos, audio, visual, min(GROUNDING_SECONDS, total), seed=args.seed + 2),
                             args.eval_batch_size, False, rt, args.num_workers, args.seed)
        scores = {name: match_accuracy(m.to(rt.device), loader, rt, args.quiet)
                  for name, m in (("trained", model), ("untrained", untrained))}
        print(f"match accuracy on {len(videos)} {args.mode} videos ({len(loader.dataset)} pairs): "
              f"{scores['trained']:.2f} % (the same model untrained: {scores['untrained']:.2f} %; chance 50 %)")
        atomic_write_text(results, json.dumps({"model": "grounding", "checkpoint": str(ckpt),
                                               "checkpoint_sha256": sha256(ckpt), "annotations": path,
                                               "videos": len(videos), "pairs": len(loader.dataset),
                                               "match_accuracy": round(scores["trained"], 2),
                                               "untrained_match_accuracy": round(scores["untrained"], 2)}, indent=1))
        return 0
    finally:
        log.close()
        rt.close()
        held.close()
