"""python -m avqa.protocols video-disjoint: a validation split with no video of the test file, the same bytes on
every run, that the training scripts take as --label_val."""
import hashlib
import json
from pathlib import Path

import pytest

from avqa.annotations import load_annotations, question_key
from avqa.protocols import video_disjoint
from avqa.utils import sha256
from conftest import AVST, REAL, data_flags, run_here

needs_real = pytest.mark.skipif(REAL is None, reason="the real MUSIC-AVQA annotation files are not here "
                                                     "(set AVQA_REAL_ANNOTATIONS to their folder)")


def _rows(videos):
    return [{"question_id": i + 1, "video_id": v, "type": '["Audio", "Counting"]', "anser": "two",
             "question_content": "How many <Object> are in the video?", "templ_values": '["piano"]'}
            for i, v in enumerate(videos)]


def test_the_split_keeps_the_rows_whose_video_is_not_in_test_in_order():
    val = _rows(["00000003", "00000001", "00000002", "00000001", "00000004"])
    kept, removed = video_disjoint(val, _rows(["00000001", "00000004", "00000009"]))
    assert [r["question_id"] for r in kept] == [1, 3] and [r["question_id"] for r in removed] == [2, 4, 5]


@needs_real
def test_the_json_update_split_has_no_test_video_and_is_the_same_on_every_run(tmp_path):
    d = REAL / "json_update"
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "avqa-val-video-disjoint.json"
        said = run_here("-m", "avqa.protocols", "video-disjoint", "--data", d, "--out", out).stdout
        assert "1,941 of 4,568 validation questions on 1,519 of 3,815 videos; removed 2,627 questions on the 2,296 " \
               "videos" in said
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    split = load_annotations(outs[0])  # a valid annotation file, as --label_val reads it
    test_videos = {r["video_id"] for r in load_annotations(d / "avqa-test.json")}
    val = load_annotations(d / "avqa-val.json")
    assert not {r["video_id"] for r in split} & test_videos and len(split) == 1941
    assert split == [r for r in val if r["video_id"] not in test_videos]
    record = json.loads((tmp_path / "a" / "avqa-val-video-disjoint.record.json").read_text())
    assert record["test"]["sha256"] == hashlib.sha256((d / "avqa-test.json").read_bytes()).hexdigest()
    assert record["split"]["sha256"] == hashlib.sha256(outs[0].read_bytes()).hexdigest()
    removed = {question_key(r) for r in val if r["video_id"] in test_videos}
    assert set(record["removed"]["question_keys"]) == removed and record["removed"]["videos"] == 2296


def test_a_missing_or_folder_input_is_one_sentence(tmp_path):
    r = run_here("-m", "avqa.protocols", "video-disjoint", "--data", tmp_path, check=False)
    assert r.returncode == 1 and f"--val {tmp_path / 'avqa-val.json'}: not found" in r.stderr


def test_a_training_script_takes_the_split_as_label_val(tiny_features, tmp_path):
    """The tiny set's validation file with two test questions added (their videos are test videos): the split
    drops them, and AVST trains with it as --label_val."""
    j = tiny_features / "json"
    val, test = load_annotations(j / "avqa-val.json"), load_annotations(j / "avqa-test.json")
    mixed = tmp_path / "val_mixed.json"
    mixed.write_text(json.dumps(val + test[:2]))
    split = tmp_path / "val_vd.json"
    run_here("-m", "avqa.protocols", "video-disjoint", "--val", mixed, "--test", j / "avqa-test.json", "--out", split)
    assert load_annotations(split) == [r for r in val if r["video_id"] not in {t["video_id"] for t in test}]
    flags = data_flags(tiny_features)
    flags[flags.index("--label_val") + 1] = str(split)
    run_here(AVST, *flags, "--epochs", "1", "--batch-size", "16", "--pretrained_grounding", "none",
             "--model_save_dir", str(tmp_path / "avst"))
    assert (tmp_path / "avst" / "avst.pt").is_file()
    # test mode's report and its protocol line say which validation file and protocol selected the checkpoint
    said = run_here(AVST, *flags, "--mode", "test", "--model_save_dir", str(tmp_path / "avst")).stdout
    report = json.loads((tmp_path / "avst" / "avst_avqa-test.json").read_text())
    assert report["selected_on"] == {"file": "val_vd.json", "sha256": sha256(split), "protocol": "video-disjoint"}
    assert "selected on val_vd.json" in said and "video-disjoint protocol" in said


def test_every_table_and_report_records_the_protocol_and_the_annotation_file(tmp_path):
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps(_rows(["00000001", "00000002"])))
    sha = hashlib.sha256(ann.read_bytes()).hexdigest()
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"1": "two", "2": "three"}))
    for argv, report in (([preds], tmp_path / "p.eval"), ([preds, preds], tmp_path / "p.compare")):
        out = run_here("-m", "avqa.evaluate", *argv, "--annotations", ann, "--protocol", "video-disjoint").stdout
        assert "protocol: video-disjoint (model selection on a validation split with no video of the test file" in out
        assert f"{ann} (sha256 {sha[:16]}, 2 questions)" in out
        rec = json.loads(Path(f"{report}.json").read_text())
        assert rec["protocol"] == "video-disjoint" and rec["annotations"] == [{"path": str(ann), "sha256": sha, "questions": 2}]
        assert f"`{ann}` (sha256 `{sha[:16]}`, 2 questions), protocol `video-disjoint`" in Path(f"{report}.md").read_text()
