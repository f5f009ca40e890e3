"""The settings of one training or test run, as typed objects composed of sections: the engine's
(``EngineConfig``), which every family's config composes with its own, and the original scripts' inputs
(``AVSTInputs``), which with it make ``RunConfig``, what the original scripts' tasks take.

The command line (avqa.tasks.cli) fills it from the original scripts' flags; other code builds it
directly. Field names are the flags' names; defaults are the original recipe of net_grd_avst.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

from .. import checkpoint
from ..recipes import ORIGINAL

# flags only one script has: the others never record them
ONLY = {"video_dir": ("baseline", "grounding"), "st_dir": ("baseline", "grounding"),
        "match_weight": ("avst",), "pretrained_grounding": ("avst",)}


@dataclass
class EngineConfig:
    """The engine's section of a run's config, which every family's config composes with its own: the
    annotations, the recipe, where checkpoints go, the device and logging. The engine (avqa.engine, the
    train and test loop of avqa.tasks.qa) reads only these fields; ``script`` is the script whose flags
    the config stands for."""

    label_train: str = "./data/json/avqa-train.json"
    label_val: str = "./data/json/avqa-val.json"
    label_test: str = "./data/json/avqa-test.json"
    no_feature_check: bool = False
    batch_size: int = 64
    epochs: int = 80
    lr: float = 1e-4
    lr_step: int = 8
    lr_gamma: float = 0.1
    seed: int = 1
    mode: str = "train"
    model: str = ""           # a family's config gives these four its script's defaults
    model_save_dir: str = ""
    checkpoint: str = ""
    resume: bool = False
    overwrite: bool = False
    device: str | None = None
    gpu: str | None = None
    amp: bool = False
    num_workers: int = 2
    eval_batch_size: int = 64
    log_interval: int = 50
    tensorboard_dir: str = "runs"
    results: str | None = None
    quiet: bool = False
    script: str = ""

    # what a resumed run must share with the run it continues (engine.ownership)
    recipe_flags: ClassVar[tuple[str, ...]] = ("batch_size", "lr", "lr_step", "lr_gamma", "seed")
    # the flags that shape a trained model's answers: test mode refuses a checkpoint trained with others
    model_flags: ClassVar[tuple[str, ...]] = ()

    def flags(self) -> dict:
        """The run's flags as its script has them, in its command line's order: the checkpoint's "args" and the
        log's flags line."""
        raise NotImplementedError


@dataclass
class AVSTInputs:
    """The section of the original scripts (AVST, the baseline, grounding): the VGGish and 14x14 feature
    folders, the seconds the model sees, the match loss and AVST's start."""

    audio_dir: str = "./data/feats/vggish"
    video_res14x14_dir: str = "./data/feats/res18_14x14"
    video_dir: str | None = None
    st_dir: str | None = None
    segments: int = 10
    match_weight: float | None = 0.5
    pretrained_grounding: str | None = checkpoint.trained_path(
        ORIGINAL["grounding"]["model_save_dir"], ORIGINAL["grounding"]["checkpoint"], "grounding").as_posix()


@dataclass
class RunConfig(AVSTInputs, EngineConfig):
    """One run of the original scripts: the engine's section and theirs; ``script``: avst, baseline or
    grounding (defaults: net_grd_avst's)."""

    model: str = "AVQA_Fusion_Net"
    model_save_dir: str = "net_grd_avst/avst_models/"
    checkpoint: str = "avst"
    script: str = "avst"

    # the scripts' flags in their command line's order
    order: ClassVar[tuple[str, ...]] = (
        "audio_dir", "video_res14x14_dir", "video_dir", "st_dir", "label_train", "label_val", "label_test", "segments",
        "no_feature_check", "batch_size", "epochs", "lr", "lr_step", "lr_gamma", "match_weight", "pretrained_grounding",
        "seed", "mode", "model", "model_save_dir", "checkpoint", "resume", "overwrite", "device", "gpu", "amp",
        "num_workers", "eval_batch_size", "log_interval", "tensorboard_dir", "results", "quiet")
    recipe_flags: ClassVar[tuple[str, ...]] = ("batch_size", "lr", "lr_step", "lr_gamma", "match_weight", "seed",
                                               "segments")
    model_flags: ClassVar[tuple[str, ...]] = ("segments",)

    def flags(self) -> dict:
        """The run's flags as its script has them: the checkpoint's "args" and the log's flags line."""
        return {name: getattr(self, name) for name in self.order if self.script in ONLY.get(name, (self.script,))}

    @classmethod
    def for_script(cls, script: str, **changes) -> "RunConfig":
        """The defaults of ``script`` (avst, baseline, grounding: its original recipe), with ``changes``."""
        return replace(cls(script=script, **ORIGINAL[script]), **changes)

    @classmethod
    def from_flags(cls, flags: dict, script: str) -> "RunConfig":
        """The config of parsed flags (argparse's namespace as a dict)."""
        known = {f.name for f in fields(cls)}
        unknown = set(flags) - known
        if unknown:
            raise TypeError(f"flags RunConfig does not know: {sorted(unknown)}")
        cfg = cls(**flags, script=script)
        if script not in ONLY["match_weight"]:  # a script without the match loss has no weight for it
            cfg.match_weight = None
        return cfg
