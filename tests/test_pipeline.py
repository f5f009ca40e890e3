"""The main job (python -m avqa.pipeline), in its tiny form: every stage runs, reruns skip, a deleted stage is redone."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from avqa.machine import describe_machine
from conftest import MAIN_JOB, copy_of_main_job, e2e_fixture, run_here

STAGES = ["generate", "audio", "frames", "vggish_weights", "vggish", "res18_14x14", "res18", "r2plus1d_18", "grounding",
          "test_grounding", "avst",
          "question_only", "test_avst", "test_question_only", "grounding_score", "visualise"]


@e2e_fixture(scope="module")
def pipeline(tiny_main_job, tmp_path_factory):
    """A copy of the session's tiny main job (these tests change it) and that first run's stdout."""
    return copy_of_main_job(tiny_main_job, tmp_path_factory, "pipeline"), tiny_main_job[1]


def rerun(root):
    """The main job again in ``root``, in this process; its stdout."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return run_here(*MAIN_JOB).stdout


def test_every_stage_runs_and_leaves_valid_outputs(pipeline):
    root, first = pipeline
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == STAGES
    assert all(s["status"] == "ran" for s in summary["stages"])
    from avqa.machine import native_bf16
    precision = "bfloat16" if native_bf16("cpu") else "float32"  # --precision auto
    # the summary names the CPU and the precision of the features
    assert summary["machine"] == describe_machine() and summary["feature_precision"] == precision
    assert f"on {describe_machine()} (VGGish and 14x14 features in {precision}):" in first
    d, o = root / "data", root / "out"
    videos = sorted(p.stem for p in (d / "videos").glob("*.mp4"))
    assert len(videos) == 16
    for v in videos:
        assert (d / "audio" / f"{v}.wav").stat().st_size > 0
        assert len(list((d / "frames" / v).glob("*.jpg"))) == 4
        assert np.load(d / "feats" / "vggish" / f"{v}.npy").shape == (4, 128)
        assert np.load(d / "feats" / "res18_14x14" / f"{v}.npy", mmap_mode="r").shape == (4, 512, 14, 14)
        assert np.load(d / "feats" / "res18" / f"{v}.npy").shape == np.load(d / "feats" / "r2plus1d_18" / f"{v}.npy").shape == (4, 512)
    for model in ("avst", "question_only"):
        assert torch.load(o / model / f"{model}.pt", weights_only=True)["model"] == model
        table = json.loads((o / f"{model}_test.json").read_text())["table"]
        assert 0 <= table["Overall"]["accuracy"] <= 100
    scores = json.loads((o / "grounding_score.json").read_text())["scores"]
    assert set(scores) == {"grounding", "grounding, untrained", "avst", "avst, untrained"}
    assert scores["avst"]["pointing_game"]["chance"] > 0
    assert len(list((o / "vis" / "avst").glob("*.png"))) >= 1 and list((o / "vis" / "grounding").glob("*.png"))
    assert "AVST - question only: Overall" in first and "pointing game" in first
    assert "grounding pre-training, val match accuracy (chance 50%): before training" in first
    # the backbones the features come from: trained on the synthetic world, recorded in the metadata
    for name in ("vggish", "res18_14x14"):
        meta = json.loads((d / "feats" / f"{name}.json").read_text())
        assert meta["init"] == "pretrained" and meta["trained_on"].startswith("synthetic world")
    for name in ("vggish", "res18_14x14"):
        assert json.loads((d / "feats" / f"{name}.json").read_text())["precision"].startswith(precision)
    assert "avqa-train.json:" in first and "per template:" in first  # the set's statistics


def test_second_run_skips_everything_quickly(pipeline):
    root, _ = pipeline
    t0 = time.time()
    out = rerun(root)
    assert time.time() - t0 < 60
    assert all(f"[{s}] complete, skipped" in out for s in STAGES)


def test_deleting_a_stage_redoes_it_and_what_follows(pipeline):
    root, _ = pipeline
    shutil.rmtree(root / "out" / "avst")
    out = rerun(root)
    redone = [s for s in STAGES if f"== {s}:" in out]
    assert redone == ["avst", "test_avst", "grounding_score", "visualise"]
    next((root / "out" / "vis" / "grounding").glob("*.png")).unlink()  # one sheet of the last stage
    out = rerun(root)
    assert [s for s in STAGES if f"== {s}:" in out] == ["visualise"]


def test_a_new_set_never_inherits_the_old_sets_outputs(pipeline, tmp_path):
    """Clips of a regenerated set reuse the ids of the old one: their sound, frames and features are made anew."""
    root, _ = pipeline
    shutil.copytree(root, tmp_path / "copy")
    d = tmp_path / "copy" / "data"
    old = {p.name: p.read_bytes() for p in (d / "audio").glob("*.wav")}
    # stopped once VGGish has said what it wrote: the stages after it are tested above; from the copy's folder,
    # where its stamps hold (only --seed differs)
    job = subprocess.Popen([sys.executable, *MAIN_JOB, "--seed", "1"], cwd=tmp_path / "copy", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"})
    lines = []
    try:
        for line in job.stdout:
            lines.append(line)
            if line.startswith("[vggish]") and " written, " in line:
                break
    finally:
        job.kill()
        job.wait()
    out = "".join(lines)
    assert "[extract_audio] 16 written, 0 already complete" in out
    assert "[extract_frames] 16 written, 0 already complete" in out
    assert "[vggish] 16 written, 0 already complete" in out
    new = {p.name: p.read_bytes() for p in (d / "audio").glob("*.wav")}
    shared = set(old) & set(new)
    assert len(shared) >= 10 and all(old[n] != new[n] for n in shared)


def test_an_interrupted_training_stage_resumes_and_says_so(pipeline):
    """The main job killed inside a training stage: the next run continues that run, it does not start over."""
    root, _ = pipeline
    o = root / "out"
    stamp = o / ".stages" / "avst.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "complete": False}))  # as a kill leaves it
    best = (o / "avst" / "avst.pt").read_bytes()
    out = rerun(root)
    assert "== avst: AVST training, starting from the grounding model (interrupted last time: resuming) ==" in out
    assert f"resumed from {os.path.join('out', 'avst', 'avst_last.pt')} after epoch 1" in out  # as --out is given
    assert (o / "avst" / "avst.pt").read_bytes() == best
    assert [s for s in STAGES if f"== {s}:" in out] == ["avst", "test_avst", "grounding_score", "visualise"]


def test_a_feature_file_changed_in_place_redoes_the_stages_that_read_it(pipeline):
    root, _ = pipeline
    changed = sorted((root / "data" / "feats" / "vggish").glob("*.npy"))[0]
    np.save(changed, np.load(changed)[::-1].copy())  # other values, the same shape and size
    out = rerun(root)
    assert ("== grounding: grounding pre-training (the files it reads changed (1 file(s) changed since (size or "
            f"modification time): {changed.relative_to(root)})) ==") in out
    assert [s for s in STAGES if f"== {s}:" in out] == ["grounding", "test_grounding", "avst", "test_avst",
                                                          "grounding_score", "visualise"]
    assert "[vggish] complete, skipped" in out and "[question_only] complete, skipped" in out


def test_the_bundle_is_tested_only_on_the_set_it_was_trained_on(tmp_path, capsys):
    """The default flags give the set the shipped AVST records, so the main job checks its figure; a
    --num_clips or --seed run makes another set (another vocabulary), where that check cannot hold."""
    from avqa.avst.stages import BUNDLED_AVST, bundle_set_is
    from avqa.synthetic.generate import parse_args, set_flags
    default = set_flags(parse_args([]))
    assert bundle_set_is(default, BUNDLED_AVST)
    ckpt = tmp_path / "avst.pt"
    ckpt.write_bytes(b"weights")
    (tmp_path / "avst_recorded.json").write_text(json.dumps({"synthetic": default}))
    assert bundle_set_is(default, ckpt)
    assert not bundle_set_is(set_flags(parse_args(["--num_clips", "960", "--seed", "1"])), ckpt)
    assert "differs in: num_clips, seed), so this run does not test it" in capsys.readouterr().out
    (tmp_path / "avst_recorded.json").unlink()
    assert not bundle_set_is(default, ckpt)


def test_bf16_computes_the_features_in_bfloat16_and_their_stamps_say_so(tmp_path, monkeypatch, capsys):
    """Features in bfloat16 are recorded in both extraction stages' stamps, so switching precision redoes
    them (and, through them, the stages after); --precision auto picks bfloat16 where the CPU has it, and
    a CPU without bfloat16 instructions refuses it when asked for."""
    import argparse
    from avqa import job as job_module, machine, pipeline, registry
    extracted = []
    monkeypatch.setattr(job_module, "extract_visual", lambda name, **kw: extracted.append((name, kw["bf16"])))
    monkeypatch.setattr(job_module, "extract_vggish", lambda *a: extracted.append(("vggish", a[6])))
    monkeypatch.setattr(job_module, "print_report", lambda report: None)
    monkeypatch.setattr(job_module, "weights_check", lambda *a: lambda: None)
    for bf16 in (False, True):
        args = argparse.Namespace(data=str(tmp_path / "data"), out=str(tmp_path / "out"), tiny=False, num_clips=None,
                                  seed=0, sheets=6, device="cpu", bundle=False, bf16=bf16)
        job = job_module.MainJob(args, {})  # the set's own stages, then AVST's, as the main job runs them
        stages = {s.name: s for s in [*job.stages(), *registry.entry("avst").stages(job)]}
        # the default job leaves out the outputs no model reads; its sheets decode their frames from the videos
        assert {"frames", "res18", "r2plus1d_18"}.isdisjoint(stages)
        assert stages["visualise"].needs == ["avst", "grounding"]
        for name in stages:
            assert (stages[name].config.get("precision") == "bfloat16") is (bf16 and name in ("vggish", "res18_14x14"))
        stages["vggish"].run()
        stages["res18_14x14"].run()
        assert extracted[-2:] == [("vggish", bf16), ("res18_14x14", bf16)]
    # --precision auto is bfloat16 exactly where the device computes it natively; bfloat16 asked for where
    # it would be emulated is refused, before anything is written
    seen = []
    monkeypatch.setattr(pipeline, "Pipeline", lambda args: seen.append(args.bf16) or argparse.Namespace(run=lambda: 0))
    common = ["--device", "cpu", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    for native in (True, False):
        monkeypatch.setattr(machine, "native_bf16", lambda device, native=native: native)
        cases = [([], native), (["--precision", "auto"], native), (["--precision", "float32"], False)]
        if native:
            cases += [(["--bf16"], True), (["--precision", "bfloat16"], True)]
        for flags, bf16 in cases:
            assert pipeline.main([*flags, *common]) == 0 and seen[-1] is bf16, (native, flags)
    for flags in (["--bf16"], ["--precision", "bfloat16"]):
        with pytest.raises(SystemExit) as e:
            pipeline.main([*flags, "--device", "cpu", "--data", str(tmp_path / "d2"), "--out", str(tmp_path / "o2")])
        assert e.value.code == 2 and "--precision bfloat16: this cpu has no bfloat16 instructions" in capsys.readouterr().err
    assert not (tmp_path / "d2").exists()
