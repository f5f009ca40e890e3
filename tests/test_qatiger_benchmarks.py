"""QA-TIGER on the successors' files, through the project's annotation reader: MUSIC-AVQA v2.0's balanced and
biased test files with v2.0's own answer order, and MUSIC-AVQA-R's rephrased questions (longer than the 14 words
AVST reads, in words no train file holds), trained and tested from the scripts and scored by python -m
avqa.evaluate. Features are random (the real ones are not here): what is checked is that every file is read, every
question answered in the right class order, and the report scored as the table says."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avqa.annotations import ANSWERS, load_annotations
from avqa.qatiger.run import FAMILY
from avqa.tasks.qa import Family
from conftest import REAL, V2, e2e_fixture, needs_real, needs_v2, run_here
from test_qatiger_run import STANDIN_CLIP, TEST, TRAIN, WIDTH

SECONDS = 6
ORDER = sorted(ANSWERS, reverse=True)            # a class order of its own, as v2.0's answer2idx.json has
REPHRASE = "After watching and listening to the whole of this performance from its start to its end, "


def rephrased(rows: list[dict]) -> list[dict]:
    """MUSIC-AVQA-R's kind of row: the question said in other, more words, its template tags and values kept."""
    return [dict(r, question_content=REPHRASE + r["question_content"][0].lower() + r["question_content"][1:])
            for r in rows]


def features(root: Path, rows: list[dict]) -> dict[str, Path]:
    g = torch.Generator().manual_seed(0)
    folders = {k: root / k for k in ("audio", "video", "patch")}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    for v in sorted({r["video_id"] for r in rows}):
        np.save(folders["audio"] / f"{v}.npy", torch.randn(SECONDS, 128, generator=g).numpy())
        np.save(folders["video"] / f"{v}.npy", torch.randn(SECONDS, WIDTH, generator=g).numpy())
        np.save(folders["patch"] / f"{v}.npy", torch.randn(SECONDS, 14, WIDTH, generator=g).numpy())
    return folders


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def flags(folders: dict[str, Path], files: dict[str, Path], out: Path) -> list[str]:
    return ["--audio_feat", str(folders["audio"]), "--video_feat", str(folders["video"]), "--patch_feat",
            str(folders["patch"]), "--label_train", str(files["train"]), "--label_val", str(files["val"]),
            "--video_dim", str(WIDTH), "--patch_dim", str(WIDTH), "--d_model", "16", "--clip_weights",
            str(STANDIN_CLIP), "--answer2idx", str(files["answer2idx"]), "--model_save_dir", str(out), "--quiet",
            "--tensorboard_dir", "", "--batch-size", "16", "--eval_batch_size", "16", "--epochs", "1",
            "--no-release_pairing"]


@e2e_fixture(scope="module")
def benchmarks(tmp_path_factory) -> dict:
    """v2.0's first validation questions as train and validation, its test files' first questions, and -R's
    head and tail made from json_update's test questions; one QA-TIGER trained for an epoch on them."""
    if V2 is None or REAL is None:
        pytest.skip("the MUSIC-AVQA v2.0 and v1 annotation files are not here (../shared/data/)")
    root = tmp_path_factory.mktemp("qatiger_benchmarks")
    valid = load_annotations(V2 / "balance_valid.json")
    v1 = load_annotations(REAL / "json_update" / "avqa-test.json")
    files = {"train": write(root / "v2" / "train.json", valid[:48]), "val": write(root / "v2" / "val.json", valid[48:72]),
             "balance": write(root / "v2" / "test_balance.json", load_annotations(V2 / "test_balance.json")[:40]),
             "bias": write(root / "v2" / "test_bias.json", load_annotations(V2 / "test_bias.json")[:40]),
             "head": write(root / "r" / "avqa-test-head.json", rephrased(v1[:20])),
             "tail": write(root / "r" / "avqa-test-tail.json", rephrased(v1[20:36])),
             "answer2idx": write(root / "answer2idx.json", {"ans2ix": {a: i for i, a in enumerate(ORDER)}})}
    files["headtail"] = write(root / "r" / "avqa-test-headtail.json",
                              json.loads(files["head"].read_text()) + json.loads(files["tail"].read_text()))
    rows = [r for k in ("train", "val", "balance", "bias", "headtail") for r in json.loads(files[k].read_text())]
    folders, out = features(root / "feats", rows), root / "run"
    proc = run_here(TRAIN, *flags(folders, files, out))
    assert proc.returncode == 0, proc.stderr
    return {"files": files, "folders": folders, "out": out}


def answered(run: dict, name: str) -> dict:
    """Test the trained run on one of its files; the JSON report."""
    proc = run_here(TEST, *flags(run["folders"], run["files"], run["out"]), "--label_test", str(run["files"][name]),
                    "--results", str(run["out"] / f"{name}.json"))
    assert proc.returncode == 0, proc.stderr
    return json.loads((run["out"] / f"{name}.json").read_text())


@needs_v2
@pytest.mark.parametrize("name", ["balance", "bias"])
def test_v2_test_files_are_answered_in_v2_class_order_and_scored(benchmarks, name):
    ckpt = torch.load(benchmarks["out"] / "qa-tiger.pt", weights_only=False)
    assert ckpt["answer_vocab"] == ORDER          # the classes are --answer2idx's, not the train file's order
    report = answered(benchmarks, name)
    rows = json.loads(benchmarks["files"][name].read_text())
    assert len(report["predictions"]) == len(rows) == 40
    scored = run_here("-m", "avqa.evaluate", str(benchmarks["out"] / f"{name}.json"), "--annotations",
                      str(benchmarks["files"][name]), "--out", str(benchmarks["out"] / f"{name}.eval"))
    assert scored.returncode == 0, scored.stderr
    tables = json.loads((benchmarks["out"] / f"{name}.eval.json").read_text())["tables"]
    assert tables[str(benchmarks["files"][name])] == report["table"]


@needs_v2
@needs_real
def test_r_rephrased_questions_are_answered_and_scored_as_head_and_tail(benchmarks):
    rows = json.loads(benchmarks["files"]["headtail"].read_text())
    assert min(len(r["question_content"].split()) for r in rows) > 14
    report = answered(benchmarks, "headtail")
    assert len(report["predictions"]) == 36
    scored = run_here("-m", "avqa.evaluate", str(benchmarks["out"] / "headtail.json"), "--annotations",
                      str(benchmarks["files"]["head"]), "--annotations", str(benchmarks["files"]["tail"]), "--out",
                      str(benchmarks["out"] / "r.eval"))
    assert scored.returncode == 0, scored.stderr
    scores = json.loads((benchmarks["out"] / "r.eval.json").read_text())
    counts = [scores["tables"][str(benchmarks["files"][part])]["Overall"]["count"] for part in ("head", "tail")]
    assert counts == [20, 16] and scores["combined"] == report["table"]


def test_qatiger_reads_questions_of_any_length_where_the_word_models_stop(tmp_path):
    row = {"video_id": "v0", "question_id": 1, "type": '["Audio", "Counting"]', "templ_values": "[]",
           "question_deleted": 0, "anser": "two",
           "question_content": REPHRASE + "how many instruments are sounding in the video?"}
    path = write(tmp_path / "r.json", [row])
    with pytest.raises(SystemExit, match="more than 14 tokens"):
        Family(cls=torch.nn.Module).split(str(path))
    from avqa.annotations import Vocab
    split = FAMILY.split(str(path), Vocab(("<pad>",), ("one", "two")))
    assert split.answers.tolist() == [1] and split.types.tolist() == [0]
    with pytest.raises(SystemExit, match="'two' is not one of the model's classes"):
        FAMILY.split(str(path), Vocab(("<pad>",), ("one",)))
