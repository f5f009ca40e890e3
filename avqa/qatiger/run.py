"""QA-TIGER on the engine: its settings, its command line (net_qatiger/main_train.py, net_qatiger/main_test.py)
and the family avqa.tasks.qa trains and tests.

The loop, resuming and its checks, the device, AMP, DDP, checkpoints, the test table, the JSON report
and the per-question predictions are the engine's; this module says what differs: the model and its
switches, the feature layout and answer order (avqa.qatiger.data), Adam's betas, and the release's
``best.pt`` (avqa.qatiger.weights). Defaults are the release's config (configs/qa-tiger/vitl14.py);
--config reads another such file's values (avqa.qatiger.release_config).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint
from ..annotations import Vocab
from ..recipes import Recipe
from ..engine.denormals import flush_denormals_on, flushed_if
from ..tasks.cli import HelpFormatter, annotation_flags, engine_flags, flush_flag, optimiser_flags
from ..tasks.config import EngineConfig
from ..tasks.inputs import load_split
from ..tasks.qa import Family, run
from ..utils import EXIT_CODES, at_least, user_errors
from . import data, weights
from .model import QATiger
from .release_config import flag_defaults, read_config

# the ablation rungs: label, what changes, and the model arguments that make it
ABLATIONS = {"no_question_fusion": ("w/o QA fusion", "the fusion layer without its attention to the question's words",
                                    {"question_fusion": False}),
             "no_patch_selector": ("w/o patch selector", "each second's tokens averaged instead of selected",
                                   {"patch_selector": False}),
             "mean_pool": ("mean pooling", "the means over time instead of the Gaussian experts", {"pool": "mean"}),
             "few_experts": ("3 experts", "3 Gaussian experts, all kept, instead of 7",
                             {"num_experts": 3, "topK": 3}),
             "qatiger": ("QA-TIGER", "every module on (the paper's model)", {})}


@dataclass(frozen=True)
class QATigerRecipe(Recipe):
    """A QA-TIGER training recipe: the engine's fields, the model width and the experts' pairing."""

    d_model: int | None = None
    release_pairing: bool | None = None

    def flags(self) -> list[str]:
        """The recipe as net_qatiger/main_train.py's flags; a switch as --name or --no-name."""
        switches = {name: value for name, value in self.settings().items() if isinstance(value, bool)}
        kept = Recipe.flags(dataclasses.replace(self, **{name: None for name in switches}))
        return kept + [f"--{name}" if on else f"--no-{name}" for name, on in switches.items()]


@dataclass
class QATigerConfig(EngineConfig):
    """One QA-TIGER run: the engine's section (avqa.tasks.config.EngineConfig, with the release config's values
    as defaults) and QA-TIGER's own: its feature folders, text encoder, answer order and switches."""

    audio_feat: str = "./data/feats/vggish"
    video_feat: str = "./data/feats/frame_ViT-L14@336px"
    patch_feat: str = "./data/feats/visual_tome14"
    clip_weights: str | None = str(Path("~/.cache/clip/ViT-L-14-336px.pt").expanduser())
    answer2idx: str | None = None
    config: str | None = None
    d_model: int = 512
    video_dim: int = 768
    patch_dim: int = 1024
    topK: int = 7
    num_experts: int = 7
    question_fusion: bool = True
    patch_selector: bool = True
    pool: str = "experts"
    release_pairing: bool = True
    flush_denormals: bool | str = "auto"   # auto, on or off; a run resolves it (flush_denormals_on) and records the bool
    betas: tuple[float, float] = (0.95, 0.999)
    epochs: int = 15
    batch_size: int = 32
    eval_batch_size: int = 32
    seed: int = 713
    model: str = "qatiger"
    model_save_dir: str = "net_qatiger/models/"
    checkpoint: str = "qa-tiger"
    script: str = "qatiger"

    recipe_flags: ClassVar[tuple[str, ...]] = ("batch_size", "lr", "lr_step", "lr_gamma", "seed", "betas", "d_model",
                                               "topK", "num_experts", "question_fusion", "patch_selector", "pool",
                                               "release_pairing", "video_dim", "patch_dim", "answer2idx")
    model_flags: ClassVar[tuple[str, ...]] = ("d_model", "topK", "num_experts", "question_fusion", "patch_selector",
                                              "pool", "release_pairing", "video_dim", "patch_dim")

    def flags(self) -> dict:
        """The run's flags as the QA-TIGER scripts have them: the checkpoint's "args" and the log's flags line."""
        return {name: getattr(self, name) for name in _flag_names()}


def _data_flags(p: argparse.ArgumentParser, d: QATigerConfig) -> None:
    g = p.add_argument_group("data: per-video features <video_id>.npy (float16 or float32), one row per second")
    g.add_argument("--config", default=None, metavar="PATH",
                   help="the release's config file (configs/qa-tiger/vitl14.py): its values become the defaults "
                        "(flags given here win); read as data, never run")
    g.add_argument("--audio_feat", default=d.audio_feat, help="VGGish features, <video_id>.npy [T,128]")
    g.add_argument("--video_feat", default=d.video_feat,
                   help="CLIP ViT-L/14@336px frame features, <video_id>.npy [T,--video_dim]")
    g.add_argument("--patch_feat", default=d.patch_feat,
                   help="ToMe tokens, one token frame per second, <video_id>.npy [T,14,--patch_dim]")
    g.add_argument("--clip_weights", default=d.clip_weights, metavar="PATH",
                   help="the frozen text encoder: OpenAI's ViT-L-14-336px.pt, or feat_script/weights/"
                        "clip_synthetic.pt for the synthetic world; train mode starts from it, test mode reads it "
                        "only where the checkpoint holds no quest_encoder.* tensors")
    g.add_argument("--answer2idx", default=d.answer2idx, metavar="PATH",
                   help="the release's answer2idx.json: the model's classes in its order (needed to test the "
                        "release's best.pt; its v1 and v2.0 files differ); without it, the answers in order of first "
                        "appearance in --label_train")
    annotation_flags(g, d, "train annotations (the question words; the answers unless --answer2idx)")
    g.add_argument("--no_feature_check", action="store_true",
                   help="skip the NaN/inf scan of feature files (presence, shapes and lengths are always checked)")


def _model_flags(p: argparse.ArgumentParser, d: QATigerConfig) -> None:
    m = p.add_argument_group("model (all on is the paper's QA-TIGER; each switch has a --no- form)")
    m.add_argument("--d_model", type=at_least(8), default=d.d_model, help="model width (8 heads)")
    m.add_argument("--video_dim", type=at_least(1), default=d.video_dim, help="width of --video_feat's rows")
    m.add_argument("--patch_dim", type=at_least(1), default=d.patch_dim, help="width of --patch_feat's tokens")
    m.add_argument("--num_experts", type=at_least(1), default=d.num_experts, help="Gaussian experts E")
    m.add_argument("--topK", type=at_least(1), default=d.topK, help="experts kept per question (at most E)")
    m.add_argument("--question_fusion", action=argparse.BooleanOptionalAction, default=d.question_fusion,
                   help="audio and video attend to the question's words in the fusion layer")
    m.add_argument("--patch_selector", action=argparse.BooleanOptionalAction, default=d.patch_selector,
                   help="each second's tokens are queried by its audio and video (off: their mean)")
    m.add_argument("--pool", choices=("experts", "mean"), default=d.pool,
                   help="experts: the question-placed Gaussian experts pool over time; mean: the means over time")
    m.add_argument("--release_pairing", action=argparse.BooleanOptionalAction, default=d.release_pairing,
                   help="pair each (question, second) with the experts' routing the release's gather gives it "
                        "(another question's of the batch; docs/model.md, ## QA-TIGER), so the release's best.pt "
                        "gives its answers at its --eval_batch_size 32; --no-release_pairing: each question's own "
                        "routing, answers independent of the batch")


def build_parser(description: str = "", defaults: dict | None = None) -> argparse.ArgumentParser:
    """QA-TIGER's flags (the release config's names and values) and the engine's."""
    d = dataclasses.replace(QATigerConfig(), **(defaults or {}))
    p = argparse.ArgumentParser(description=description, epilog=EXIT_CODES, formatter_class=HelpFormatter)
    _data_flags(p, d)
    _model_flags(p, d)
    o = p.add_argument_group("optimisation (defaults are the release's recipe: Adam, StepLR(8, 0.1))")
    optimiser_flags(o, d)
    o.add_argument("--betas", type=float, nargs=2, default=list(d.betas), metavar=("B1", "B2"), help="Adam's betas")
    o.add_argument("--seed", type=int, default=d.seed, metavar="S", help="random seed")
    r = p.add_argument_group("run")
    flush_flag(r, d, "as QA-TIGER trains, its attention's weights and gradients underflow, and Intel CPUs slow down "
                     "on them epoch by epoch (a third slower by epoch 5 on the default set)")
    engine_flags(r, d)
    return p


@lru_cache(maxsize=1)
def _flag_names() -> tuple[str, ...]:
    return tuple(vars(build_parser().parse_args([])))


def parse(argv: Sequence[str] | None, mode: str, description: str = "") -> QATigerConfig:
    """The config of a QA-TIGER script's command line; ``mode``: train or test (the script decides)."""
    first, _ = build_parser(description).parse_known_args(argv)
    defaults = flag_defaults(read_config(first.config), first.config) if first.config else {}
    args = vars(build_parser(description, defaults).parse_args(argv))
    args["betas"] = tuple(args["betas"])
    cfg = QATigerConfig(**args, mode=mode)
    if cfg.topK > cfg.num_experts:
        raise SystemExit(f"--topK {cfg.topK} is more than --num_experts {cfg.num_experts}: pass --topK "
                         f"{cfg.num_experts} or less")
    return cfg


def qatiger_scores(model: nn.Module, batch: dict) -> torch.Tensor:
    """QA-TIGER's answer logits of a batch of avqa.qatiger.data.QATigerDataset."""
    return model(batch["audio"], batch["video"], batch["patch"], batch["question"])


def qatiger_loss(model: nn.Module, batch: dict, match_weight: float) -> dict[str, torch.Tensor | None]:
    """Cross-entropy of the answer (QA-TIGER has no other loss)."""
    loss = F.cross_entropy(qatiger_scores(model, batch).float(), batch["label"])
    return {"loss": loss, "answer": loss, "match": None}


def qatiger_adam(model: nn.Module, cfg: QATigerConfig) -> torch.optim.Optimizer:
    """Adam at --lr with the recipe's --betas (the release's (0.95, 0.999)), fused as the engine's default."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), fused=True)


def build_model(cfg: QATigerConfig, answers: int, text: dict[str, torch.Tensor]) -> QATiger:
    """The model of ``cfg``'s settings, its text tower built to ``text``'s shapes and holding them."""
    model = QATiger(answers, d_model=cfg.d_model, video_dim=cfg.video_dim, patch_dim=cfg.patch_dim,
                    text=weights.text_settings(text), topK=cfg.topK, num_experts=cfg.num_experts,
                    question_fusion=cfg.question_fusion, patch_selector=cfg.patch_selector, pool=cfg.pool,
                    release_pairing=cfg.release_pairing)
    model.quest_encoder.load_state_dict(text)
    return model


@dataclass(frozen=True)
class QATigerFamily(Family):
    """QA-TIGER as the engine sees it: built from its switches and a CLIP text tower, reading its own feature
    layout and answer order, loading the release's best.pt with every key checked."""

    cls: type[nn.Module] = QATiger
    loss: object = qatiger_loss
    scores: object = qatiger_scores
    optimizer: object = qatiger_adam

    def build(self, cfg: QATigerConfig, vocab: Vocab) -> nn.Module:
        return build_model(cfg, len(vocab.answers), weights.starting_text(cfg))

    def vocab(self, cfg: QATigerConfig, train_samples: Sequence[dict]) -> Vocab:
        return data.answer_vocab(cfg, train_samples)

    def split(self, path: str, vocab: Vocab | None = None, samples: list[dict] | None = None):
        """Questions of any length and wording (CLIP reads them): v1, v2.0 and MUSIC-AVQA-R files alike."""
        return load_split(path, vocab, samples, max_tokens=None, encode=data.encode_answers)

    def feature_dirs(self, cfg: QATigerConfig) -> list[str]:
        return [cfg.audio_feat, cfg.video_feat, cfg.patch_feat]

    def files_read(self, cfg: QATigerConfig, samples: Sequence[dict]) -> list[Path]:
        return data.feature_files(cfg, samples)

    def open_inputs(self, cfg: QATigerConfig, samples: Sequence[dict]) -> data.QATigerInputs:
        return data.open_inputs(cfg, samples)


FAMILY = QATigerFamily()


def run_config(cfg: QATigerConfig) -> int:
    """Train or test (cfg.mode) QA-TIGER as ``cfg`` says (--flush_denormals: avqa.engine.denormals), recording the
    resolved --flush_denormals (True or False) in the run's flags."""
    cfg = dataclasses.replace(cfg, flush_denormals=flush_denormals_on(cfg.flush_denormals))
    tested = checkpoint.trained_path(Path(cfg.model_save_dir), cfg.checkpoint, cfg.script)
    with flushed_if(cfg.flush_denormals):
        return run(cfg, "qatiger", dataclasses.replace(FAMILY, release_state=weights.release_hook(cfg, tested)))


@user_errors
def main(mode: str, argv: Sequence[str] | None = None, description: str = "") -> int:
    """net_qatiger/main_train.py (``mode`` train) and net_qatiger/main_test.py (test)."""
    return run_config(parse(argv, mode, description))
