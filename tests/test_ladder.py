"""python -m avqa.ladder on a tiny set: every rung trained and tested, JSON and plot; a rerun skips, a
rung whose report is gone or whose run was interrupted resumes without training again, a changed
recipe trains again. TSPM's rungs (--family tspm) on stand-in features: rows, plot and skip."""
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from avqa.models import AVST, LADDER
from avqa.evaluate import TABLE_ROWS, score_table
from avqa.ladder import main, parse_args
from avqa.tspm.standin import FOLDERS, make_standins
from conftest import e2e_fixture, run_here

RUNGS = list(LADDER)


@e2e_fixture(scope="module")
def ladder(tiny_set, tmp_path_factory):
    """The whole ladder, one epoch per rung, on the tiny set with random features of its own."""
    root = tmp_path_factory.mktemp("ladder")
    videos = [v for vs in json.loads((tiny_set / "synthetic.json").read_text())["videos"].values() for v in vs]
    rng = np.random.default_rng(0)
    T = 4
    for name, shape in (("vggish", (T, 128)), ("res18_14x14", (T, 512, 14, 14))):
        (root / "feats" / name).mkdir(parents=True)
        for v in videos:
            np.save(root / "feats" / name / f"{v}.npy", rng.random(shape, dtype=np.float32))
    args = ["-m", "avqa.ladder", "--data", str(tiny_set), "--audio_dir", str(root / "feats" / "vggish"),
            "--video_res14x14_dir", str(root / "feats" / "res18_14x14"), "--out", str(root / "out"),
            "--epochs", "1", "--batch-size", "16", "--pretrained_grounding", "none", "--quiet"]
    first = run_here(*args)
    return root / "out", args, first, tiny_set


def _sha(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_rung_is_trained_tested_and_reported(ladder):
    out, _, first, data = ladder
    result = json.loads((out / "ladder.json").read_text())
    assert [r["model"] for r in result["rungs"]] == RUNGS
    assert [r["label"] for r in result["rungs"]] == ["Q", "A+Q", "V+Q", "A+V+Q", "+TG", "+SG"]
    n_test = len(json.loads((data / "json" / "avqa-test.json").read_text()))
    avst_keys = set(AVST().state_dict())
    for r in result["rungs"]:
        assert r["status"] == "ran" and r["paper_overall"] == result["paper"]["overall"][r["model"]]
        assert list(r["table"]) == [name for name, _ in TABLE_ROWS] and r["table"]["Overall"]["count"] == n_test
        # the table is the rung's own test report, per type, recomputed from its predictions
        report = json.loads((out / f"{r['model']}_test.json").read_text())
        assert report["model"] == r["model"] and len(report["predictions"]) == n_test
        from avqa.annotations import QUESTION_TYPES, question_type
        types = torch.tensor([QUESTION_TYPES.index(question_type(p)) for p in report["predictions"]])
        correct = torch.tensor([p["correct"] for p in report["predictions"]])
        assert score_table(correct.numpy(), types.numpy()) == r["table"]
        ckpt = torch.load(out / r["model"] / f"{r['model']}.pt", weights_only=True)
        assert ckpt["model"] == r["model"] and ckpt["args"]["epochs"] == 1 and ckpt["args"]["lr"] == 5e-4
        assert set(ckpt["state_dict"]) <= avst_keys
        assert ("fc_gl.weight" in ckpt["state_dict"]) == (r["model"] == "avst")
    checks = result["orderings"]
    assert {"A+Q above Q on the audio questions", "V+Q above Q on the visual questions",
            "the full AVST best overall", "+SG above +TG overall"} <= set(checks)
    tables = {r["model"]: r["table"] for r in result["rungs"]}
    assert checks["A+Q above Q on the audio questions"]["holds"] == (
        tables["aq"]["Audio Avg"]["accuracy"] > tables["question_only"]["Audio Avg"]["accuracy"])
    assert checks["the full AVST best overall"]["holds"] == (
        tables["avst"]["Overall"]["accuracy"] == max(t["Overall"]["accuracy"] for t in tables.values()))
    assert Image.open(out / "ladder.png").size == (980, 600)
    assert "paper AVST" in first.stdout and "71.52" in first.stdout
    for rung in RUNGS:
        assert f"== {LADDER[rung][0]} {rung} (not run yet) ==" in first.stdout


def test_a_finished_ladder_is_skipped(ladder):
    out, args, _, _ = ladder
    before = {r: _sha(out / r / f"{r}.pt") for r in RUNGS}
    t0 = time.time()
    again = run_here(*args)
    assert time.time() - t0 < 60
    for rung in RUNGS:
        assert f"[{LADDER[rung][0]} {rung}] complete, skipped" in again.stdout
    assert "epoch 1:" not in again.stdout
    assert {r: _sha(out / r / f"{r}.pt") for r in RUNGS} == before
    assert all(r["status"] == "skipped (complete)" for r in json.loads((out / "ladder.json").read_text())["rungs"])


def test_a_lost_report_or_an_interrupted_rung_resumes_without_training_again(ladder):
    out, args, _, _ = ladder
    before = {r: _sha(out / r / f"{r}.pt") for r in RUNGS}
    (out / "aq_test.json").unlink()
    stamp = out / "stamps" / "avq_tg.json"
    stamp.write_text(json.dumps(dict(json.loads(stamp.read_text()), complete=False)))
    again = run_here(*args)
    assert "== A+Q aq (its test report is missing or not of its checkpoint: resuming) ==" in again.stdout
    assert "== +TG avq_tg (interrupted last time: resuming) ==" in again.stdout
    assert again.stdout.count("complete, skipped") == 4
    assert "epoch 1:" not in again.stdout  # both resumed from their last epoch: nothing left to train
    assert {r: _sha(out / r / f"{r}.pt") for r in RUNGS} == before
    assert (out / "aq_test.json").is_file()
    assert json.loads(stamp.read_text())["complete"] is True


def test_one_rung_asked_for_keeps_every_finished_rungs_row(ladder):
    out, args, _, _ = ladder
    again = run_here(*args, "--rungs", "aq")
    assert again.stdout.count("complete, skipped") == 1
    rows = json.loads((out / "ladder.json").read_text())["rungs"]
    assert [r["model"] for r in rows] == RUNGS
    assert {r["model"]: r["status"] for r in rows} == {r: "skipped (complete)" if r == "aq" else "kept (finished earlier)"
                                                      for r in RUNGS}


def test_feature_files_changed_in_place_retrain_the_rungs_that_read_them(ladder):
    out, args, _, _ = ladder
    audio = sorted((out.parent / "feats" / "vggish").glob("*.npy"))
    before = _sha(out / "aq" / "aq.pt")
    for f in audio:  # other values, the same shapes and sizes
        np.save(f, np.load(f)[::-1].copy())
    again = run_here(*args, "--rungs", "aq")
    assert (f"== A+Q aq (the files it reads changed ({len(audio)} file(s) changed since (size or modification time): "
            f"{audio[0]}") in again.stdout
    assert "epoch 1:" in again.stdout and _sha(out / "aq" / "aq.pt") != before
    # the rungs that hear the old features no longer stand in the table; those that do not hear are kept
    rows = json.loads((out / "ladder.json").read_text())["rungs"]
    assert [r["model"] for r in rows] == ["question_only", "aq", "vq"]


def test_a_changed_recipe_trains_the_rung_again(ladder):
    out, args, _, _ = ladder
    before = _sha(out / "vq" / "vq.pt")
    again = run_here(*args[:args.index("--epochs")], "--epochs", "1", "--lr", "1e-3", "--batch-size", "16",
                     *args[args.index("--pretrained_grounding"):], "--rungs", "vq")
    assert "== V+Q vq (its recipe changed: training it again) ==" in again.stdout
    assert "epoch 1:" in again.stdout and _sha(out / "vq" / "vq.pt") != before
    assert torch.load(out / "vq" / "vq.pt", weights_only=True)["args"]["lr"] == 1e-3
    result = json.loads((out / "ladder.json").read_text())
    assert [r["model"] for r in result["rungs"]] == ["vq"] and result["recipe"][3] == "0.001"


def test_tspm_flags_default_under_data_and_belong_to_their_family(capsys):
    a = parse_args(["--family", "tspm", "--data", "d"])
    assert (a.audios_feat_dir, a.visual_feat_dir, a.visual_patch_dir, a.qst_feat_dir, a.qst_prompt_dir) == tuple(
        f"d/feats/{FOLDERS[k]}" for k in ("audio", "frames", "tokens", "question", "prompt"))
    assert a.rungs == ["no_av_attn", "no_temp_selection", "no_spatio_perception", "no_temp_qtgm", "tspm"]
    assert (a.out, a.top_k, a.token_frames) == ("outputs/ladder_tspm", 10, "paper")
    assert a.family.recipe_flags(a)[-4:] == ["--top_k", "10", "--token_frames", "paper"]
    for argv, named in ((["--top_k", "3"], "--top_k is a flag of --family tspm's rungs, not avst's"),
                        (["--family", "tspm", "--audio_dir", "x"], "--audio_dir is a flag of --family avst's rungs"),
                        (["--family", "tspm", "--rungs", "aq"], "--rungs: unknown aq; choose from no_av_attn,")):
        with pytest.raises(SystemExit) as e:
            parse_args(argv)
        assert e.value.code == 2 and named in capsys.readouterr().err


def test_one_out_folder_holds_one_familys_ladder(tiny_set, tmp_path):
    (tmp_path / "stamps").mkdir()
    (tmp_path / "stamps" / "aq.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        main(["--family", "tspm", "--data", str(tiny_set), "--out", str(tmp_path)])
    assert f"--out {tmp_path} holds the avst ladder ({tmp_path / 'stamps' / 'aq.json'}): pass --family avst" in str(e.value)


@e2e_fixture(scope="module")
def tspm_ladder(tiny_features, tmp_path_factory):
    """Two of TSPM's rungs, one epoch each, on stand-in features of the tiny set."""
    root = tmp_path_factory.mktemp("ladder_tspm")
    make_standins(tiny_features, root / "feats", seed=0)
    feats = {"audios_feat_dir": "audio", "visual_feat_dir": "frames", "visual_patch_dir": "tokens",
             "qst_feat_dir": "question", "qst_prompt_dir": "prompt"}
    args = ["-m", "avqa.ladder", "--family", "tspm", "--data", str(tiny_features),
            *[x for flag, k in feats.items() for x in (f"--{flag}", str(root / "feats" / FOLDERS[k]))],
            "--rungs", "tspm,no_temp_selection", "--epochs", "1", "--batch-size", "16", "--top_k", "2",
            "--out", str(root / "out"), "--quiet"]
    return root / "out", args, run_here(*args)


@pytest.mark.e2e
def test_tspm_rungs_are_trained_tested_and_reported_without_a_paper_column(tspm_ladder, tiny_features):
    out, _, first = tspm_ladder
    result = json.loads((out / "ladder.json").read_text())
    rows = result["rungs"]
    assert [(r["model"], r["label"]) for r in rows] == [("no_temp_selection", "w/o TS"), ("tspm", "TSPM")]
    assert result["family"] == "tspm" and result["paper"] is None
    assert result["recipe"][-4:] == ["--top_k", "2", "--token_frames", "paper"]
    n_test = len(json.loads((tiny_features / "json" / "avqa-test.json").read_text()))
    for r in rows:
        assert r["status"] == "ran" and "paper_overall" not in r and r["table"]["Overall"]["count"] == n_test
        report = json.loads((out / f"{r['model']}_test.json").read_text())
        assert report["model"] == "tspm" and report["table"] == r["table"]
        args = torch.load(out / r["model"] / f"{r['model']}.pt", weights_only=True)["args"]
        assert (args["epochs"], args["top_k"], args["Temp_Selection"]) == (1, 2, r["model"] == "tspm")
        assert args["AV_Attn_Module"] and args["Spatio_Perception"] and args["Temp_QTGM"]
        assert (out / r["model"] / f"{r['model']}.result").is_file()  # the release's result files, per rung
    full, ablated = rows[1]["table"]["Overall"]["accuracy"], rows[0]["table"]["Overall"]["accuracy"]
    assert result["orderings"] == {"TSPM above w/o TS overall": {"holds": full > ablated, "values": [ablated, full]}}
    assert "== w/o TS no_temp_selection (not run yet) ==\nTSPM without temporal selection (--no-Temp_Selection)" \
        in first.stdout
    assert "paper" not in first.stdout.split("test accuracy %:")[1].splitlines()[1]  # the table's head
    assert Image.open(out / "ladder.png").size == (980, 600)


@pytest.mark.e2e
def test_tspm_rungs_finished_are_skipped(tspm_ladder):
    out, args, _ = tspm_ladder
    before = {r: _sha(out / r / f"{r}.pt") for r in ("tspm", "no_temp_selection")}
    again = run_here(*args)
    for line in ("[TSPM tspm] complete, skipped", "[w/o TS no_temp_selection] complete, skipped"):
        assert line in again.stdout
    assert "epoch 1:" not in again.stdout
    assert {r: _sha(out / r / f"{r}.pt") for r in before} == before
    assert [r["status"] for r in json.loads((out / "ladder.json").read_text())["rungs"]] == ["skipped (complete)"] * 2


def test_tspm_inputs_are_checked_before_any_rung(tspm_ladder, tmp_path, capsys):
    _, args, _ = tspm_ladder
    argv = [*args[2:args.index("--out")], "--out", str(tmp_path / "out")]
    audio = args[args.index("--audios_feat_dir") + 1]
    with pytest.raises(SystemExit) as e:
        main([*argv, "--top_k", "5"])
    assert str(e.value) == f"--top_k 5 is larger than the T=4 seconds per video of {audio}: pass --top_k 3 or less"
    with pytest.raises(SystemExit) as e:
        main([*argv, "--qst_prompt_dir", str(tmp_path / "prompts")])
    assert str(e.value).startswith(f"--qst_prompt_dir {tmp_path / 'prompts'} not found: make stand-in features with "
                                   f"python -m avqa.tspm.standin")
    assert not (tmp_path / "out" / "stamps").exists()
    main([*argv, "--top_k", "4", "--rungs", "no_temp_selection", "--epochs", "1"])  # T seconds kept: a warning
    assert "no_temp_selection computes what tspm does" in capsys.readouterr().err
