"""TSPM's stages of the main job (python -m avqa.pipeline --tspm): its features of the set, made with the
synthetic-world stand-in CLIP and token ViT, then TSPM trained, tested on the test split and its
temporal selection scored against the set's ground truth.

The features go under the set's ``feats/`` in the release's layout (TSPMConfig's default folders), so
net_tspm/main_train.py run from the set's parent reads them as they are. Each stage checks its own
outputs; avqa.pipeline skips, resumes and redoes them as it does the main job's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .. import checkpoint
from ..features.files import valid_npy
from ..features.weights import DEFAULT_OUT
from ..machine import openmp_wait_policy
from ..stage import Stage, exit_on_failure, finished, print_report, run_task, tested
from ..utils import metadata_path, sha256
from .run import TSPMConfig, TSPMRecipe

if TYPE_CHECKING:
    from ..job import MainJob

REPO = Path(__file__).resolve().parents[2]
# the synthetic-world stand-ins the features are extracted with (where avqa.features.pretrain writes them),
# and the command that makes each
STANDIN_CLIP, STANDIN_VIT = REPO / DEFAULT_OUT["clip"], REPO / DEFAULT_OUT["vit"]
MAKE = {name: f"python -m avqa.features.pretrain {name}" for name in ("clip", "vit")}
TOKENS = 14          # tokens per frame after merging, as the release's extractor leaves
MAX_TOKEN_FRAMES = 10  # the release's --sample_frames


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def standin_problem(path: Path, make: str) -> str | None:
    """The sentence that stops a TSPM stage whose stand-in weights file is missing."""
    if path.is_file():
        return None
    return (f"{_relative(path)} not found: the TSPM stages extract their features with this synthetic-world "
            f"stand-in; make it with {make} (or restore it with git checkout), or run the main job without --tspm")


def _weights_id(path: Path) -> str | None:
    """What the stamp records of a weights file: its sha256 (a replaced file redoes the stages that read it)."""
    return sha256(path) if path.is_file() else None


def train_in_child(cfg, module: str = "avqa.tspm.stages") -> int:
    """Train in a fresh process (``python -m module``, reading ``cfg`` as JSON on stdin) whose OpenMP threads wait
    as the machine's load at its start suits (avqa.machine.openmp_wait_policy: spinning briefly on free cores,
    sleeping on shared ones; the environment's OMP_WAIT_POLICY wins). The same numbers either way. The policy
    is read when the OpenMP runtime loads, so the main job's own process, which has loaded it, cannot change it."""
    policy = openmp_wait_policy()
    print(f"OpenMP threads of the training: OMP_WAIT_POLICY={policy}", flush=True)
    env = {**os.environ, "OMP_WAIT_POLICY": policy,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", module], input=json.dumps(asdict(cfg)), text=True,
                          env=env).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """The child of train_in_child: a TSPMConfig as JSON on stdin, trained as net_tspm/main_train.py would."""
    from ..utils import user_errors
    from .run import run_config
    return user_errors(run_config)(TSPMConfig(**json.loads(sys.stdin.read())))


class TSPMStages:
    """The TSPM stages of one main job (``job``: its set, folders and settings)."""

    def __init__(self, job: MainJob, recipe: TSPMRecipe):
        self.job, self.data, self.out, self.feats = job, job.data, job.out, job.feats
        self.seconds = job.seconds
        self.frames = min(MAX_TOKEN_FRAMES, self.seconds)
        self.recipe = recipe  # the job's (demo or tiny)
        d = TSPMConfig()
        self.dirs = {name: self.data / Path(getattr(d, name)).relative_to("data")
                     for name in ("audios_feat_dir", "visual_feat_dir", "visual_patch_dir", "qst_feat_dir",
                                  "qst_prompt_dir")}
        self.model_dir = self.out / "tspm"
        self.ckpt = checkpoint.trained_path(self.model_dir, "tspm", "tspm")

    # ------------------------------------------------------------------ what the stages run

    def _annotations(self) -> list[Path]:
        return [self.data / "json" / f"avqa-{s}.json" for s in ("train", "val", "test")]

    def _weights(self, path: Path, make: str) -> str:
        problem = standin_problem(path, make)
        if problem:
            raise SystemExit(problem)
        return str(path)

    def clip_frames(self) -> None:
        from ..features.clip import checked_backbone
        from ..features.extract import extract_visual
        weights = self._weights(STANDIN_CLIP, MAKE["clip"])
        spec = checked_backbone("image", weights, 0, None)
        print_report(extract_visual(spec.name, self.data / "videos", self.dirs["visual_feat_dir"], self.seconds,
                               weights=weights, seed=0, device=self.job.args.device, bf16=False, jpeg_quality=None,
                               prefetch=2, overwrite=False, batch_rows=16))

    def clip_text(self, kind: str, folder: str) -> None:
        from ..features.clip import extract_clip_text
        weights = self._weights(STANDIN_CLIP, MAKE["clip"])
        print_report(extract_clip_text(kind, self._annotations(), self.dirs[folder], weights, 0, None, self.job.args.device,
                                  False, False, False))

    def tokens(self) -> None:
        from ..features.tokens import extract_tokens
        weights = self._weights(STANDIN_VIT, MAKE["vit"])
        print_report(extract_tokens(self.data / "videos", self.dirs["visual_patch_dir"], self.seconds, self.frames, TOKENS,
                               weights=weights, device=self.job.args.device))

    def config(self, **settings) -> TSPMConfig:
        """TSPM's settings on this set: its feature folders, the recipe, the widths of the files."""
        d = self.data
        return TSPMConfig(**{k: str(v) for k, v in self.dirs.items()},
                          label_train=str(d / "json" / "avqa-train.json"), label_val=str(d / "json" / "avqa-val.json"),
                          label_test=str(d / "json" / "avqa-test.json"), tensorboard_dir=str(self.out / "runs"),
                          device=self.job.args.device, model_save_dir=str(self.model_dir), checkpoint="tspm",
                          result_dir=str(self.out / "tspm_results"), **self.widths(),
                          **self.recipe.settings(), **settings)

    def widths(self) -> dict[str, int]:
        """The feature widths the folders' metadata records (the stand-in ViT's tokens are 192 wide, not
        ViT-L's 1024); a folder without metadata keeps the published width, and the run's check names it."""
        found = {}
        for flag, folder, key in (("visual_dim", "visual_feat_dir", "shape_per_video"),
                                  ("token_dim", "visual_patch_dir", "shape_per_video"),
                                  ("text_dim", "qst_feat_dir", "shape_per_question")):
            try:
                found[flag] = int(json.loads(metadata_path(self.dirs[folder]).read_text())[key][-1])
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                pass
        return found

    def train(self) -> None:
        exit_on_failure(train_in_child(self.config(resume=True)))

    def test(self) -> None:
        from .run import run_config
        run_task(run_config, self.config(mode="test", results=str(self.out / "tspm_test.json")))

    def selection(self) -> None:
        from .selection_score import score_selection
        run_task(lambda cfg: score_selection(cfg, self.data / "ground_truth", self.out / "tspm_selection.json"),
                 self.config(mode="test", quiet=True))

    # ------------------------------------------------------------------ checks

    def feature_check(self, folder: str, shape: tuple) -> "str | None":
        meta = metadata_path(self.dirs[folder])
        try:
            recorded = json.loads(meta.read_text())
        except (OSError, ValueError):
            return f"{meta} missing"
        if recorded.get("seconds") != self.seconds:
            return f"{meta} is for another clip length"
        width = recorded.get("shape_per_video", [None])[-1]
        return self.job.each_file(self.dirs[folder], ".npy", lambda p: valid_npy(p, (*shape, width)))

    def text_check(self, folder: str) -> "str | None":
        from ..annotations import load_annotations, question_key
        if not metadata_path(self.dirs[folder]).is_file():
            return f"{metadata_path(self.dirs[folder])} missing"
        width = json.loads(metadata_path(self.dirs[folder]).read_text()).get("shape_per_question", [None])[-1]
        for f in self._annotations():
            for row in load_annotations(f):
                path = self.dirs[folder] / f"{question_key(row)}.npy"
                if not valid_npy(path, (1, width)):
                    return f"{path} missing or invalid"
        return None

    # ------------------------------------------------------------------ the stages, in order

    def stages(self) -> list[Stage]:
        o, dirs = self.out, self.dirs
        clip, vit = {"weights_sha256": _weights_id(STANDIN_CLIP)}, {"weights_sha256": _weights_id(STANDIN_VIT)}
        features = ["vggish", "tspm_clip_frames", "tspm_clip_questions", "tspm_clip_prompts", "tspm_tokens"]
        out_of = lambda name: [dirs[name], metadata_path(dirs[name])]  # noqa: E731
        text_out = lambda name: [*out_of(name), dirs[name].parent / f"{dirs[name].name}.sentences.json"]  # noqa: E731
        return [
            Stage("tspm_clip_frames", f"TSPM: CLIP frame features [T,768] (stand-in {STANDIN_CLIP.name})",
                  ["generate"], self.clip_frames, lambda: self.feature_check("visual_feat_dir", (self.seconds,)),
                  out_of("visual_feat_dir"), clip),
            Stage("tspm_clip_questions", "TSPM: CLIP text features of the questions [1,768]", ["generate"],
                  lambda: self.clip_text("question", "qst_feat_dir"), lambda: self.text_check("qst_feat_dir"),
                  text_out("qst_feat_dir"), clip),
            Stage("tspm_clip_prompts", "TSPM: CLIP text features of the QA prompts [1,768]", ["generate"],
                  lambda: self.clip_text("prompt", "qst_prompt_dir"), lambda: self.text_check("qst_prompt_dir"),
                  text_out("qst_prompt_dir"), clip),
            Stage("tspm_tokens", f"TSPM: ToMe tokens [{self.frames},{TOKENS},D] (stand-in {STANDIN_VIT.name})",
                  ["generate"], self.tokens,
                  lambda: self.feature_check("visual_patch_dir", (self.frames, TOKENS)), out_of("visual_patch_dir"),
                  {**vit, "frames": self.frames, "tokens": TOKENS}),
            Stage("tspm", "TSPM training", features, self.train, finished(self.model_dir, "tspm", self.recipe.epochs, "tspm"),
                  [self.model_dir], {"flags": self.recipe.flags()}, resumes=True),
            Stage("test_tspm", "TSPM on the test split", ["tspm"], self.test, tested(o / "tspm_test.json", self.ckpt),
                  [o / "tspm_test.json", o / "tspm_results"]),
            Stage("tspm_selection", "TSPM's kept seconds against when the named instrument sounds", ["tspm"],
                  self.selection, tested(o / "tspm_selection.json", self.ckpt,
                                         lambda r: r.get("checkpoint_sha256")),
                  [o / "tspm_selection.json"]),
        ]


if __name__ == "__main__":
    sys.exit(main())
