"""AVST's stages of the main job (python -m avqa.pipeline): grounding pre-training, AVST and the
question-only reference trained on the set's VGGish and 14x14 features and tested, where the attention
peaks scored against the known boxes, and the attention sheets."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint
from ..recipes import Recipe
from ..stage import Stage, exit_on_failure, finished, run_task, tested
from ..synthetic.generate import set_flags
from ..tasks import grounding, qa
from ..tasks.config import RunConfig
from ..utils import atomic_write_text, sha256, user_errors

if TYPE_CHECKING:
    from ..job import MainJob

REPO = Path(__file__).resolve().parents[2]
BUNDLED_AVST = REPO / "net_grd_avst" / "avst_models" / "avst.pt"


def bundle_set_is(flags: dict, shipped: Path) -> bool:
    """Whether this run generates the set the bundled AVST was trained on (its record names the
    generator's flags); any other set (--num_clips, --seed) has another vocabulary and split, so the
    bundle's recorded figure cannot be checked on it."""
    record = checkpoint.record_path(shipped)
    if not (shipped.is_file() and record.is_file()):
        return False
    made_on = json.loads(record.read_text()).get("synthetic") or {}
    if made_on != flags:
        differ = sorted(k for k in {**flags, **made_on} if made_on.get(k) != flags.get(k))
        print(f"the bundled {shipped.name} was trained on another synthetic set (differs in: "
              f"{', '.join(differ)}), so this run does not test it (stage test_bundled left out)", flush=True)
        return False
    return True


class AVSTStages:
    """AVST's stages of one main job (``job``: its set, folders and settings)."""

    def __init__(self, job: MainJob, recipes: dict[str, Recipe]):
        self.job, self.args, self.tiny, self.data, self.out, self.feats = (job, job.args, job.tiny, job.data, job.out,
                                                                            job.feats)
        o = self.out
        self.grd_recipe, self.avst_recipe = recipes["grounding"], recipes["avst"]  # the job's (demo or tiny)
        self.grd_ckpt = checkpoint.trained_path(o / "grounding", "main_grounding_gen", "grounding")
        self.avst_ckpt = checkpoint.trained_path(o / "avst", "avst")
        self.vis_manifest = o / "vis" / "sheets.json"
        self.vis_ckpts = {"avst": self.avst_ckpt, "grounding": self.grd_ckpt}

    # ------------------------------------------------------------------ checks

    def sheets_check(self) -> str | None:
        try:
            m = json.loads(self.vis_manifest.read_text())
        except (OSError, ValueError):
            return f"{self.vis_manifest} missing"
        if m.get("checkpoints") != {k: sha256(p) if p.is_file() else None for k, p in self.vis_ckpts.items()}:
            return "a checkpoint changed"
        if not m["sheets"].get("avst") or not m["sheets"].get("grounding"):
            return "no sheets"
        for files in m["sheets"].values():
            for name, digest in files.items():
                f = self.out / "vis" / name
                if not f.is_file() or sha256(f) != digest:
                    return f"{f} missing or changed"
        return None

    # ------------------------------------------------------------------ what the stages run

    def run_config(self, script: str, recipe: Recipe | None = None, **settings) -> RunConfig:
        """A task's config on this job's set and features: ``script``'s defaults, a recipe, ``settings``."""
        d = self.data
        return RunConfig.for_script(
            script, audio_dir=str(self.feats / "vggish"), video_res14x14_dir=str(self.feats / "res18_14x14"),
            label_train=str(d / "json" / "avqa-train.json"), label_val=str(d / "json" / "avqa-val.json"),
            label_test=str(d / "json" / "avqa-test.json"), tensorboard_dir=str(self.out / "runs"),
            device=self.args.device, **(recipe.settings() if recipe else {}), **settings)

    def pretrain(self) -> None:
        run_task(grounding.run, self.run_config("grounding", self.grd_recipe, model_save_dir=str(self.out / "grounding"),
                                             resume=True))

    def test_grounding(self) -> None:
        run_task(grounding.run, self.run_config("grounding", mode="test", model_save_dir=str(self.out / "grounding"),
                                             results=str(self.out / "grounding_test.json")))

    def train_qa(self, model: str, **start) -> None:
        # resume: continues a run killed in this stage (its outputs are cleared whenever its inputs change)
        run_task(qa.run, self.run_config("avst", self.avst_recipe, model=model, model_save_dir=str(self.out / model),
                                      checkpoint=model, resume=True, **start))

    def test_qa(self, model: str, save_dir: Path | None = None, results: Path | None = None) -> None:
        run_task(qa.run, self.run_config("avst", mode="test", model=model, model_save_dir=str(save_dir or self.out / model),
                                      checkpoint=model, results=str(results or self.out / f"{model}_test.json")))

    def score(self) -> None:
        from ..grounding_score import score_checkpoints
        d, feats = self.data, self.feats
        exit_on_failure(user_errors(score_checkpoints)(
            [("grounding", str(self.grd_ckpt)), ("avst", str(self.avst_ckpt))], str(d / "json" / "avqa-train.json"),
            str(d / "json" / "avqa-test.json"), str(d / "ground_truth"), str(feats / "vggish"),
            str(feats / "res18_14x14"), out=str(self.out / "grounding_score.json")))

    def vis(self) -> None:
        from ..visualize import Sheets, draw
        d, o, feats = self.data, self.out, self.feats
        common = dict(audio_dir=str(feats / "vggish"), video_res14x14_dir=str(feats / "res18_14x14"),
                      frames_dir=str(d / "frames"), videos_dir=str(d / "videos"),
                      label_test=str(d / "json" / "avqa-test.json"), count=self.args.sheets)
        exit_on_failure(user_errors(draw)(Sheets(False, str(o / "avst"), "avst", str(o / "vis" / "avst"),
                                                 label_train=str(d / "json" / "avqa-train.json"), **common)))
        exit_on_failure(user_errors(draw)(Sheets(True, str(o / "grounding"), "main_grounding_gen",
                                                 str(o / "vis" / "grounding"), **common)))
        written = {k: {str(p.relative_to(o / "vis")): sha256(p) for p in sorted((o / "vis" / k).glob("*.png"))}
                   for k in ("avst", "grounding")}
        atomic_write_text(self.vis_manifest, json.dumps(
            {"checkpoints": {k: sha256(p) for k, p in self.vis_ckpts.items()}, "sheets": written}, indent=1))

    # ------------------------------------------------------------------ the stages, in order

    def stages(self) -> list[Stage]:
        """Grounding pre-training, AVST and the question-only reference trained and tested, the attention scored
        and drawn; on the set the bundled AVST was trained on, that checkpoint tested too."""
        defs = self._model_stages()
        if not self.tiny and bundle_set_is(set_flags(self.job.gen), BUNDLED_AVST):
            # the set the bundle was trained on: it must score as recorded
            defs.append(Stage("test_bundled", "the bundled AVST checkpoint on this test split", ["vggish", "res18_14x14"],
                              lambda: self.test_qa("avst", BUNDLED_AVST.parent, self.out / "bundled_avst_test.json"),
                              tested(self.out / "bundled_avst_test.json", BUNDLED_AVST),
                              [self.out / "bundled_avst_test.json"]))
        return defs

    def _model_stages(self) -> list[Stage]:
        o = self.out
        g_epochs, a_epochs = self.grd_recipe.epochs, self.avst_recipe.epochs
        question_only = checkpoint.trained_path(o / "question_only", "question_only")
        return [
            Stage("grounding", "grounding pre-training", ["vggish", "res18_14x14"], self.pretrain,
                  finished(o / "grounding", "main_grounding_gen", g_epochs, "grounding"), [o / "grounding"],
                  {"flags": self.grd_recipe.flags()}, resumes=True),
            Stage("test_grounding", "grounding's match accuracy on the test split", ["grounding"], self.test_grounding,
                  tested(o / "grounding_test.json", self.grd_ckpt), [o / "grounding_test.json"]),
            Stage("avst", "AVST training, starting from the grounding model", ["grounding"],
                  lambda: self.train_qa("avst", pretrained_grounding=str(self.grd_ckpt)), finished(o / "avst", "avst", a_epochs, "avst"), [o / "avst"],
                  {"flags": self.avst_recipe.flags()}, resumes=True),
            Stage("question_only", "question-only reference, trained the same way", ["generate"],
                  lambda: self.train_qa("question_only"),
                  finished(o / "question_only", "question_only", a_epochs, "question_only"), [o / "question_only"],
                  {"flags": self.avst_recipe.flags()}, resumes=True),
            Stage("test_avst", "AVST on the test split", ["avst"], lambda: self.test_qa("avst"),
                  tested(o / "avst_test.json", self.avst_ckpt), [o / "avst_test.json"]),
            Stage("test_question_only", "question-only on the test split", ["question_only"],
                  lambda: self.test_qa("question_only"), tested(o / "question_only_test.json", question_only),
                  [o / "question_only_test.json"]),
            Stage("grounding_score", "where the attention peaks, against the known boxes", ["avst", "grounding"],
                  self.score, tested(o / "grounding_score.json", self.avst_ckpt,
                                     lambda r: r.get("checkpoints", {}).get("avst", {}).get("sha256")),
                  [o / "grounding_score.json"]),
            Stage("visualise", "attention sheets", ["avst", "grounding"] + (["frames"] if self.tiny else []), self.vis,
                  self.sheets_check, [o / "vis" / "avst", o / "vis" / "grounding", self.vis_manifest],
                  {"sheets": self.args.sheets}),
        ]
