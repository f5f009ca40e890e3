"""TSPM on the engine: it learns on a synthetic set with stand-in features, test mode writes the
release's files, bad inputs stop with one sentence and nothing written, and the release's command
lines parse."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avqa import checkpoint
from avqa.annotations import Vocab, load_annotations
from avqa.evaluate import read_predictions
from avqa.tspm.run import FAMILY, build_parser, parse
from avqa.tspm.standin import FOLDERS, make_standins
from conftest import AVST, REAL, e2e_fixture, extract_taught, needs_real, run_here

TRAIN, TEST = "net_tspm/main_train.py", "net_tspm/main_test.py"
RECIPE = ["--epochs", "6", "--lr", "1e-3", "--batch-size", "32", "--seed", "1"]
# A set big enough that a test accuracy means something (76 test questions on 6 clips; the session's tiny
# set has 20 on 3, where question-only and TSPM tie or swap with the seed), with the synthetic world's own
# backbones: on it TSPM beats question-only by 10-21 points over seeds 1-3.
QA_SET = ["--num_clips", "20", "--seconds", "4", "--seed", "3", "--questions_per_clip", "30", "--width", "160",
          "--height", "120", "--fps", "12", "--sample_rate", "16000", "--split", "0.5,0.2,0.3"]


def tspm_flags(d: Path, feats: Path) -> list[str]:
    return ["--audios_feat_dir", str(feats / FOLDERS["audio"]), "--visual_feat_dir", str(feats / FOLDERS["frames"]),
            "--visual_patch_dir", str(feats / FOLDERS["tokens"]), "--qst_feat_dir", str(feats / FOLDERS["question"]),
            "--qst_prompt_dir", str(feats / FOLDERS["prompt"]),
            "--label_train", str(d / "json" / "avqa-train.json"), "--label_val", str(d / "json" / "avqa-val.json"),
            "--label_test", str(d / "json" / "avqa-test.json"), "--top_k", "2", "--quiet", "--tensorboard_dir", ""]


@e2e_fixture(scope="module")
def qa_set(tmp_path_factory, synthetic_vggish) -> Path:
    """A small synthetic set with features from the bundled synthetic-world ResNet-18 and VGGish."""
    d = tmp_path_factory.mktemp("tspm_set") / "data"
    run_here("-m", "avqa.synthetic", "--out", str(d), *QA_SET)
    return extract_taught(d, synthetic_vggish)


@e2e_fixture(scope="module")
def standins(qa_set, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tspm_feats")
    make_standins(qa_set, out, seed=0)
    return out


@e2e_fixture(scope="module")
def trained_tspm(qa_set, standins, tmp_path_factory) -> Path:
    """TSPM trained with the stand-ins and tested once; its model folder and result folder."""
    out = tmp_path_factory.mktemp("tspm_run")
    flags = tspm_flags(qa_set, standins)
    run_here(TRAIN, *flags, *RECIPE, "--model_save_dir", str(out / "models"))
    proc = run_here(TEST, *flags, "--model_save_dir", str(out / "models"), "--result_dir", str(out / "results"))
    (out / "test_stdout.txt").write_text(proc.stdout)
    return out


def _listing(*folders: Path) -> list[str]:
    return sorted(str(p) for f in folders if f.exists() for p in f.rglob("*"))


@pytest.mark.e2e
def test_tspm_learns_and_beats_question_only(qa_set, trained_tspm, tmp_path):
    """On the synthetic set, TSPM's training loss falls and its test accuracy is above the question-only rung's
    trained with the same recipe on the same questions."""
    history = checkpoint.load_dict(trained_tspm / "models" / "TSPM_last.pt")["history"]
    losses = [h["loss"] for h in history if "loss" in h]
    tspm = json.loads((trained_tspm / "models" / "TSPM_avqa-test.json").read_text())["table"]["Overall"]["accuracy"]
    d = qa_set
    qo = [*("--label_train", str(d / "json" / "avqa-train.json"), "--label_val", str(d / "json" / "avqa-val.json"),
            "--label_test", str(d / "json" / "avqa-test.json"), "--quiet", "--tensorboard_dir", ""),
          "--model", "question_only", "--model_save_dir", str(tmp_path), "--checkpoint", "qo",
          "--audio_dir", str(d / "feats" / "vggish"), "--video_res14x14_dir", str(d / "feats" / "res18_14x14")]
    run_here(AVST, *qo, *RECIPE)
    run_here(AVST, *qo, "--mode", "test")
    question_only = json.loads((tmp_path / "qo_avqa-test.json").read_text())["table"]["Overall"]["accuracy"]
    print(f"TSPM loss by epoch {losses}; test accuracy TSPM {tspm:.2f} vs question-only {question_only:.2f}")
    assert losses[-1] < 0.8 * losses[0]
    assert tspm > question_only


@pytest.mark.e2e
def test_test_mode_writes_the_table_report_and_the_release_files(qa_set, standins, trained_tspm, tmp_path):
    out = (trained_tspm / "test_stdout.txt").read_text()
    report = json.loads((trained_tspm / "models" / "TSPM_avqa-test.json").read_text())
    assert "tspm on" in out and "Overall" in out and report["model"] == "tspm"
    vocab = Vocab.from_samples(load_annotations(qa_set / "json" / "avqa-train.json"))
    lines = (trained_tspm / "results" / "TSPM.result").read_text().splitlines()
    expected = [f"{p['question_id']} \t {p['correct']} \t {vocab.answers.index(p['answer'])} \t "
                f"{vocab.answers.index(p['prediction'])}" for p in report["predictions"]]
    assert lines == expected and len(lines) == len(load_annotations(qa_set / "json" / "avqa-test.json"))
    # the project's evaluator reads the .result file back to the same table
    scored = read_predictions(trained_tspm / "results" / "TSPM.result")
    assert scored.correct == {str(p["question_id"]): p["correct"] for p in report["predictions"]}
    acc = (trained_tspm / "results" / "TSPM.acc").read_text()
    assert f"---->Overall Accuracy: {report['table']['Overall']['accuracy']:.2f} %" in acc
    assert "Audio-Visual Averg Acc:" in acc

    # the release's checkpoint format (nn.DataParallel's state_dict) tests the same, at another batch size
    ours = checkpoint.load_dict(trained_tspm / "models" / "TSPM.pt")["state_dict"]
    release = tmp_path / "release"
    release.mkdir()
    torch.save({f"module.{k}": v for k, v in ours.items()}, release / "TSPM.pt")
    run_here(TEST, *tspm_flags(qa_set, standins), "--model_save_dir", str(release), "--result_dir",
             str(tmp_path / "results"), "--eval_batch_size", "1")
    assert (tmp_path / "results" / "TSPM.result").read_text().splitlines() == lines


def _copy_feats(standins: Path, dst: Path) -> Path:
    shutil.copytree(standins, dst)
    return dst


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["missing question feature", "token file of the wrong shape",
                                  "checkpoint of another model", "top_k larger than T"])
def test_bad_inputs_stop_with_one_sentence_and_nothing_written(case, qa_set, standins, trained_tspm, tmp_path):
    feats, models, results = standins, tmp_path / "models", tmp_path / "results"
    extra, script, named = [], TRAIN, None
    if case == "missing question feature":
        feats = _copy_feats(standins, tmp_path / "feats")
        named = feats / FOLDERS["question"] / f"{load_annotations(qa_set / 'json' / 'avqa-val.json')[0]['question_id']}.npy"
        named.unlink()
    elif case == "token file of the wrong shape":
        feats = _copy_feats(standins, tmp_path / "feats")
        video = load_annotations(qa_set / "json" / "avqa-train.json")[0]["video_id"]
        named = feats / FOLDERS["tokens"] / f"{video}.npy"
        np.save(named, np.zeros((4, 7, 1024), np.float16))
    elif case == "checkpoint of another model":
        models.mkdir()
        from avqa.models import AVST as AVSTModel
        checkpoint.save(models / "TSPM.pt", {"format": checkpoint.FORMAT, "model": "avst",
                                             "state_dict": AVSTModel().state_dict()})
        script, named = TEST, "'avst'"
    else:
        extra, named = ["--top_k", "5"], "--top_k 5"
    flags = [*tspm_flags(qa_set, feats), *extra]  # a later --top_k wins
    before = _listing(models, results)
    proc = run_here(script, *flags, *RECIPE, "--model_save_dir", str(models), "--result_dir", str(results),
                    check=False)
    message = proc.stderr.strip()
    print(f"{case}: exit {proc.returncode}: {message}")
    assert proc.returncode == 1 and str(named) in message and "Traceback" not in message
    assert len(message.splitlines()) <= 2  # one sentence (FeatureStore's list adds the file on its own line)
    assert _listing(models, results) == before


def test_the_release_readme_commands_parse_and_switches_turn_modules_off():
    train = ("--Temp_Selection --top_k 10 --Spatio_Perception --batch-size 64 --epochs 30 --lr 1e-4 "
             "--num_workers 12 --gpu 0,1 --checkpoint TSPM --model_save_dir models").split()
    test = ("--Temp_Selection --top_k 10 --Spatio_Perception --batch-size 1 --gpu 1 --checkpoint TSPM "
            "--model_save_dir models --result_dir results").split()
    cfg = parse(train, "train")
    assert (cfg.Temp_Selection, cfg.Spatio_Perception, cfg.top_k, cfg.epochs, cfg.gpu) == (True, True, 10, 30, "0,1")
    assert parse(test, "test").result_dir == "results"
    vocab = Vocab(("<pad>",), ("yes", "no"))
    assert FAMILY.build(parse(train, "train"), vocab).spatio_perception
    off = parse([*train, "--no-Spatio_Perception", "--no-Temp_QTGM"], "train")
    model = FAMILY.build(off, vocab)
    assert not model.spatio_perception and not model.temp_qtgm and model.temp_selection
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--Temp_Selection", "False"])  # a switch takes no value
    assert e.value.code == 2


def test_the_config_holds_exactly_the_scripts_flags():
    argv = ["--no-AV_Attn_Module", "--top_k", "3", "--eval_batch_size", "5"]
    assert list(parse(argv, "train").flags().items()) == list(vars(build_parser().parse_args(argv)).items())


@needs_real
def test_the_answer_vocabulary_is_the_release_loaders_order():
    """The release's loader lists answers in order of first appearance in its train file; Vocab does the same
    (shown on the real val file, the train file is not shipped here)."""
    samples = load_annotations(REAL / "json" / "avqa-val.json")
    release_order = []
    for s in json.loads((REAL / "json" / "avqa-val.json").read_text()):
        if s["anser"] not in release_order:
            release_order.append(s["anser"])
    assert list(Vocab.from_samples(samples).answers) == release_order and len(release_order) > 30


def test_selection_score_counts_kept_seconds_in_which_the_named_instrument_sounds():
    from avqa.tspm.selection_score import named_instrument, selection_table, sounding_seconds
    truth = {"seconds": 6, "instruments": [
        {"class": "piano", "audible": True, "playing": [[0, 2], [4, 9]]},
        {"class": "violin", "audible": True, "playing": [[0, 6]]},
        {"class": "drum", "audible": False, "playing": [[0, 6]]}]}
    assert sounding_seconds(truth, "piano") == {0, 1, 4, 5}      # [a, b) intervals, clipped to the clip
    assert sounding_seconds(truth, "drum") == set() and sounding_seconds(truth, "flute") is None
    one = {"question_content": "Is there a <Object> sound?", "templ_values": '["piano"]'}
    two = {"question_content": "Is the <Object> louder than the <Object>?", "templ_values": '["piano", "violin"]'}
    assert named_instrument(one, truth) == "piano" and named_instrument(two, truth) is None
    questions = [{"row": 0, "sounding": {0, 1, 4, 5}, "T": 6}, {"row": 1, "sounding": set(range(6)), "T": 6}]
    table = selection_table(questions, trained={0: [0, 1, 2], 1: [3, 4, 5]}, untrained={0: [2, 3, 4], 1: [0, 1, 2]})
    assert table["all"]["trained"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert table["informative"] == {"questions": 1, "trained": pytest.approx(200 / 3),
                                    "untrained": pytest.approx(100 / 3), "random": pytest.approx(200 / 3)}


@pytest.mark.e2e
def test_selection_score_of_a_trained_checkpoint(qa_set, standins, trained_tspm, tmp_path):
    from avqa.tspm.selection_score import main
    out = tmp_path / "selection.json"
    assert main([*tspm_flags(qa_set, standins), "--model_save_dir", str(trained_tspm / "models"),
                 "--out", str(out)]) == 0
    table = json.loads(out.read_text())["table"]
    assert table["all"]["questions"] > 0
    for row in table.values():
        assert all(0 <= row[k] <= 100 for k in ("trained", "untrained", "random"))


@pytest.mark.e2e
def test_test_mode_refuses_switches_other_than_the_checkpoints(qa_set, standins, trained_tspm, tmp_path):
    """Trained with --top_k 2 and every switch on: a test with --top_k 3 --no-Spatio_Perception is refused
    naming both flags, and the earlier report stays; the report records the flags a test ran with."""
    models = trained_tspm / "models"
    report = models / "TSPM_avqa-test.json"
    before = report.read_bytes()
    proc = run_here(TEST, *tspm_flags(qa_set, standins), "--top_k", "3", "--no-Spatio_Perception",
                    "--model_save_dir", str(models), "--result_dir", str(tmp_path / "results"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    for words in ("--top_k (2 at training, 3 now)", "--Spatio_Perception (on at training, off now)",
                  "(--top_k 2 --Spatio_Perception)", str(models / "TSPM.pt")):
        assert words in proc.stderr, proc.stderr
    assert report.read_bytes() == before and not (tmp_path / "results").exists()
    ran = json.loads(before)["flags"]
    assert ran["top_k"] == 2 and all(ran[s] for s in ("Temp_Selection", "Spatio_Perception", "AV_Attn_Module",
                                                       "Temp_QTGM"))


@pytest.mark.e2e
def test_the_checkpoint_records_the_resolved_flush_and_test_mode_takes_either(qa_set, standins, trained_tspm, tmp_path):
    """--flush_denormals auto (the default) is recorded as what it meant on this machine (on where the CPU slows
    on subnormal floats), and a test run with the other value is not refused: it does not shape answers."""
    from avqa.machine import slows_on_subnormals
    models = trained_tspm / "models"
    assert checkpoint.load_dict(models / "TSPM.pt")["args"]["flush_denormals"] is slows_on_subnormals()
    other = "off" if slows_on_subnormals() else "on"
    run_here(TEST, *tspm_flags(qa_set, standins), "--flush_denormals", other, "--model_save_dir", str(models),
             "--result_dir", str(tmp_path / "results"), "--results", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["flags"]["flush_denormals"] is (other == "on")
    assert report["table"] == json.loads((models / "TSPM_avqa-test.json").read_text())["table"]
