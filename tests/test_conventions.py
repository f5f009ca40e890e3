"""The three conventions for free-text answers (ours, exact, substring) on 100 hand-written answers, each
answer's verdict under each convention written by hand from the rules in docs/evaluation.md."""
import json

import pytest

from avqa.annotations import QUESTION_TYPES
from avqa.evaluate.conventions import JUDGES, judge_answers
from conftest import run_here

T, F = True, False
# (answer, gold answer, right under ours, exact, substring)
ANSWERS = [
    ("yes", "yes", T, T, T), ("Yes.", "yes", T, T, T), ("YES", "yes", T, T, T), ("yes .", "yes", T, T, T),
    ("Yes, it is.", "yes", T, F, T), ("No.", "yes", F, F, F), ("no", "no", T, T, T),
    ("No, it is not.", "no", T, F, T), ("I don't know.", "no", T, F, T), ("Nope", "no", T, F, T),
    ("Not really", "no", T, F, T), ("Yeah", "yes", T, F, F), ("Yes", "no", F, F, F),
    ("There is none.", "no", F, F, T), ("Correct", "yes", T, F, F), ("true", "yes", T, F, F),
    ("It is not playing.", "no", T, F, T), ("Absolutely yes", "yes", T, F, T), ("no.", "yes", F, F, F),
    ("Yes!", "yes", T, F, T),
    # counts
    ("two", "two", T, T, T), ("Two.", "two", T, T, T), ("2", "two", T, F, F), ("There are two.", "two", T, F, T),
    ("There are 2 instruments.", "two", T, F, F), ("three", "two", F, F, F), ("one", "one", T, T, T),
    ("Only one.", "one", T, F, T), ("None", "zero", T, F, F), ("no instruments", "zero", T, F, F),
    ("0", "zero", T, F, F), ("more than ten", "more than ten", T, T, T), ("More than 10.", "more than ten", T, F, F),
    ("twelve", "more than ten", T, F, F), ("ten", "more than ten", F, F, F), ("more than ten", "ten", F, F, T),
    ("Someone", "one", F, F, T), ("four", "four", T, T, T), ("Four instruments are playing.", "four", T, F, T),
    ("fourteen", "four", F, F, T), ("3", "three", T, F, F), ("three.", "three", T, T, T),
    ("Three . ", "three", T, T, T), ("about five", "five", T, F, T), ("five or six", "five", T, F, T),
    ("six or five", "five", F, F, T), ("seven", "eight", F, F, F), ("Eight", "eight", T, T, T),
    ("nine", "nine", T, T, T), ("I count 9.", "nine", T, F, F),
    # places
    ("left", "left", T, T, T), ("Left.", "left", T, T, T), ("the left one", "left", T, F, T),
    ("On the left side.", "left", T, F, T), ("leftmost", "left", T, F, T), ("right", "left", F, F, F),
    ("Right", "right", T, T, T), ("the right one", "right", T, F, T), ("bright", "right", F, F, T),
    ("middle", "middle", T, T, T), ("In the center.", "middle", T, F, F), ("in the middle", "middle", T, F, T),
    ("simultaneously", "simultaneously", T, T, T), ("At the same time.", "simultaneously", T, F, F),
    ("left", "simultaneously", F, F, F), ("They play together", "simultaneously", T, F, F),
    ("not the left one", "left", T, F, T), ("Left and right", "right", F, F, T),
    # scenes
    ("indoor", "indoor", T, T, T), ("Indoors.", "indoor", T, F, T), ("outdoor", "outdoor", T, T, T),
    ("outside", "outdoor", T, F, F), ("inside a room", "indoor", T, F, F), ("outdoor", "indoor", F, F, F),
    ("It was recorded indoors.", "indoor", T, F, T),
    # instruments
    ("piano", "piano", T, T, T), ("Piano.", "piano", T, T, T), ("The piano.", "piano", T, F, T),
    ("acoustic_guitar", "acoustic_guitar", T, T, T), ("acoustic guitar", "acoustic_guitar", T, F, F),
    ("Acoustic-Guitar", "acoustic_guitar", T, F, F), ("guitar", "acoustic_guitar", T, F, F),
    ("violin", "violin", T, T, T), ("fiddle", "violin", T, F, F), ("cello", "violin", F, F, F),
    ("Violins", "violin", T, F, T), ("drums", "drum", T, F, T), ("sax", "saxophone", T, F, F),
    ("flute", "flute", T, T, T), ("I think it is the flute.", "flute", T, F, T),
    ("The cello and the piano", "piano", F, F, T), ("bass", "electric_bass", T, F, F),
    ("ELECTRIC_BASS", "electric_bass", T, T, T), ("trumpet", "trumpet", T, T, T), ("trumpet.", "tuba", F, F, F),
    ("xylophone", "xylophone", T, T, T), ("accordion", "accordion", T, T, T), ("erhu", "erhu", T, T, T),
    ("I cannot tell.", "erhu", F, F, F), ("", "yes", F, F, F),
]
# the totals, counted by hand from the columns above
RIGHT = {"ours": 79, "exact": 31, "substring": 64}


def test_one_hundred_answers_under_each_convention():
    assert len(ANSWERS) == 100
    for i, name in enumerate(("ours", "exact", "substring")):
        said = [a for a, *_ in ANSWERS]
        golds = [g for _, g, *_ in ANSWERS]
        right, _ = judge_answers(said, golds, name)
        wrong = [(a, g) for (a, g, *want), got in zip(ANSWERS, right) if want[i] != got]
        assert not wrong, (name, wrong)
        assert sum(right) == RIGHT[name] == sum(row[2 + i] for row in ANSWERS)


def test_unmapped_answers_differ_by_convention():
    """Unmapped: ours names no answer of the question's kind; exact is none of the 42 once upper-cased;
    substring holds none of the 42 anywhere."""
    cases = {("I cannot tell.", "erhu"): (F, F, T),  # "cannot" holds "no"
             ("Yes, it is.", "yes"): (T, F, T), ("bright", "right"): (F, F, T),
             ("outside", "outdoor"): (T, F, F), ("There is none.", "no"): (F, F, T), ("", "yes"): (F, F, F)}
    for (text, gold), mapped in cases.items():
        assert tuple(JUDGES[c](text, gold)[1] for c in ("ours", "exact", "substring")) == mapped, text


@pytest.fixture
def free_text(tmp_path):
    """Ten questions of one type, answered in free text, and the annotation file."""
    rows, said = [], {}
    for i, (answer, gold, *_) in enumerate(ANSWERS[20:30]):
        rows.append({"question_id": i + 1, "video_id": f"0000000{i % 3}", "type": json.dumps(list(QUESTION_TYPES[0])),
                     "question_content": "How many <Object> are in the entire video?", "templ_values": '["piano"]',
                     "question_deleted": 0, "anser": gold})
        said[str(i + 1)] = answer
    ann, preds = tmp_path / "test.json", tmp_path / "llm.json"
    ann.write_text(json.dumps(rows))
    preds.write_text(json.dumps(said))
    return ann, preds


def test_all_conventions_side_by_side_say_which_made_each_figure(free_text, tmp_path):
    ann, preds = free_text
    out = run_here("-m", "avqa.evaluate", preds, "--annotations", ann, "--convention", "all").stdout
    header = next(line for line in out.splitlines() if line.split() == ["ours", "exact", "substring"])
    assert header and "convention: all" in out
    overall = next(line for line in out.splitlines() if line.strip().startswith("Overall"))
    # ANSWERS[20:30]: ours 9 of 10 right, exact 3, substring 5
    assert overall.split()[1:7] == ["90.00", "%", "30.00", "%", "50.00", "%"]
    assert "under the exact convention" in out and "under the substring convention" in out
    report = json.loads((tmp_path / "llm.eval.json").read_text())
    assert report["convention"] == "all" and report["protocol"] == "official"
    assert {c: r["tables"][str(ann)]["Overall"]["accuracy"] for c, r in report["conventions"].items()} == \
        {"ours": 90.0, "exact": 30.0, "substring": 50.0}
    assert {c: r["unmapped_answers"] for c, r in report["conventions"].items()} == {"ours": 0, "exact": 6, "substring": 2}
    md = (tmp_path / "llm.eval.md").read_text()
    assert "| | ours | exact | substring |" in md and "| Overall | 90.00 (10) | 30.00 (10) | 50.00 (10) |" in md
