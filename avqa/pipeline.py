"""The whole pipeline on the embedded synthetic default, in one command:

    python -m avqa.pipeline            # generate, extract (VGGish and 14x14), pre-train, train,
                                       # test, score, visualise
    python -m avqa.pipeline --tiny     # a handful of short clips and one epoch (what CI runs); also
                                       # the pooled ResNet-18 and R(2+1)D features no model here reads

Every stage checks its own outputs (not just that they exist), the runs of the stages it depends
on and every file it reads (by size and modification time); a finished stage is skipped, deleting a
stage's outputs redoes that stage and the ones after it, and a file changed in place redoes the
stages that read it (the run says which files changed). One main job at a time writes into --data
and --out: a second is refused, naming the first one's process id. Outputs: the dataset and features under --data (the folders every script reads
by default), models, reports and sheets under --out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


from . import checkpoint, recipes, stamps
from .recipes import DEMO, TINY
from .tasks.config import RunConfig
from .utils import EXIT_CODES, atomic_write_text, fingerprint, metadata_path, run_lock, sha256, user_errors

INTERRUPTED = "interrupted last time: resuming"
READS_CHANGED = "the files it reads changed"
SYNTHETIC_RES18 = Path(__file__).resolve().parents[1] / "feat_script" / "weights" / "resnet18_synthetic.pth"
BUNDLED_AVST = Path(__file__).resolve().parents[1] / "net_grd_avst" / "avst_models" / "avst.pt"


@dataclass
class Stage:
    name: str
    what: str
    needs: list[str]
    run: Callable[[], None]
    check: Callable[[], str | None]          # None when the outputs are valid, else why not
    outputs: list[Path]
    config: dict = field(default_factory=dict)
    keep_outputs: bool = False               # True: the stage itself knows which of its old outputs still hold
    resumes: bool = False                    # True (training): only an interrupted run's outputs are kept, to resume


class Pipeline:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.data = Path(args.data)
        self.out = Path(args.out)
        self.stamps = self.out / ".stages"
        self.tiny = args.tiny
        self.stages: dict[str, Stage] = {}
        self.report: list[dict] = []
        self.replaced: dict[str, dict | None] = {}  # the stamp of each stage being redone, from its last run
        self._define()

    # ------------------------------------------------------------------ stage bookkeeping

    def _stamp_path(self, name: str) -> Path:
        return self.stamps / f"{name}.json"

    def _stamp(self, name: str) -> dict | None:
        return stamps.read(self._stamp_path(name))

    def _upstream(self, stage: Stage) -> dict:
        return {n: (self._stamp(n) or {}).get("run_id") for n in stage.needs}

    def _reads(self, stage: Stage) -> dict:
        """The fingerprint of what a stage reads: the outputs of every stage it depends on, however far back."""
        seen, todo = set(), list(stage.needs)
        while todo:
            name = todo.pop()
            if name not in seen and name in self.stages:
                seen.add(name)
                todo += self.stages[name].needs
        return fingerprint(p for name in self.stages if name in seen for p in self.stages[name].outputs)

    def _why_stale(self, stage: Stage) -> tuple[stamps.Staleness | None, str | None]:
        """Why the stage runs again, as a value (None: its stamp holds) and in words (None: it is complete)."""
        stale = stamps.staleness(self._stamp(stage.name), stage.config, lambda: self._reads(stage),
                                 upstream=self._upstream(stage), older_without_reads=True)
        if stale is None:
            return None, stage.check()
        words = {stamps.NOT_RUN: "not run yet", stamps.SETTINGS: "settings changed",
                 stamps.UPSTREAM: "an earlier stage was redone", stamps.INTERRUPTED: INTERRUPTED}
        return stale, words.get(stale.reason) or f"{READS_CHANGED} ({'; '.join(stale.changed)})"

    def _clear(self, stage: Stage) -> None:
        """Outputs made from other inputs or settings (or of unknown origin) are removed before a stage reruns."""
        for p in stage.outputs:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def run(self) -> int:
        t_all = time.time()
        for stage in self.stages.values():
            stale, why = self._why_stale(stage)
            t0 = time.time()
            if why is None:
                status = "skipped (complete)"
                print(f"[{stage.name}] complete, skipped", flush=True)
            else:
                print(f"\n== {stage.name}: {stage.what} ({why}) ==", flush=True)
                self.replaced[stage.name] = self._stamp(stage.name)
                # fresh: the old outputs go first. A training stage keeps only an interrupted run's; the others
                # keep an interrupted run's and those that merely failed their check
                fresh = (stale is None or stale.fresh) if stage.resumes else stale is not None and stale.fresh
                if fresh and not stage.keep_outputs:
                    self._clear(stage)
                reads = self._reads(stage)  # before the stage runs: a file changed meanwhile redoes it next time
                # marked as started: a run killed in this stage resumes it next time, keeping what it finished
                stamps.write(self._stamp_path(stage.name), config=stage.config, upstream=self._upstream(stage),
                             reads=reads, run_id=None, complete=False)
                try:
                    stage.run()
                except SystemExit as e:
                    if e.code not in (0, None):
                        print(f"[{stage.name}] failed: {e}", file=sys.stderr)
                        return 1
                problem = stage.check()
                if problem:
                    print(f"[{stage.name}] produced invalid outputs: {problem}", file=sys.stderr)
                    return 1
                run_id = hashlib.sha1(f"{stage.name}{time.time()}".encode()).hexdigest()[:12]
                stamps.write(self._stamp_path(stage.name), config=stage.config, upstream=self._upstream(stage),
                             reads=reads, run_id=run_id, complete=True)
                status = "ran"
            self.report.append({"stage": stage.name, "status": status, "seconds": round(time.time() - t0, 1),
                                "outputs": [str(p) for p in stage.outputs]})
        self._summary(time.time() - t_all)
        return 0

    # ------------------------------------------------------------------ the stages

    @staticmethod
    def _bundle_set_is(flags: dict, shipped: Path) -> bool:
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

    def _define(self) -> None:
        from .features.extract import (extract_audio, extract_frames, extract_vggish, extract_visual, valid_frames,
                                       valid_npy, valid_wav)
        from .features.logmel import SAMPLE_RATE
        from .features.pretrain import BUNDLED_VGGISH, RECIPES
        from .tasks import grounding, qa
        from .synthetic.generate import describe, generate, is_complete, parse_args as gen_args, set_flags
        a, d, o = self.args, self.data, self.out
        gen_flags = ["--out", str(d), "--seed", str(a.seed), *(TINY["clips"] if self.tiny else []),
                     *(["--num_clips", str(a.num_clips)] if a.num_clips else [])]
        gen = gen_args(gen_flags)
        seconds = gen.seconds

        def videos() -> list[str]:
            manifest = json.loads((d / "synthetic.json").read_text())
            return [v for vs in manifest["videos"].values() for v in vs]

        def gen_check():
            return None if is_complete(gen) else "incomplete set, or made with other flags"

        def each_file(folder: Path, suffix: str, valid: Callable[[Path], bool]) -> str | None:
            for v in videos():
                if not valid(folder / f"{v}{suffix}"):
                    return f"{folder / (v + suffix)} missing or invalid"
            return None

        def feats_check(name: str, shape: tuple) -> Callable[[], str | None]:
            def check():
                meta = metadata_path(d / "feats" / name)
                if not meta.exists() or json.loads(meta.read_text()).get("seconds") != seconds:
                    return f"{meta} missing or for another clip length"
                return each_file(d / "feats" / name, ".npy", lambda p: valid_npy(p, (seconds, *shape)))
            return check

        def finished(ckpt_dir: Path, name: str, epochs: int, model: str) -> Callable[[], str | None]:
            def check():
                files = checkpoint.Files(ckpt_dir, name, model)
                last, best = files.last, files.best
                try:
                    state, best_state = checkpoint.load_file(last), checkpoint.load_file(best)
                except Exception:  # noqa: BLE001 - missing or unreadable: train again
                    return f"{last} or {best} missing or unreadable"
                if state.get("model") != model or state.get("epoch") != epochs or best_state.get("model") != model:
                    return f"{last} is not a finished {epochs}-epoch {model} run"
                return None
            return check

        def tested(results: Path, ckpt: Path,
                   made_from: Callable[[dict], str | None] | None = None) -> Callable[[], str | None]:
            """The report exists and was made from the checkpoint as it is now (``made_from``: its hash there)."""
            made_from = made_from or (lambda r: r.get("checkpoint_sha256"))

            def check():
                try:
                    r = json.loads(results.read_text())
                except (OSError, ValueError):
                    return f"{results} missing"
                return None if ckpt.is_file() and made_from(r) == sha256(ckpt) else "the checkpoint changed"
            return check

        vis_manifest = o / "vis" / "sheets.json"

        def sheets_check() -> str | None:
            try:
                m = json.loads(vis_manifest.read_text())
            except (OSError, ValueError):
                return f"{vis_manifest} missing"
            if m.get("checkpoints") != {k: sha256(p) if p.is_file() else None for k, p in vis_ckpts.items()}:
                return "a checkpoint changed"
            if not m["sheets"].get("avst") or not m["sheets"].get("grounding"):
                return "no sheets"
            for files in m["sheets"].values():
                for name, digest in files.items():
                    f = o / "vis" / name
                    if not f.is_file() or sha256(f) != digest:
                        return f"{f} missing or changed"
            return None

        feats = d / "feats"

        def feature_outputs(name: str) -> list[Path]:
            return [feats / name, metadata_path(feats / name)]

        vggish_weights = d / "weights" / "vggish_synthetic.pth"
        res18_weights = SYNTHETIC_RES18

        def weights_check(path: Path, remake: str) -> Callable[[], str | None]:
            """The weights file matches the sha256 its record gives (a damaged or replaced file is remade)."""
            def check():
                recorded = _recorded_sha256(path)
                if recorded is None:
                    return f"{path} has no record beside it ({remake})"
                return None if path.is_file() and sha256(path) == recorded else f"{path} missing or damaged ({remake})"
            return check

        def bundled_weights_ok():
            problem = weights_check(res18_weights, "restore it with git checkout, or remake it with "
                                                   "python -m avqa.features.pretrain res18, about 10 minutes")()
            if problem:
                raise SystemExit(problem)

        bundled_vggish = not self.tiny and BUNDLED_VGGISH.is_file()  # --tiny trains its own, to check that path

        def make_vggish():
            from .features.pretrain import main as pretrain_main
            flags = ["--assemble"] if bundled_vggish else TINY["vggish_weights"] if self.tiny else []
            _exit(pretrain_main(["vggish", "--out", str(vggish_weights), *flags]))

        def extract_14x14(name: str, bf16: bool):
            bundled_weights_ok()
            _report(extract_visual(name, video_path=d / "videos", out_dir=feats / name, seconds=seconds,
                                   weights=str(res18_weights), seed=0, device=a.device, bf16=bf16, jpeg_quality=None,
                                   prefetch=2, overwrite=False))

        def run_config(script: str, recipe: Sequence[str] = (), **settings) -> RunConfig:
            """A task's config on this job's set and features: ``script``'s defaults, a recipe, ``settings``."""
            return RunConfig.for_script(
                script, audio_dir=str(feats / "vggish"), video_res14x14_dir=str(feats / "res18_14x14"),
                label_train=str(d / "json" / "avqa-train.json"), label_val=str(d / "json" / "avqa-val.json"),
                label_test=str(d / "json" / "avqa-test.json"), tensorboard_dir=str(o / "runs"), device=a.device,
                **recipes.fields(list(recipe), script), **settings)

        grd_flags = TINY["grounding"] if self.tiny else DEMO["grounding"]
        avst_flags = TINY["avst"] if self.tiny else DEMO["avst"]
        g_epochs = recipes.fields(grd_flags, "grounding")["epochs"]
        a_epochs = recipes.fields(avst_flags)["epochs"]
        grd_ckpt = checkpoint.trained_path(o / "grounding", "main_grounding_gen", "grounding")
        avst_ckpt = checkpoint.trained_path(o / "avst", "avst")

        def train_qa(model: str):
            # resume: continues a run killed in this stage (its outputs are cleared whenever its inputs change)
            start = {"pretrained_grounding": str(grd_ckpt)} if model == "avst" else {}
            _task(qa.run, run_config("avst", avst_flags, model=model, model_save_dir=str(o / model), checkpoint=model,
                                     resume=True, **start))

        def test_qa(model: str, save_dir: Path | None = None, results: Path | None = None):
            _task(qa.run, run_config("avst", mode="test", model=model, model_save_dir=str(save_dir or o / model),
                                     checkpoint=model, results=str(results or o / f"{model}_test.json")))

        def pretrain():
            _task(grounding.run, run_config("grounding", grd_flags, model_save_dir=str(o / "grounding"), resume=True))

        def score():
            from .grounding_score import main as score_main
            _exit(score_main(["--model", "grounding", "--checkpoint", str(grd_ckpt), "--model", "avst", "--checkpoint",
                              str(avst_ckpt), "--label_train", str(d / "json" / "avqa-train.json"),
                              "--label_test", str(d / "json" / "avqa-test.json"), "--ground_truth", str(d / "ground_truth"),
                              "--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
                              "--out", str(o / "grounding_score.json")]))

        vis_ckpts = {"avst": avst_ckpt, "grounding": grd_ckpt}

        def vis():
            from .visualize import main as vis_main
            common = ["--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
                      "--frames_dir", str(d / "frames"), "--videos_dir", str(d / "videos"),
                      "--label_test", str(d / "json" / "avqa-test.json"), "--count", str(a.sheets)]
            _exit(vis_main(False, [*common, "--label_train", str(d / "json" / "avqa-train.json"),
                                   "--model_save_dir", str(o / "avst"), "--checkpoint", "avst",
                                   "--out_dir", str(o / "vis" / "avst")]))
            _exit(vis_main(True, [*common, "--model_save_dir", str(o / "grounding"), "--out_dir", str(o / "vis" / "grounding")]))
            written = {k: {str(p.relative_to(o / "vis")): sha256(p) for p in sorted((o / "vis" / k).glob("*.png"))}
                       for k in ("avst", "grounding")}
            atomic_write_text(vis_manifest, json.dumps(
                {"checkpoints": {k: sha256(p) for k, p in vis_ckpts.items()}, "sheets": written}, indent=1))

        def make_set():
            # a set this pipeline made before (its stamp says so) is its own to replace when the settings change
            gen.force = gen.force or self.replaced.get("generate") is not None
            print(describe(gen, generate(gen)))

        defs = [
            Stage("generate", "synthetic MUSIC-AVQA-format clips, annotations, ground truth", [], make_set, gen_check,
                  [d / "videos", d / "json", d / "ground_truth"], {"flags": gen_flags}, keep_outputs=True),
            Stage("audio", "16 kHz wav of every clip", ["generate"],
                  lambda: _report(extract_audio(d / "videos", d / "audio")),
                  lambda: each_file(d / "audio", ".wav", lambda p: valid_wav(p, SAMPLE_RATE)), [d / "audio"]),
            Stage("frames", "1 fps JPEG frames", ["generate"],
                  lambda: _report(extract_frames(d / "videos", d / "frames", seconds)),
                  lambda: each_file(d / "frames", "", lambda p: valid_frames(p, seconds)), [d / "frames"]),
            Stage("vggish_weights", "VGGish taught to name the playing instruments on a synthetic sound corpus"
                  + (" (assembled from its bundled embedding layer)" if bundled_vggish else ""), [],
                  make_vggish, weights_check(vggish_weights, "made anew"), [vggish_weights],
                  {"bundle_sha256": _recorded_sha256(BUNDLED_VGGISH)} if bundled_vggish else
                  {"flags": TINY["vggish_weights"] if self.tiny else [], "recipe": RECIPES["vggish"]}),
            Stage("vggish", "VGGish features [T,128] (the weights above)", ["audio", "vggish_weights"],
                  lambda: _report(extract_vggish(d / "audio", feats / "vggish", seconds, str(vggish_weights), 0,
                                                 a.device, False, 2, False)),
                  feats_check("vggish", (128,)), feature_outputs("vggish")),
            Stage("res18_14x14", f"ResNet-18 14x14 features [T,512,14,14] (the bundled {res18_weights.name})",
                  ["generate"], lambda: extract_14x14("res18_14x14", False),
                  feats_check("res18_14x14", (512, 14, 14)), feature_outputs("res18_14x14"),
                  {"weights_sha256": _recorded_sha256(res18_weights)}),
            # the two feature kinds no model here reads: --tiny checks their extractors end to end, in bfloat16
            # (recorded in their metadata); the main job leaves them out to keep within its time
            Stage("res18", f"ResNet-18 pooled features [T,512] ({res18_weights.name}, bfloat16)", ["generate"],
                  lambda: extract_14x14("res18", True), feats_check("res18", (512,)), feature_outputs("res18"),
                  {"weights_sha256": _recorded_sha256(res18_weights)}),
            Stage("r2plus1d_18", "R(2+1)D-18 features [T,512] (seeded random init, bfloat16)", ["generate"],
                  lambda: _report(extract_visual("r2plus1d_18", video_path=d / "videos", out_dir=feats / "r2plus1d_18",
                                                 seconds=seconds, weights=None, seed=0, device=a.device, bf16=True,
                                                 jpeg_quality=None, prefetch=2, overwrite=False)),
                  feats_check("r2plus1d_18", (512,)), feature_outputs("r2plus1d_18")),
            Stage("grounding", "grounding pre-training", ["vggish", "res18_14x14"],
                  pretrain, finished(o / "grounding", "main_grounding_gen", g_epochs, "grounding"), [o / "grounding"],
                  {"flags": grd_flags}, resumes=True),
            Stage("test_grounding", "grounding's match accuracy on the test split", ["grounding"],
                  lambda: _task(grounding.run, run_config("grounding", mode="test", model_save_dir=str(o / "grounding"),
                                                          results=str(o / "grounding_test.json"))),
                  tested(o / "grounding_test.json", grd_ckpt), [o / "grounding_test.json"]),
            Stage("avst", "AVST training, starting from the grounding model", ["grounding"],
                  lambda: train_qa("avst"), finished(o / "avst", "avst", a_epochs, "avst"), [o / "avst"],
                  {"flags": avst_flags}, resumes=True),
            Stage("question_only", "question-only reference, trained the same way", ["generate"],
                  lambda: train_qa("question_only"),
                  finished(o / "question_only", "question_only", a_epochs, "question_only"), [o / "question_only"],
                  {"flags": avst_flags}, resumes=True),
            Stage("test_avst", "AVST on the test split", ["avst"], lambda: test_qa("avst"),
                  tested(o / "avst_test.json", avst_ckpt), [o / "avst_test.json"]),
            Stage("test_question_only", "question-only on the test split", ["question_only"],
                  lambda: test_qa("question_only"),
                  tested(o / "question_only_test.json", checkpoint.trained_path(o / "question_only", "question_only")),
                  [o / "question_only_test.json"]),
            Stage("grounding_score", "where the attention peaks, against the known boxes", ["avst", "grounding"], score,
                  tested(o / "grounding_score.json", avst_ckpt,
                         lambda r: r.get("checkpoints", {}).get("avst", {}).get("sha256")),
                  [o / "grounding_score.json"]),
            Stage("visualise", "attention sheets", ["avst", "grounding", "frames"], vis,
                  sheets_check, [o / "vis" / "avst", o / "vis" / "grounding", vis_manifest],
                  {"sheets": a.sheets}),
        ]
        if not self.tiny:
            defs = [s for s in defs if s.name not in ("res18", "r2plus1d_18")]
        if not self.tiny and self._bundle_set_is(set_flags(gen), BUNDLED_AVST):
            # the set the bundle was trained on: it must score as recorded
            defs.append(Stage("test_bundled", "the bundled AVST checkpoint on this test split", ["vggish", "res18_14x14"],
                              lambda: test_qa("avst", BUNDLED_AVST.parent, o / "bundled_avst_test.json"),
                              tested(o / "bundled_avst_test.json", BUNDLED_AVST),
                              [o / "bundled_avst_test.json"]))
        self.stages = {s.name: s for s in defs}

    # ------------------------------------------------------------------ the end

    def _summary(self, total: float) -> None:
        from .grounding_score import format_scores
        from .machine import describe_machine
        o = self.out
        print("\n" + "=" * 78)
        tables = {}
        for model in ("avst", "question_only"):
            p = o / f"{model}_test.json"
            if p.exists():
                tables[model] = json.loads(p.read_text())["table"]
        if tables:
            print("test accuracy per question type (synthetic test split):")
            print(f"  {'':<20}" + "".join(f"{m:>16}" for m in tables))
            for row in next(iter(tables.values())):
                print(f"  {row:<20}" + "".join(
                    f"{tables[m][row]['accuracy']:>15.2f}%" if tables[m][row]["accuracy"] is not None else f"{'-':>16}"
                    for m in tables))
            if len(tables) == 2:
                gaps = {row: tables["avst"][row]["accuracy"] - tables["question_only"][row]["accuracy"]
                        for row in ("Overall", "AV Location", "AV Temporal")
                        if None not in (tables["avst"][row]["accuracy"], tables["question_only"][row]["accuracy"])}
                print("  AVST - question only: " + ", ".join(f"{row} {gap:+.2f}" for row, gap in gaps.items())
                      + " points")
        grounding = checkpoint.Files(o / "grounding", "main_grounding_gen", "grounding").last
        if grounding.exists():
            history = checkpoint.load_dict(grounding).get("history", [])
            if history:
                best = max(h["val_accuracy"] for h in history[1:]) if len(history) > 1 else None
                print(f"\ngrounding pre-training, val match accuracy (chance 50%): before training "
                      f"{history[0]['val_accuracy']:.2f}%" + (f", best {best:.2f}%" if best is not None else ""))
                print("  train loss by epoch (ln 2 = 0.693 is chance): "
                      + " ".join(f"{h['loss']:.3f}" for h in history[1:]))
        if (o / "grounding_test.json").exists():
            r = json.loads((o / "grounding_test.json").read_text())
            print(f"  test match accuracy ({r['pairs']} pairs): {r['match_accuracy']:.2f}% "
                  f"(the same model untrained: {r['untrained_match_accuracy']:.2f}%)")
        score = o / "grounding_score.json"
        if score.exists():
            print("\nwhere the sound-guided attention peaks on the test clips (untrained: the same model and seed, "
                  "no training;\nchance: uniform attention):")
            print(format_scores(json.loads(score.read_text())["scores"]))
        print(f"\nstages, on {describe_machine()}:")
        for r in self.report:
            print(f"  {r['stage']:<20} {r['status']:<20} {r['seconds']:>7.1f} s   {', '.join(r['outputs'])}")
        print(f"  {'total':<20} {'':<20} {total:>7.1f} s")
        atomic_write_text(o / "summary.json", json.dumps({"machine": describe_machine(), "stages": self.report,
                                                          "seconds": round(total, 1), "tables": tables}, indent=1))
        print(f"\nsummary: {o / 'summary.json'}; TensorBoard: tensorboard --logdir {o / 'runs'}")


def _recorded_sha256(weights: Path) -> str | None:
    """The sha256 a weights file's record gives (a stage made with other weights is redone)."""
    from .features.backbones import record_path
    try:
        return json.loads(record_path(weights).read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def _task(run: Callable[[RunConfig], int], cfg: RunConfig) -> None:
    """Run a task as its script would: a file it cannot use ends the stage with one sentence."""
    _exit(user_errors(run)(cfg))


def _exit(code: int | None) -> None:
    if code not in (0, None):
        raise SystemExit(code)


def _report(report) -> None:
    print(report.summary())
    _exit(report.exit_code())


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data", help="dataset and features (default: data, where every script looks)")
    p.add_argument("--out", default="outputs", help="models, reports and sheets (default: outputs)")
    p.add_argument("--tiny", action="store_true", help="16 clips of 4 s and one epoch: a quick end-to-end check")
    p.add_argument("--num_clips", type=int, default=None, help="clips to generate (default: 480, or 16 with --tiny)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    p.add_argument("--sheets", type=int, default=6, help="attention sheets to write")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--bundle", action="store_true",
                   help="maintainers: afterwards, ship the AVST checkpoint to net_grd_avst/avst_models/")
    args = p.parse_args(argv)
    if args.bundle and (args.tiny or args.num_clips):
        p.error("--bundle ships the checkpoint of the default set only")
    with run_lock(args.data, "pipeline"), run_lock(args.out, "pipeline"):
        code = Pipeline(args).run()
        if code == 0 and args.bundle:
            from .maintainer import bundle
            bundle(Path(args.data), Path(args.out))
    return code


if __name__ == "__main__":
    sys.exit(main())
