"""Shared fixtures: the real annotation files (when present), one tiny synthetic set per session, its
features and trained models, and one tiny main job.

Tests that train or extract (seconds each, mostly through a script's command line run in the test's
process by ``run_here``) carry the marker ``e2e``; ``python -m pytest -q -m "not e2e"`` is the fast
tier. A fixture made with ``e2e_fixture`` trains or extracts, so every test that uses it, directly or
through another fixture, is marked too.
"""
from __future__ import annotations

import contextlib
import io
import os
import runpy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every child process (a script path puts its own folder first on sys.path) imports this tree's avqa, as
# the test process does, not an installed copy of another checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def _real_dir() -> Path | None:
    candidates = [os.environ.get("AVQA_REAL_ANNOTATIONS"), ROOT.parent / "shared" / "data" / "music_avqa",
                  ROOT / "shared" / "data" / "music_avqa"]
    for c in candidates:
        if c and (Path(c) / "json" / "avqa-test.json").is_file():
            return Path(c)
    return None


E2E_FIXTURES: set[str] = set()


def e2e_fixture(*args, **kwargs):
    """``pytest.fixture`` for a fixture that trains or extracts: the tests that use it are marked e2e."""
    def wrap(fn):
        E2E_FIXTURES.add(fn.__name__)
        return pytest.fixture(*args, **kwargs)(fn)
    return wrap


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


REAL = _real_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="the real MUSIC-AVQA annotation files are not here "
                                                     "(set AVQA_REAL_ANNOTATIONS to their folder)")
# MUSIC-AVQA v2.0's files (GNU GPL v3, never committed): beside the real annotations, or in ../shared/data
V2 = next((p for p in ([REAL.parent / "music_avqa_v2"] if REAL else []) + [ROOT.parent / "shared" / "data" / "music_avqa_v2"]
           if (p / "test_balance.json").is_file()), None)
needs_v2 = pytest.mark.skipif(V2 is None, reason="the MUSIC-AVQA v2.0 annotation files are not here "
                                                 "(../shared/data/music_avqa_v2/)")


def run(*args: str, cwd: Path = ROOT, check: bool = True, env: dict | None = None, timeout: int = 600):
    """Run a project command line with this Python; returns the CompletedProcess."""
    e = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=e, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}")
    return proc


def run_here(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    """``run`` in this process (no new Python and PyTorch start-up): for any command line whose test is
    not about a process of its own (extractions, trainings, refusals, ``--help``, test mode, reruns);
    ``run`` stays for kills, locks, shards, torchrun and a first run's own output. A script path or
    ``-m module``, run from the current folder; SystemExit gives the status. What a script may change
    in the process (torch's thread count and global random state, the environment) is put back, as a
    subprocess leaves it untouched."""
    import torch
    module = args[0] == "-m"
    threads, rng, environ = torch.get_num_threads(), torch.random.get_rng_state(), dict(os.environ)
    target, rest = (args[1], args[2:]) if module else (str(ROOT / args[0]), args[1:])
    out, err, code = io.StringIO(), io.StringIO(), 0
    argv, sys.argv = sys.argv, [target, *map(str, rest)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".* found in sys.modules", RuntimeWarning)  # a module run again
            if module:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
        if isinstance(e.code, str):
            err.write(e.code + "\n")  # what the interpreter prints for SystemExit("message")
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
        torch.random.set_rng_state(rng)
        os.environ.clear()
        os.environ.update(environ)
    proc = subprocess.CompletedProcess([sys.executable, *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {code}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}")
    return proc


TINY_FLAGS = ["--num_clips", "14", "--seconds", "4", "--seed", "3", "--questions_per_clip", "12",
              "--width", "160", "--height", "120", "--fps", "12", "--sample_rate", "16000", "--split", "0.6,0.2,0.2"]


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """14 clips of 4 s, generated once: videos, annotations and ground truth."""
    out = tmp_path_factory.mktemp("tiny") / "data"
    run_here("-m", "avqa.synthetic", "--out", str(out), *TINY_FLAGS)
    return out


AUDIO = "feat_script/extract_audio_cues/extract_audio.py"
VGG = "feat_script/extract_audio_feat/audio_feature_extractor.py"
X14 = "feat_script/extract_visual_feat_14x14/extract_14x14_feat.py"


def extract(d: Path, vggish: Path | None = None, res18: Path | None = None, bf16: bool = False) -> Path:
    """Sound, VGGish and 14x14 features of the set in ``d``, from the given weights or the seeded random
    init; ``bf16``: computed in bfloat16 (the extractors' --bf16)."""
    precision = ["--bf16"] if bf16 else []
    run_here(AUDIO, "--video_dir", str(d / "videos"), "--audio_dir", str(d / "audio"))
    run_here(VGG, "--audio_dir", str(d / "audio"), "--save_dir", str(d / "feats" / "vggish"),
             *(["--checkpoint", str(vggish)] if vggish else []), *precision)
    run_here(X14, "--video_path", str(d / "videos"), "--output_dir", str(d / "feats" / "res18_14x14"),
             *(["--weights", str(res18)] if res18 else []), *precision)
    return d


@e2e_fixture(scope="session")
def tiny_features(tiny_set: Path) -> Path:
    """The tiny set with wavs, VGGish and 14x14 features (random init), extracted once."""
    return extract(tiny_set)


SYNTHETIC_RES18 = ROOT / "feat_script" / "weights" / "resnet18_synthetic.pth"


@e2e_fixture(scope="session")
def synthetic_vggish(tmp_path_factory) -> Path:
    """The synthetic world's VGGish, assembled once from its shipped layer (the command is tested in test_pretrain)."""
    from avqa.features.pretrain import BUNDLED_VGGISH, assemble_vggish
    out = tmp_path_factory.mktemp("synthetic_vggish") / "vggish_synthetic.pth"
    assemble_vggish(BUNDLED_VGGISH, out)
    return out


def extract_taught(d: Path, vggish: Path) -> Path:
    """Sound, VGGish and 14x14 features of the set in ``d`` from the backbones taught the synthetic world,
    in the precision the main job picks by default (bfloat16 where this CPU computes it natively)."""
    from avqa.machine import native_bf16
    return extract(d, vggish, SYNTHETIC_RES18, bf16=native_bf16("cpu"))


AVST = "net_grd_avst/main_avst.py"
GRD = "grounding_gen/main_grd_gen.py"


def data_flags(d, feats=None):
    feats = feats or d / "feats"
    return ["--audio_dir", str(feats / "vggish"), "--video_res14x14_dir", str(feats / "res18_14x14"),
            "--label_train", str(d / "json" / "avqa-train.json"), "--label_val", str(d / "json" / "avqa-val.json"),
            "--label_test", str(d / "json" / "avqa-test.json"), "--quiet"]


TRAINED_RECIPE = ["--epochs", "2", "--batch-size", "16"]


def trained_avst_flags(features: Path, trained: Path) -> list[str]:
    """The flags that trained the shared AVST (the trained fixture), less its output folders."""
    return [*data_flags(features), *TRAINED_RECIPE, "--pretrained_grounding",
            str(trained / "grd" / "main_grounding_gen_best.pt")]


@e2e_fixture(scope="session")
def trained(tiny_features, tmp_path_factory):
    """Grounding pre-training then AVST, 2 epochs each, with TensorBoard on. Tests read it, or work on copies."""
    out = tmp_path_factory.mktemp("trained")
    run_here(GRD, *data_flags(tiny_features), *TRAINED_RECIPE, "--model_save_dir", str(out / "grd"),
             "--tensorboard_dir", str(out / "runs"))
    run_here(AVST, *trained_avst_flags(tiny_features, out), "--model_save_dir", str(out / "avst"),
             "--tensorboard_dir", str(out / "runs"))
    return out


MAIN_JOB = ["-m", "avqa.pipeline", "--tiny", "--data", "data", "--out", "out"]  # relative: a copy keeps its stamps


@e2e_fixture(scope="session")
def tiny_main_job(tmp_path_factory) -> tuple[Path, str]:
    """The tiny main job, run once in a process of its own (a first run's output) from its folder; its
    folder and stdout. Tests work on copies of the folder (shutil.copytree keeps the stamps valid)."""
    root = tmp_path_factory.mktemp("main_job")
    return root, run(*MAIN_JOB, cwd=root, timeout=900).stdout


def copy_of_main_job(tiny_main_job: tuple[Path, str], tmp_path_factory, name: str) -> Path:
    """A copy of the session's tiny main job for tests that change it; its stamps stay valid there."""
    root = tmp_path_factory.mktemp(name) / "job"
    shutil.copytree(tiny_main_job[0], root, symlinks=True)
    return root
