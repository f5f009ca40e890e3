"""avqa.evaluate as a careless or unlucky user meets it: a result file whose own verdicts or truth indices
disagree with the annotation file, a folder or an empty or Latin-1 file given as predictions, a folder as
--annotations, the same annotation file twice, a read-only --out, a predictions file beside the annotations.
Each case is a row of docs/troubleshooting.md."""
import errno
import json
import os
import tempfile

import pytest

from avqa.annotations import QUESTION_TYPES
from conftest import run_here

ANSWERS = ["two", "yes", "three", "left", "no", "right", "one", "yes", "piano"] * 3  # each answer on 3+ questions
N = len(ANSWERS)
VOCAB = ["yes", "no", "one", "two", "three", "four", "left", "right", "piano"]  # a model's answer indices


@pytest.fixture
def ann(tmp_path):
    rows = [{"question_id": i + 1, "video_id": f"0000000{i}", "type": json.dumps(list(QUESTION_TYPES[i % 9])),
             "question_content": "How many <Object> are in the video?", "templ_values": '["piano"]',
             "question_deleted": 0, "anser": a} for i, a in enumerate(ANSWERS)]
    path = tmp_path / "ann" / "test.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rows))
    return path


def _result(path, preds, verdicts=None, truths=None):
    """A TSPM-style result file: question id, True/False, truth index, predicted index."""
    truths = truths or [VOCAB.index(a) for a in ANSWERS]
    verdicts = verdicts or [t == p for t, p in zip(truths, preds)]
    path.write_text("".join(f"{i + 1} \t {v} \t {t} \t {p}\n" for i, (v, t, p) in enumerate(zip(verdicts, truths, preds))))
    return path


def _evaluate(*args):
    return run_here("-m", "avqa.evaluate", *map(str, args), check=False)


def test_a_result_file_is_scored_from_the_annotation_file_not_its_verdicts(ann, tmp_path):
    right = [VOCAB.index(a) for a in ANSWERS]
    wrong = [VOCAB.index("four")] * N
    # every line says True, but the predicted index is not the truth: refused, naming the lines
    liar = _result(tmp_path / "liar.result", wrong, verdicts=[True] * N)
    r = _evaluate(liar, "--annotations", ann)
    assert r.returncode == 1 and "Overall" not in r.stdout
    assert "27 line(s) give a True/False verdict" in r.stderr and "line 1 (question 1: True, truth 3, predicted 5)" in r.stderr
    # an honest file scores 100 %, then a corrected gold answer in the annotation file is named, not ignored
    honest = _result(tmp_path / "honest.result", right)
    assert _evaluate(honest, "--annotations", ann, "--out", tmp_path / "h").returncode == 0
    assert json.loads((tmp_path / "h.json").read_text())["tables"][str(ann)]["Overall"]["accuracy"] == 100.0
    rows = json.loads(ann.read_text())
    rows[2]["anser"] = "four"  # question 3: three -> four
    ann.write_text(json.dumps(rows))
    r = _evaluate(honest, "--annotations", ann)
    assert r.returncode == 1 and "Overall" not in r.stdout
    assert "1 line(s) give a truth index that contradicts" in r.stderr
    assert "line 3 (question 3: truth index 4 is 'three', the annotation's answer is 'four')" in r.stderr


def test_a_named_answer_vocabulary_maps_the_predicted_indices(ann, tmp_path):
    vocab = tmp_path / "answers.json"
    vocab.write_text(json.dumps(VOCAB))
    preds = [VOCAB.index(a) for a in ANSWERS]
    preds[0] = VOCAB.index("four")  # question 1 answered four: wrong
    f = _result(tmp_path / "m.result", preds)
    assert _evaluate(f, "--annotations", ann, "--answers", vocab, "--out", tmp_path / "m").returncode == 0
    table = json.loads((tmp_path / "m.json").read_text())["tables"][str(ann)]
    assert table["Overall"] == {"accuracy": 96.3, "count": 27} and table["Audio Counting"]["accuracy"] == 66.67
    # another vocabulary (its first two answers swapped) contradicts the truth indices: refused
    vocab.write_text(json.dumps(["no", "yes", *VOCAB[2:]]))
    r = _evaluate(f, "--annotations", ann, "--answers", vocab)
    assert r.returncode == 1 and "truth index 0 is 'no', the annotation's answer is 'yes'" in r.stderr
    assert f"--answers {vocab}" in r.stderr


def test_a_folder_given_as_a_file_is_called_a_folder(ann, tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({str(i + 1): "yes" for i in range(N)}))
    r = _evaluate(tmp_path, "--annotations", ann)
    assert r.returncode == 1 and "is a folder" in r.stderr and "not found" not in r.stderr
    r = _evaluate(good, "--annotations", ann.parent)
    assert r.returncode == 1 and f"--annotations {ann.parent} is a folder" in r.stderr and f"e.g. --annotations {ann}" in r.stderr


def test_an_empty_predictions_file_is_called_empty(ann, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    r = _evaluate(empty, "--annotations", ann)
    assert r.returncode == 1 and "is empty" in r.stderr and "JSON" not in r.stderr


def test_a_latin1_csv_is_one_sentence_not_a_traceback(ann, tmp_path):
    latin = tmp_path / "p.csv"
    latin.write_bytes("question_id,answer\n".encode() + "".join(f"{i + 1},café\n" for i in range(N)).encode("latin-1"))
    r = _evaluate(latin, "--annotations", ann)
    assert r.returncode == 1 and "is not UTF-8 text (byte 0xe9" in r.stderr and "iconv" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_same_annotation_file_twice_is_refused(ann, tmp_path):
    copy = tmp_path / "copy.json"
    copy.write_bytes(ann.read_bytes())
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({str(i + 1): "yes" for i in range(N)}))
    for second in (ann, copy):
        r = _evaluate(preds, "--annotations", ann, "--annotations", second)
        assert r.returncode == 1 and "is given twice" in r.stderr and "Overall" not in r.stdout
    assert not (tmp_path / "p.eval.json").exists()


def test_a_read_only_out_is_named_before_any_table(ann, tmp_path, monkeypatch):
    """The tests run as root, who may write anywhere: the read-only folder is the file system's refusal to
    create a file in it, as mkstemp meets it."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def refuse(*args, dir=None, prefix=None, suffix=None, **kw):
        if dir is not None and os.path.realpath(dir) == os.path.realpath(ro):
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}x1y2{suffix}"))
        return real(*args, dir=dir, prefix=prefix, suffix=suffix, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({str(i + 1): "yes" for i in range(N)}))
    r = _evaluate(preds, "--annotations", ann, "--out", ro / "eval")
    assert r.returncode == 1 and "Overall" not in r.stdout
    assert f"--out {ro}: cannot write there (permission denied)" in r.stderr and ".tmp" not in r.stderr


def test_the_closest_known_annotation_file_is_never_a_predictions_file(ann, tmp_path):
    """Predictions kept beside the annotation file, as a JSON list with question ids, are not annotation files."""
    preds = ann.parent / "p.json"
    preds.write_text(json.dumps([{"question_id": i + 1, "answer": "yes"} for i in range(N - 1)]))
    old = ann.parent / "old_predictions.json"
    old.write_text(json.dumps([{"question_id": i + 1, "answer": "no"} for i in range(N - 2)]))
    r = _evaluate(preds, "--annotations", ann)
    assert r.returncode == 1 and "1 missing (e.g. 27)" in r.stderr
    assert "p.json (" not in r.stderr.split("holds")[-1] and "old_predictions.json" not in r.stderr
