"""The main job's own stages (python -m avqa.pipeline): the synthetic set and the features its families
share; what each one runs, how it checks its outputs, what it writes and which settings its stamp
holds. Each family's stages follow (its entry in avqa.registry); avqa.pipeline skips, resumes and redoes
them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .features.extract import (extract_audio, extract_frames, extract_vggish, extract_visual, valid_frames, valid_npy,
                               valid_wav)
from .features.logmel import SAMPLE_RATE
from .features.weights import BUNDLED_VGGISH, RECIPES
from .recipes import TINY
from .stage import Check, Stage, exit_on_failure, print_report, recorded_sha256, weights_check
from .synthetic.generate import describe, generate, is_complete, parse_args as gen_args
from .utils import metadata_path

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_RES18 = REPO / "feat_script" / "weights" / "resnet18_synthetic.pth"


class MainJob:
    """The stages of one main job on --data and --out (``replaced``: the stamps of the stages being redone)."""

    def __init__(self, args, replaced: dict):
        a, d, o = args, Path(args.data), Path(args.out)
        self.args, self.tiny, self.data, self.out, self.feats, self.replaced = a, a.tiny, d, o, d / "feats", replaced
        self.gen_flags = ["--out", str(d), "--seed", str(a.seed), *(TINY["clips"] if self.tiny else []),
                          *(["--num_clips", str(a.num_clips)] if a.num_clips else [])]
        self.gen = gen_args(self.gen_flags)
        self.seconds = self.gen.seconds
        self.vggish_weights, self.res18_weights = d / "weights" / "vggish_synthetic.pth", SYNTHETIC_RES18
        self.bundled_vggish = not self.tiny and BUNDLED_VGGISH.is_file()  # --tiny trains its own, to check that path
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

    # ------------------------------------------------------------------ the stages, in order

    def stages(self) -> list[Stage]:
        """The set's own stages: the clips, their sound and frames, VGGish and the 14x14 features (the families'
        stages follow them: avqa.registry)."""
        defs = self._data_stages()
        if not self.tiny:
            defs = [s for s in defs if s.name not in ("res18", "r2plus1d_18", "frames")]
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
