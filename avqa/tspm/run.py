"""TSPM on the engine: its settings, its command line (net_tspm/main_train.py, net_tspm/main_test.py),
and the family avqa.tasks.qa trains and tests.

The loop, resuming and its checks, the device, AMP, DDP, checkpoints, the test table and the JSON
report are the engine's, as for AVST; this module says only what differs: the model and its
switches, the feature layout (avqa.tspm.data) and the release's result files (``<checkpoint>.result``,
``<checkpoint>.acc`` in --result_dir).
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

from ..annotations import Vocab
from ..data import QASplit
from ..engine.denormals import flush_denormals_on, flushed_if
from ..evaluate import release_acc_text, result_line
from ..recipes import Recipe
from ..tasks.cli import HelpFormatter, annotation_flags, engine_flags, flush_flag, optimiser_flags
from ..tasks.config import EngineConfig
from ..tasks.qa import Family, run
from ..utils import EXIT_CODES, at_least, atomic_write_text, user_errors
from . import data
from .model import TOKEN_FRAMES, TSPM

# each module switch: its name, what it computes on, what stands in for it off
SWITCHES = {"Temp_Selection": ("temporal selection", "keep the --top_k seconds the QA prompt attends to most",
                               "all T seconds"),
            "Spatio_Perception": ("spatial perception", "each kept second's sound attends over that second's ToMe "
                                  "tokens", "the kept seconds' frame features"),
            "AV_Attn_Module": ("audio-visual attention", "audio and visual self- and cross-attention",
                               "the projected features"),
            "Temp_QTGM": ("question-as-query temporal grounding", "the question attends over the kept seconds",
                          "the means over the kept seconds")}
# the ablation rungs of python -m avqa.ladder --family tspm: label and the switch each turns off (none: TSPM)
ABLATIONS = {"no_av_attn": ("w/o AVA", "AV_Attn_Module"), "no_temp_selection": ("w/o TS", "Temp_Selection"),
             "no_spatio_perception": ("w/o SP", "Spatio_Perception"), "no_temp_qtgm": ("w/o QTG", "Temp_QTGM"),
             "tspm": ("TSPM", None)}


def switch_help(switch: str) -> str:
    name, on, off = SWITCHES[switch]
    return f"{name}: {on} (off: {off})"


def ablation_doc(rung: str) -> str:
    """The two lines that say what an ablation rung computes."""
    switch = ABLATIONS[rung][1]
    if switch is None:
        return "TSPM with every module on (the paper's model)\n" + "; ".join(name for name, _, _ in SWITCHES.values())
    name, _, off = SWITCHES[switch]
    return f"TSPM without {name} (--no-{switch})\nin its place: {off}"


@dataclass(frozen=True)
class TSPMRecipe(Recipe):
    """A TSPM training recipe: AVST's fields and --top_k, the seconds temporal selection keeps."""

    top_k: int | None = None


@dataclass
class TSPMConfig(EngineConfig):
    """One TSPM run: the engine's section (avqa.tasks.config.EngineConfig, with TSPM's defaults) and TSPM's
    own: its feature folders, switches and widths, where its result files go."""

    audios_feat_dir: str = "./data/feats/vggish"
    visual_feat_dir: str = "./data/feats/clip_feats/frame_1fps_ViT-L14@336px"
    audios_patch_dir: str = "./data/feats/ToMe_feat/audio_tome14"
    visual_patch_dir: str = "./data/feats/ToMe_feat/tome14"
    qst_feat_dir: str = "./data/feats/clip_feats/qst_ViT-L14@336px"
    qst_prompt_dir: str = "./data/feats/clip_feats/qaPrompt_ViT-L14@336px"
    Temp_Selection: bool = True
    top_k: int = 10
    Spatio_Perception: bool = True
    AV_Attn_Module: bool = True
    Temp_QTGM: bool = True
    token_frames: str = "paper"
    visual_dim: int = data.FRAME_SHAPE[0]
    token_dim: int = data.TOKEN_SHAPE[1]
    text_dim: int = data.TEXT_DIM
    result_dir: str = "net_tspm/results/"
    flush_denormals: bool | str = "auto"   # auto, on or off; a run resolves it (flush_denormals_on) and records the bool
    epochs: int = 30
    model: str = "tspm"
    model_save_dir: str = "net_tspm/models/"
    checkpoint: str = "TSPM"
    script: str = "tspm"

    # what a resumed run must share with the run it continues: the recipe and the model's settings
    recipe_flags: ClassVar[tuple[str, ...]] = ("batch_size", "lr", "lr_step", "lr_gamma", "seed", "top_k",
                                               "Temp_Selection", "Spatio_Perception", "AV_Attn_Module", "Temp_QTGM",
                                               "token_frames", "visual_dim", "token_dim", "text_dim")
    # the flags that shape its answers: test mode refuses a checkpoint trained with others
    model_flags: ClassVar[tuple[str, ...]] = ("top_k", "Temp_Selection", "Spatio_Perception", "AV_Attn_Module",
                                              "Temp_QTGM", "token_frames", "visual_dim", "token_dim", "text_dim")

    def flags(self) -> dict:
        """The run's flags as the TSPM scripts have them: the checkpoint's "args" and the log's flags line."""
        return {name: getattr(self, name) for name in _flag_names()}


def build_parser(description: str = "") -> argparse.ArgumentParser:
    """TSPM's flags (the release's names and defaults, its switches as real on/off flags) and the engine's."""
    d = TSPMConfig()
    p = argparse.ArgumentParser(description=description, epilog=EXIT_CODES, formatter_class=HelpFormatter)
    g = p.add_argument_group("data: per-video features <video_id>.npy, per-question features <question_id>.npy "
                             "(float16 or float32)")
    g.add_argument("--audios_feat_dir", default=d.audios_feat_dir, help="VGGish features, <video_id>.npy [T,128]")
    g.add_argument("--visual_feat_dir", default=d.visual_feat_dir,
                   help="CLIP ViT-L/14@336px frame features, one per second, <video_id>.npy [T,768]")
    g.add_argument("--audios_patch_dir", default=d.audios_patch_dir,
                   help="accepted for the release's command lines and never read: the release's loader reads these "
                        "audio token files but its model's forward never uses them")
    g.add_argument("--visual_patch_dir", default=d.visual_patch_dir,
                   help="ToMe token features of F frames, <video_id>.npy [F,14,1024]; token frame j shows second "
                        "token_seconds(T, F)[j] (docs/tspm.md)")
    g.add_argument("--qst_feat_dir", default=d.qst_feat_dir,
                   help="CLIP text feature of each question, <question_id>.npy [768] or [1,768]")
    g.add_argument("--qst_prompt_dir", default=d.qst_prompt_dir,
                   help="CLIP text feature of each question's QA prompt, <question_id>.npy [768] or [1,768]")
    annotation_flags(g, d, "train annotations; the answer vocabulary is built from it in order of first appearance, "
                           "as the release's loader builds it (test mode too)")
    g.add_argument("--no_feature_check", action="store_true",
                   help="skip the NaN/inf scan of feature files (presence, shapes and lengths are always checked)")
    m = p.add_argument_group("model (each switch also has a --no- form; all on is the paper's TSPM)")
    m.add_argument("--Temp_Selection", action=argparse.BooleanOptionalAction, default=d.Temp_Selection,
                   help=switch_help("Temp_Selection"))
    m.add_argument("--top_k", type=at_least(1), default=d.top_k, metavar="K",
                   help="seconds kept by temporal selection (at most the T seconds of the features)")
    m.add_argument("--Spatio_Perception", action=argparse.BooleanOptionalAction, default=d.Spatio_Perception,
                   help=switch_help("Spatio_Perception"))
    m.add_argument("--AV_Attn_Module", action=argparse.BooleanOptionalAction, default=d.AV_Attn_Module,
                   help=switch_help("AV_Attn_Module"))
    m.add_argument("--Temp_QTGM", action=argparse.BooleanOptionalAction, default=d.Temp_QTGM,
                   help=switch_help("Temp_QTGM"))
    m.add_argument("--token_frames", choices=TOKEN_FRAMES, default=d.token_frames,
                   help="paper: each kept second reads the token frame nearest it; release: the first --top_k token "
                        "frames whatever was kept, as the release's code does (docs/model.md, ## TSPM)")
    m.add_argument("--visual_dim", type=at_least(1), default=d.visual_dim, metavar="D",
                   help="width of the frame features in --visual_feat_dir (CLIP ViT-L/14@336px: 768)")
    m.add_argument("--token_dim", type=at_least(1), default=d.token_dim, metavar="D",
                   help="width of the ToMe tokens in --visual_patch_dir (ViT-L/16: 1024; the synthetic stand-in "
                        "ViT: 192)")
    m.add_argument("--text_dim", type=at_least(1), default=d.text_dim, metavar="D",
                   help="width of the question and QA-prompt features in --qst_feat_dir and --qst_prompt_dir "
                        "(CLIP ViT-L/14@336px: 768)")
    o = p.add_argument_group("optimisation (defaults are the release's recipe: Adam, StepLR(8, 0.1))")
    optimiser_flags(o, d)
    o.add_argument("--seed", type=int, default=d.seed, metavar="S", help="random seed")
    r = p.add_argument_group("run")
    r.add_argument("--result_dir", default=d.result_dir,
                   help="test mode: where <checkpoint>.result (one line per question: question id, correct, truth "
                        "index, predicted index) and <checkpoint>.acc (the accuracy table) go, as the release writes them")
    flush_flag(r, d, "as TSPM trains, its attention's gradients underflow, and Intel CPUs slow down on them epoch by "
                     "epoch (3x by epoch 5 on the default set)")
    engine_flags(r, d)
    return p


@lru_cache(maxsize=1)
def _flag_names() -> tuple[str, ...]:
    return tuple(vars(build_parser().parse_args([])))


def parse(argv: Sequence[str] | None, mode: str, description: str = "") -> TSPMConfig:
    """The config of a TSPM script's command line; ``mode``: train or test (the script decides)."""
    return TSPMConfig(**vars(build_parser(description).parse_args(argv)), mode=mode)


def tspm_loss(model: nn.Module, batch: dict, match_weight: float) -> dict[str, torch.Tensor | None]:
    """Cross-entropy of the answer: TSPM has no match loss."""
    loss = F.cross_entropy(tspm_scores(model, batch).float(), batch["label"])
    return {"loss": loss, "answer": loss, "match": None}


def tspm_scores(model: nn.Module, batch: dict) -> torch.Tensor:
    """TSPM's answer logits of a batch of avqa.tspm.data.TSPMDataset."""
    return model(batch["audio"], batch["visual"], batch["tokens"], batch["question"], batch["prompt"])


@dataclass(frozen=True)
class TSPMFamily(Family):
    """TSPM as the engine sees it: built from its switches, reading its own feature layout, writing the
    release's .result and .acc files in test mode."""

    cls: type[nn.Module] = TSPM
    loss: object = tspm_loss
    scores: object = tspm_scores

    def build(self, cfg: TSPMConfig, vocab: Vocab) -> nn.Module:
        try:
            return TSPM(len(vocab.answers), top_k=cfg.top_k, temp_selection=cfg.Temp_Selection,
                        spatio_perception=cfg.Spatio_Perception, av_attn=cfg.AV_Attn_Module, temp_qtgm=cfg.Temp_QTGM,
                        token_frames=cfg.token_frames, visual_dim=cfg.visual_dim, token_dim=cfg.token_dim,
                        text_dim=cfg.text_dim)
        except ValueError as e:
            raise SystemExit(str(e)) from None

    def feature_dirs(self, cfg: TSPMConfig) -> list[str]:
        return [cfg.audios_feat_dir, cfg.visual_feat_dir, cfg.visual_patch_dir, cfg.qst_feat_dir, cfg.qst_prompt_dir]

    def files_read(self, cfg: TSPMConfig, samples: Sequence[dict]) -> list[Path]:
        return data.feature_files(cfg, samples)

    def open_inputs(self, cfg: TSPMConfig, samples: Sequence[dict]) -> data.TSPMInputs:
        return data.open_inputs(cfg, samples)

    def output_dirs(self, cfg: TSPMConfig) -> list[tuple[str, str]]:
        return [(cfg.result_dir, "--result_dir")]

    def write_outputs(self, cfg: TSPMConfig, split: QASplit, vocab: Vocab, out: dict, table: dict) -> list[Path]:
        """<result_dir>/<checkpoint>.result in annotation order, and <checkpoint>.acc."""
        folder = Path(cfg.result_dir)
        order = torch.argsort(out["index"]).tolist()
        lines = [result_line(split.samples[int(out["index"][i])].get("question_id"),
                             bool(out["pred"][i] == out["label"][i]), int(out["label"][i]), int(out["pred"][i]))
                 for i in order]
        result, acc = folder / f"{cfg.checkpoint}.result", folder / f"{cfg.checkpoint}.acc"
        atomic_write_text(result, "".join(line + "\n" for line in lines))
        atomic_write_text(acc, release_acc_text(table) + "\n")
        return [result, acc]


FAMILY = TSPMFamily()


def run_config(cfg: TSPMConfig) -> int:
    """Train or test (cfg.mode) TSPM as ``cfg`` says (--flush_denormals: avqa.engine.denormals), recording the
    resolved --flush_denormals (True or False) in the run's flags."""
    cfg = dataclasses.replace(cfg, flush_denormals=flush_denormals_on(cfg.flush_denormals))
    with flushed_if(cfg.flush_denormals):
        return run(cfg, "tspm", FAMILY)


@user_errors
def main(mode: str, argv: Sequence[str] | None = None, description: str = "") -> int:
    """net_tspm/main_train.py (``mode`` train) and net_tspm/main_test.py (test)."""
    return run_config(parse(argv, mode, description))
