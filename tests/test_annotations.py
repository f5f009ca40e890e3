"""The annotation layer on the real files and on hand-made broken ones."""
import json

import pytest

from avqa.annotations import (ANSWERS, AnnotationError, Vocab, load_annotations, statistics, tokenize)
from conftest import REAL, needs_real


def row(**kw):
    base = {"video_id": "00000001", "question_id": 7, "type": '["Audio", "Counting"]',
            "question_content": "Is there a <Object> sound?", "templ_values": '["piano"]',
            "question_deleted": 0, "anser": "yes"}
    base.update(kw)
    return base


def test_tokenize_replaces_tags_in_order_and_drops_the_question_mark():
    s = row(question_content="Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
            templ_values='["violin", "left", "piano", "right"]')
    assert tokenize(s) == ["Is", "the", "violin", "on", "the", "left", "louder", "than", "the", "piano", "on", "the",
                           "right"]


def test_tokenize_handles_the_full_width_mark_and_trailing_space():
    assert tokenize(row(question_content="How many sounding <Object> in the video？", templ_values='["cello"]')) == \
        ["How", "many", "sounding", "cello", "in", "the", "video"]
    assert tokenize(row(question_content="Are there <Object> and <Object> sound? ",
                        templ_values='["tuba", "drum"]'))[-1] == "sound"


def test_vocabulary_is_in_order_of_first_appearance():
    samples = [row(anser="no", templ_values='["tuba"]'), row(anser="yes"), row(question_content="Where is the performance?",
                                                                           templ_values="[]", anser="indoor")]
    v = Vocab.from_samples(samples)
    assert v.questions[:6] == ("<pad>", "Is", "there", "a", "tuba", "sound")
    assert v.questions[6:] == ("piano", "Where", "is", "the", "performance")
    assert v.answers == ("no", "yes", "indoor")
    q, a = v.encode([row()])
    assert q[0] == [1, 2, 3, 6, 5] + [0] * 9 and a == [1]


def test_unseen_word_is_a_clear_error_not_a_keyerror():
    v = Vocab.from_samples([row()])
    with pytest.raises(AnnotationError, match=r"question_id 9.*'banjo'"):
        v.encode([row(question_id=9, templ_values='["banjo"]')], "test.json")


@pytest.mark.parametrize("bad, reason", [
    ({"anser": None}, "missing key"),
    ({"question_content": "Is there a <Thing> sound?"}, "unknown tag"),
    ({"templ_values": '["piano", "drum"]'}, "1 tag(s) but 2 filler(s)"),
    ({"anser": "maybe"}, "not one of the 42"),
])
def test_malformed_rows_are_rejected_with_file_question_and_reason(tmp_path, bad, reason):
    r = row(question_id=4242, **{k: v for k, v in bad.items() if v is not None})
    if bad.get("anser", 1) is None:
        del r["anser"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps([row(), r]))
    with pytest.raises(AnnotationError) as e:
        load_annotations(path)
    msg = str(e.value)
    assert str(path) in msg and "question_id 4242" in msg and reason in msg


def test_answer_set_has_42_answers():
    assert len(ANSWERS) == 42 and "more than ten" in ANSWERS and "simultaneously" in ANSWERS


@needs_real
def test_real_statistics_match_the_release():
    test = statistics(load_annotations(REAL / "json" / "avqa-test.json"))
    val = statistics(load_annotations(REAL / "json" / "avqa-val.json"))
    assert (test["qa_pairs"], test["videos"]) == (9185, 6399)
    assert (val["qa_pairs"], val["videos"]) == (4595, 3815)
    assert test["templates"] == val["templates"] == 33 and test["types"] == val["types"] == 9
    upd = statistics(load_annotations(REAL / "json_update" / "avqa-test.json"))
    assert upd["qa_pairs"] == 9129


@needs_real
def test_duplicate_question_ids_are_kept():
    samples = load_annotations(REAL / "json" / "avqa-test.json")
    ids = [s["question_id"] for s in samples]
    assert len(ids) - len(set(ids)) == 55


@needs_real
def test_statistics_command_prints_the_counts():
    from conftest import run_here
    out = run_here("-m", "avqa.annotations", "--brief", str(REAL / "json" / "avqa-test.json")).stdout
    assert "9,185 QA over 6,399 videos, 33 templates, 9 types" in out
