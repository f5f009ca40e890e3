"""The main job's stages (python -m avqa.pipeline): what each one runs, how it checks its outputs,
what it writes and which settings its stamp holds. avqa.pipeline skips, resumes and redoes them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from . import checkpoint, recipes
from .features.extract import (extract_audio, extract_frames, extract_vggish, extract_visual, valid_frames, valid_npy,
                               valid_wav)
from .features.logmel import SAMPLE_RATE
from .features.pretrain import BUNDLED_VGGISH, RECIPES
from .recipes import DEMO, TINY
from .synthetic.generate import describe, generate, is_complete, parse_args as gen_args, set_flags
from .tasks import grounding, qa
from .tasks.cli import build_parser
from .tasks.config import RunConfig
from .stage import (Check, Stage, exit_on_failure, finished, print_report, recorded_sha256, run_task, tested,
                    weights_check)
from .utils import atomic_write_text, metadata_path, sha256

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_RES18 = REPO / "feat_script" / "weights" / "resnet18_synthetic.pth"
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


class MainJob:
    """The stages of one main job on --data and --out (``replaced``: the stamps of the stages being redone)."""

    def __init__(self, args, replaced: dict):
        a, d, o = args, Path(args.data), Path(args.out)
        self.args, self.tiny, self.data, self.out, self.feats, self.replaced = a, a.tiny, d, o, d / "feats", replaced
        self.gen_flags = ["--out", str(d), "--seed", str(a.seed), *(TINY["clips"] if self.tiny else []),
                          *(["--num_clips", str(a.num_clips)] if a.num_clips else [])]
        self.gen = gen_args(self.gen_flags)
        self.seconds = self.gen.seconds
        self.grd_flags = TINY["grounding"] if self.tiny else DEMO["grounding"]
        self.avst_flags = TINY["avst"] if self.tiny else DEMO["avst"]
        self.grd_ckpt = checkpoint.trained_path(o / "grounding", "main_grounding_gen", "grounding")
        self.avst_ckpt = checkpoint.trained_path(o / "avst", "avst")
        self.vggish_weights, self.res18_weights = d / "weights" / "vggish_synthetic.pth", SYNTHETIC_RES18
        self.bundled_vggish = not self.tiny and BUNDLED_VGGISH.is_file()  # --tiny trains its own, to check that path
        self.vis_manifest = o / "vis" / "sheets.json"
        self.vis_ckpts = {"avst": self.avst_ckpt, "grounding": self.grd_ckpt}
        # --bf16: features in bfloat16; the figures differ from float32's, so the stamps of the two
        # extraction stages record the precision (switching redoes them and everything after)
        self.bf16 = a.bf16
        self.precision = {"precision": "bfloat16"} if self.bf16 else {}

    # ------------------------------------------------------------------ checks of this job's outputs

    def videos(self) -> list[str]:
        manifest = json.loads((self.data / "synthetic.json").read_text())
        return [v for vs in manifest["videos"].values() for v in vs]

    def gen_check(self) -> str | None:
        return None if is_complete(self.gen) else "incomplete set, or made with other flags"

    def each_file(self, folder: Path, suffix: str, valid: Callable[[Path], bool]) -> str | None:
        for v in self.videos():
            if not valid(folder / f"{v}{suffix}"):
                return f"{folder / (v + suffix)} missing or invalid"
        return None

    def feats_check(self, name: str, shape: tuple) -> Check:
        def check():
            meta = metadata_path(self.feats / name)
            if not meta.exists() or json.loads(meta.read_text()).get("seconds") != self.seconds:
                return f"{meta} missing or for another clip length"
            return self.each_file(self.feats / name, ".npy", lambda p: valid_npy(p, (self.seconds, *shape)))
        return check

    def feature_outputs(self, name: str) -> list[Path]:
        return [self.feats / name, metadata_path(self.feats / name)]

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

    def make_set(self) -> None:
        # a set this pipeline made before (its stamp says so) is its own to replace when the settings change
        self.gen.force = self.gen.force or self.replaced.get("generate") is not None
        print(describe(self.gen, generate(self.gen)))

    def make_vggish(self) -> None:
        from .features.pretrain import main as pretrain_main
        flags = ["--assemble"] if self.bundled_vggish else TINY["vggish_weights"] if self.tiny else []
        exit_on_failure(pretrain_main(["vggish", "--out", str(self.vggish_weights), *flags]))

    def extract_vggish(self) -> None:
        print_report(extract_vggish(self.data / "audio", self.feats / "vggish", self.seconds, str(self.vggish_weights), 0,
                               self.args.device, self.bf16, 2, False))

    def extract_visual(self, name: str, bf16: bool, weights: Path | None) -> None:
        if weights is not None:
            problem = weights_check(weights, "restore it with git checkout, or remake it with "
                                             "python -m avqa.features.pretrain res18 (docs/synthetic.md)")()
            if problem:
                raise SystemExit(problem)
        print_report(extract_visual(name, video_path=self.data / "videos", out_dir=self.feats / name, seconds=self.seconds,
                               weights=None if weights is None else str(weights), seed=0, device=self.args.device,
                               bf16=bf16, jpeg_quality=None, prefetch=2, overwrite=False))

    def run_config(self, script: str, recipe: Sequence[str] = (), **settings) -> RunConfig:
        """A task's config on this job's set and features: ``script``'s defaults, a recipe, ``settings``."""
        d = self.data
        return RunConfig.for_script(
            script, audio_dir=str(self.feats / "vggish"), video_res14x14_dir=str(self.feats / "res18_14x14"),
            label_train=str(d / "json" / "avqa-train.json"), label_val=str(d / "json" / "avqa-val.json"),
            label_test=str(d / "json" / "avqa-test.json"), tensorboard_dir=str(self.out / "runs"),
            device=self.args.device, **recipes.fields(recipe, build_parser(script, "")), **settings)

    def pretrain(self) -> None:
        run_task(grounding.run, self.run_config("grounding", self.grd_flags, model_save_dir=str(self.out / "grounding"),
                                             resume=True))

    def test_grounding(self) -> None:
        run_task(grounding.run, self.run_config("grounding", mode="test", model_save_dir=str(self.out / "grounding"),
                                             results=str(self.out / "grounding_test.json")))

    def train_qa(self, model: str) -> None:
        # resume: continues a run killed in this stage (its outputs are cleared whenever its inputs change)
        start = {"pretrained_grounding": str(self.grd_ckpt)} if model == "avst" else {}
        run_task(qa.run, self.run_config("avst", self.avst_flags, model=model, model_save_dir=str(self.out / model),
                                      checkpoint=model, resume=True, **start))

    def test_qa(self, model: str, save_dir: Path | None = None, results: Path | None = None) -> None:
        run_task(qa.run, self.run_config("avst", mode="test", model=model, model_save_dir=str(save_dir or self.out / model),
                                      checkpoint=model, results=str(results or self.out / f"{model}_test.json")))

    def score(self) -> None:
        from .grounding_score import main as score_main
        d, feats = self.data, self.feats
        exit_on_failure(score_main(["--model", "grounding", "--checkpoint", str(self.grd_ckpt), "--model", "avst",
                          "--checkpoint", str(self.avst_ckpt), "--label_train", str(d / "json" / "avqa-train.json"),
                          "--label_test", str(d / "json" / "avqa-test.json"), "--ground_truth", str(d / "ground_truth"),
                          "--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
                          "--out", str(self.out / "grounding_score.json")]))

    def vis(self) -> None:
        from .visualize import main as vis_main
        d, o, feats = self.data, self.out, self.feats
        common = ["--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
                  "--frames_dir", str(d / "frames"), "--videos_dir", str(d / "videos"),
                  "--label_test", str(d / "json" / "avqa-test.json"), "--count", str(self.args.sheets)]
        exit_on_failure(vis_main(False, [*common, "--label_train", str(d / "json" / "avqa-train.json"),
                               "--model_save_dir", str(o / "avst"), "--checkpoint", "avst",
                               "--out_dir", str(o / "vis" / "avst")]))
        exit_on_failure(vis_main(True, [*common, "--model_save_dir", str(o / "grounding"), "--out_dir", str(o / "vis" / "grounding")]))
        written = {k: {str(p.relative_to(o / "vis")): sha256(p) for p in sorted((o / "vis" / k).glob("*.png"))}
                   for k in ("avst", "grounding")}
        atomic_write_text(self.vis_manifest, json.dumps(
            {"checkpoints": {k: sha256(p) for k, p in self.vis_ckpts.items()}, "sheets": written}, indent=1))

    # ------------------------------------------------------------------ the stages, in order

    def stages(self) -> list[Stage]:
        defs = self._data_stages() + self._model_stages()
        if not self.tiny:
            defs = [s for s in defs if s.name not in ("res18", "r2plus1d_18", "frames")]
        if not self.tiny and bundle_set_is(set_flags(self.gen), BUNDLED_AVST):
            # the set the bundle was trained on: it must score as recorded
            defs.append(Stage("test_bundled", "the bundled AVST checkpoint on this test split", ["vggish", "res18_14x14"],
                              lambda: self.test_qa("avst", BUNDLED_AVST.parent, self.out / "bundled_avst_test.json"),
                              tested(self.out / "bundled_avst_test.json", BUNDLED_AVST),
                              [self.out / "bundled_avst_test.json"]))
        return defs

    def _data_stages(self) -> list[Stage]:
        d, seconds, res18 = self.data, self.seconds, self.res18_weights
        return [
            Stage("generate", "synthetic MUSIC-AVQA-format clips, annotations, ground truth", [], self.make_set,
                  self.gen_check, [d / "videos", d / "json", d / "ground_truth"], {"flags": self.gen_flags},
                  keep_outputs=True),
            Stage("audio", "16 kHz wav of every clip", ["generate"],
                  lambda: print_report(extract_audio(d / "videos", d / "audio")),
                  lambda: self.each_file(d / "audio", ".wav", lambda p: valid_wav(p, SAMPLE_RATE)), [d / "audio"]),
            Stage("frames", "1 fps JPEG frames", ["generate"],
                  lambda: print_report(extract_frames(d / "videos", d / "frames", seconds)),
                  lambda: self.each_file(d / "frames", "", lambda p: valid_frames(p, seconds)), [d / "frames"]),
            Stage("vggish_weights", "VGGish taught to name the playing instruments on a synthetic sound corpus"
                  + (" (assembled from its bundled embedding layer)" if self.bundled_vggish else ""), [],
                  self.make_vggish, weights_check(self.vggish_weights, "made anew"), [self.vggish_weights],
                  {"bundle_sha256": recorded_sha256(BUNDLED_VGGISH)} if self.bundled_vggish else
                  {"flags": TINY["vggish_weights"] if self.tiny else [], "recipe": RECIPES["vggish"]}),
            Stage("vggish", "VGGish features [T,128] (the weights above)", ["audio", "vggish_weights"],
                  self.extract_vggish, self.feats_check("vggish", (128,)), self.feature_outputs("vggish"),
                  dict(self.precision)),
            Stage("res18_14x14", f"ResNet-18 14x14 features [T,512,14,14] (the bundled {res18.name})",
                  ["generate"], lambda: self.extract_visual("res18_14x14", self.bf16, res18),
                  self.feats_check("res18_14x14", (512, 14, 14)), self.feature_outputs("res18_14x14"),
                  {"weights_sha256": recorded_sha256(res18), **self.precision}),
            # what no model here reads: --tiny checks these extractors end to end (the two feature kinds in
            # bfloat16, recorded in their metadata); the main job leaves them out to keep within its time, and its
            # sheets decode their few frames from the videos
            Stage("res18", f"ResNet-18 pooled features [T,512] ({res18.name}, bfloat16)", ["generate"],
                  lambda: self.extract_visual("res18", True, res18), self.feats_check("res18", (512,)),
                  self.feature_outputs("res18"), {"weights_sha256": recorded_sha256(res18)}),
            Stage("r2plus1d_18", "R(2+1)D-18 features [T,512] (seeded random init, bfloat16)", ["generate"],
                  lambda: self.extract_visual("r2plus1d_18", True, None),
                  self.feats_check("r2plus1d_18", (512,)), self.feature_outputs("r2plus1d_18")),
        ]

    def _model_stages(self) -> list[Stage]:
        o = self.out
        g_epochs = recipes.fields(self.grd_flags, build_parser("grounding", ""))["epochs"]
        a_epochs = recipes.fields(self.avst_flags, build_parser("avst", ""))["epochs"]
        question_only = checkpoint.trained_path(o / "question_only", "question_only")
        return [
            Stage("grounding", "grounding pre-training", ["vggish", "res18_14x14"], self.pretrain,
                  finished(o / "grounding", "main_grounding_gen", g_epochs, "grounding"), [o / "grounding"],
                  {"flags": self.grd_flags}, resumes=True),
            Stage("test_grounding", "grounding's match accuracy on the test split", ["grounding"], self.test_grounding,
                  tested(o / "grounding_test.json", self.grd_ckpt), [o / "grounding_test.json"]),
            Stage("avst", "AVST training, starting from the grounding model", ["grounding"],
                  lambda: self.train_qa("avst"), finished(o / "avst", "avst", a_epochs, "avst"), [o / "avst"],
                  {"flags": self.avst_flags}, resumes=True),
            Stage("question_only", "question-only reference, trained the same way", ["generate"],
                  lambda: self.train_qa("question_only"),
                  finished(o / "question_only", "question_only", a_epochs, "question_only"), [o / "question_only"],
                  {"flags": self.avst_flags}, resumes=True),
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
