"""QA-TIGER's stages of the main job (python -m avqa.pipeline --family avst,qatiger): its features of the set
in its release's layout (avqa.qatiger.standin), made with the synthetic-world stand-ins, then QA-TIGER
trained with the stand-in text encoder, tested on the test split and its weights over the seconds
scored against the set's ground truth (avqa.qatiger.time_score).

The feature stages:

- ``tspm_clip_frames`` and ``tspm_tokens``: TSPM's stages, listed here too so that QA-TIGER runs
  without ``--tspm``; the features are extracted once, for both families;
- ``qatiger_clip_frames``: ``feats/frame_ViT-L14@336px`` linked to TSPM's CLIP frame folder;
- ``qatiger_tokens``: ``feats/visual_tome14``, ToMe tokens of every second's frame [T,14,192]. TSPM's
  token folder holds one frame per second where the clips last at most its 10 token frames (the
  synthetic sets' 10 s and the tiny set's 4 s): it is linked. Longer clips get their own extraction.

VGGish is the main job's ``vggish`` stage. The question encoder is the stand-in CLIP file itself
(standin.TEXT_ENCODER), read by QA-TIGER's training; nothing is extracted for it. Each stage checks its
own outputs; avqa.pipeline skips, resumes and redoes them as it does the main job's.

The training runs in a child process whose OpenMP wait policy suits the machine's load, as TSPM's does
(avqa.tspm.stages.train_in_child). The training stage's stamp holds the recipe (its registry entry's, "demo" or "tiny") and the sha256 of
the stand-in text encoder, so a replaced file trains again.
"""
from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Sequence

from .. import checkpoint, registry
from ..features.files import valid_npy
from ..stage import Stage, exit_on_failure, finished, print_report, run_task, tested
from ..tspm import stages as tspm_stages
from ..tspm.stages import MAX_TOKEN_FRAMES, TSPMStages, _weights_id, train_in_child
from ..utils import metadata_path
from .breakdown_config import train_config
from .run import QATigerConfig
from .standin import (FOLDERS, TEXT_ENCODER, TOKENS, StandinConfig, extract_tokens_per_second, link_to_tspm,
                      linked_to_tspm, text_encoder_problem)

if TYPE_CHECKING:
    from ..job import MainJob


class QATigerFeatureStages:
    """QA-TIGER's feature stages of one main job (``job``: its set, folders and settings)."""

    def __init__(self, job: MainJob):
        self.job = job
        self.cfg = StandinConfig(job.data, job.seconds, job.args.device, tspm_stages.STANDIN_VIT)
        self.share_tokens = job.seconds <= MAX_TOKEN_FRAMES  # TSPM's tokens are then one frame per second

    def frames_check(self) -> str | None:
        return linked_to_tspm(self.cfg, "frames") or self.job.each_file(
            self.cfg.folder("frames"), ".npy", lambda p: valid_npy(p, (self.cfg.seconds, 768)))

    def tokens_check(self) -> str | None:
        folder = self.cfg.folder("tokens")
        problem = linked_to_tspm(self.cfg, "tokens") if self.share_tokens else None
        if problem:
            return problem
        try:
            recorded = json.loads(metadata_path(folder).read_text())
        except (OSError, ValueError):
            return f"{metadata_path(folder)} missing"
        if recorded.get("token_seconds") != list(range(self.cfg.seconds)):
            return f"{metadata_path(folder)} is not one token frame per second of {self.cfg.seconds}"
        width = recorded.get("shape_per_video", [None])[-1]
        return self.job.each_file(folder, ".npy", lambda p: valid_npy(p, (self.cfg.seconds, TOKENS, width)))

    def stages(self) -> list[Stage]:
        frames, tokens, vit = self.cfg.folder("frames"), self.cfg.folder("tokens"), self.cfg.vit_weights
        tspm_recipe = registry.entry("tspm").recipes["tiny" if self.job.tiny else "demo"]["tspm"]
        tspm = [s for s in TSPMStages(self.job, tspm_recipe).stages()
                if s.name == "tspm_clip_frames" or self.share_tokens and s.name == "tspm_tokens"]
        if self.share_tokens:
            make_tokens = Stage("qatiger_tokens", f"QA-TIGER: ToMe tokens of every second [T,{TOKENS},D], linked to "
                                                  f"TSPM's as feats/{FOLDERS['tokens']}", ["tspm_tokens"],
                                lambda: link_to_tspm(self.cfg, "tokens"), self.tokens_check,
                                [tokens, metadata_path(tokens)], keep_outputs=True)
        else:
            make_tokens = Stage("qatiger_tokens", f"QA-TIGER: ToMe tokens of every second [T,{TOKENS},D] (stand-in "
                                                  f"{vit.name})", ["generate"],
                                lambda: print_report(extract_tokens_per_second(self.cfg)), self.tokens_check,
                                [tokens, metadata_path(tokens)], {"weights_sha256": _weights_id(vit), "tokens": TOKENS})
        return [
            *tspm,
            Stage("qatiger_clip_frames", f"QA-TIGER: CLIP frame features [T,768], linked to TSPM's as "
                                         f"feats/{FOLDERS['frames']}", ["tspm_clip_frames"],
                  lambda: link_to_tspm(self.cfg, "frames"), self.frames_check, [frames, metadata_path(frames)],
                  keep_outputs=True),
            make_tokens,
        ]


class QATigerStages:
    """All of QA-TIGER's stages of one main job: its features, then training, test and the time score."""

    def __init__(self, job: MainJob):
        self.job, self.data, self.out = job, job.data, job.out
        self.features = QATigerFeatureStages(job)
        self.recipe = registry.entry("qatiger").recipes["tiny" if job.tiny else "demo"]["qatiger"]
        self.model_dir = self.out / "qatiger"
        self.ckpt = checkpoint.trained_path(self.model_dir, "qatiger", "qatiger")

    def config(self, **settings) -> QATigerConfig:
        """QA-TIGER's settings on this set: its feature folders, the stand-in text encoder, the recipe, the token
        width (avqa.qatiger.breakdown_config, which the training breakdown reads too)."""
        return train_config(self.job, self.recipe, **settings)[0]

    def train(self) -> None:
        problem = text_encoder_problem()
        if problem:
            raise SystemExit(problem)
        exit_on_failure(train_in_child(self.config(resume=True), "avqa.qatiger.stages"))

    def test(self) -> None:
        from .run import run_config
        run_task(run_config, self.config(mode="test", results=str(self.out / "qatiger_test.json")))

    def time_score(self) -> None:
        from .time_score import score_time
        run_task(lambda cfg: score_time(cfg, self.data / "ground_truth", self.out / "qatiger_time.json"),
                 self.config(mode="test", quiet=True))

    def stages(self) -> list[Stage]:
        o, ckpt = self.out, self.ckpt
        text = {"text_encoder_sha256": _weights_id(TEXT_ENCODER)}
        return [
            *self.features.stages(),
            Stage("qatiger", f"QA-TIGER training (text encoder: stand-in {TEXT_ENCODER.name})",
                  ["vggish", "qatiger_clip_frames", "qatiger_tokens"], self.train,
                  finished(self.model_dir, "qatiger", self.recipe.epochs, "qatiger"), [self.model_dir],
                  {"flags": self.recipe.flags(), **text}, resumes=True),
            Stage("test_qatiger", "QA-TIGER on the test split", ["qatiger"], self.test,
                  tested(o / "qatiger_test.json", ckpt), [o / "qatiger_test.json"]),
            Stage("qatiger_time", "QA-TIGER's weights over the seconds against when the named instrument sounds",
                  ["qatiger"], self.time_score, tested(o / "qatiger_time.json", ckpt), [o / "qatiger_time.json"]),
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """The child of the training stage: a QATigerConfig as JSON on stdin, trained as net_qatiger/main_train.py would."""
    from ..utils import user_errors
    from .run import run_config
    fields = json.loads(sys.stdin.read())
    return user_errors(run_config)(QATigerConfig(**{**fields, "betas": tuple(fields["betas"])}))


if __name__ == "__main__":
    sys.exit(main())
