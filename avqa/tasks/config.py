"""The settings of one training or test run, as a typed object: what the tasks take.

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
class RunConfig:
    """One run of a task; ``script`` is the script whose flags it stands for (avst, baseline, grounding)."""

    audio_dir: str = "./data/feats/vggish"
    video_res14x14_dir: str = "./data/feats/res18_14x14"
    video_dir: str | None = None
    st_dir: str | None = None
    label_train: str = "./data/json/avqa-train.json"
    label_val: str = "./data/json/avqa-val.json"
    label_test: str = "./data/json/avqa-test.json"
    segments: int = 10
    no_feature_check: bool = False
    batch_size: int = 64
    epochs: int = 80
    lr: float = 1e-4
    lr_step: int = 8
    lr_gamma: float = 0.1
    match_weight: float | None = 0.5
    pretrained_grounding: str | None = checkpoint.trained_path(
        ORIGINAL["grounding"]["model_save_dir"], ORIGINAL["grounding"]["checkpoint"], "grounding").as_posix()
    seed: int = 1
    mode: str = "train"
    model: str = "AVQA_Fusion_Net"
    model_save_dir: str = "net_grd_avst/avst_models/"
    checkpoint: str = "avst"
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
    script: str = "avst"

    # the flags that shape a trained model's answers: test mode refuses a checkpoint trained with others
    model_flags: ClassVar[tuple[str, ...]] = ("segments",)

    def flags(self) -> dict:
        """The run's flags as its script has them: the checkpoint's "args" and the log's flags line."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "script" and self.script in ONLY.get(f.name, (self.script,))}

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
