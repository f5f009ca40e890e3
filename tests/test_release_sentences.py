"""The sentences the releases encode (``--prompt release``, ``--question release``) beside the intended ones,
and the question text QA-TIGER tokenises, on hand-made rows and on the real annotation files."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from avqa.annotations import fillers, load_annotations
from avqa.features.prompts import (MISSED, PromptError, qa_prompt, question_sentence, question_text, release_prompt,
                               release_question_sentence, sentence_builder, template_key)
from conftest import REAL, needs_real

# the three templates of the annotation files that the release's exact lookup misses, and how many of
# json_update's validation and test questions use each
MISSED_TEMPLATES = {"How many sounding <Object> in the video？": 630, "Are there <Object> and <Object> sound? ": 456,
                    "What kind of instrument is the <LRer> instrument? ": 421}


def row(content: str, values: str, qid: int = 1) -> dict:
    return {"question_id": qid, "question_content": content, "templ_values": values}


def test_release_prompt_is_e_where_the_lookup_misses_and_the_intended_one_elsewhere():
    missed = row("Are there <Object> and <Object> sound? ", '["banjo", "ukulele"]')
    assert release_prompt(missed) == MISSED == "e"
    assert qa_prompt(missed) == "There are sounds of instruments other than the banjo or the ukulele in the video."
    found = row("Is the <Object> on the <LR> louder than the <Object> on the <LR>?", '["piano", "left", "violin", "right"]')
    assert release_prompt(found) == qa_prompt(found) == \
        "The piano on the left and the violin on the right produce different volumes of sound."
    # v2.0 rows may hold the values as a list: read as its JSON text, the same sentence
    listed = {**found, "templ_values": ["piano", "left", "violin", "right"]}
    assert release_prompt(listed) == qa_prompt(found)


def test_release_prompt_refuses_what_no_spelling_of_the_33_templates_is():
    with pytest.raises(PromptError, match=r"q\.json: question 7: template 'Who plays\?' is none of the 33"):
        release_prompt(row("Who plays?", "[]", 7), "q.json")
    with pytest.raises(PromptError, match="1 template values for .* which needs 3"):
        release_prompt(row("Is the <Object> on the <LR> louder than the <Object> on the <LR>?", '["piano"]'))


def test_release_question_sentence_takes_the_characters_of_the_values_text():
    two = row("Is the <Object> more rhythmic than the <Object>？", '["cello", "flute"]')
    assert release_question_sentence(two) == 'Is the [ more rhythmic than the "?'
    assert question_sentence(two) == "Is the cello more rhythmic than the flute?"
    assert question_text(two) == "Is the cello more rhythmic than the flute"
    plain = row("Is there a voiceover?", "[]")
    assert release_question_sentence(plain) == question_sentence(plain) == "Is there a voiceover?"


def test_question_text_is_what_qa_tigers_loader_tokenises():
    """Both ends stripped, split on single spaces, the last character dropped, fillers in place."""
    q = row("  Which <Object> makes the sound <FL>? ", '["acoustic_guitar", "first"]')
    assert question_text(q) == "Which acoustic_guitar makes the sound first"
    assert question_sentence(q) == question_text(q) + "?"


def test_builders_by_kind_and_variant():
    q = row("How many <Object> are in the entire video?", '["cello"]')
    assert sentence_builder("question", "intended")(q, "f") == "How many cello are in the entire video?"
    assert sentence_builder("question", "release")(q, "f") == "How many [ are in the entire video?"
    assert sentence_builder("prompt", "intended")(q, "f") == sentence_builder("prompt", "release")(q, "f") == \
        "The cello is in this video."


def _json_update_rows() -> list[dict]:
    files = [REAL / "json_update" / f"avqa-{s}.json" for s in ("val", "test")]
    return [r for f in files for r in load_annotations(f, check=False)]


@needs_real
def test_release_prompt_misses_1507_of_json_updates_13697_questions():
    rows = _json_update_rows()
    assert len(rows) == 13697
    missed = Counter(r["question_content"] for r in rows if release_prompt(r) == MISSED)
    assert missed == MISSED_TEMPLATES and sum(missed.values()) == 1507
    assert not any(qa_prompt(r) == MISSED for r in rows)
    # every other question: the release's sentence is the intended one
    assert all(release_prompt(r) == qa_prompt(r) for r in rows if r["question_content"] not in MISSED_TEMPLATES)
    assert all(template_key(t) != t for t in MISSED_TEMPLATES)


@needs_real
def test_release_question_sentences_on_the_real_questions():
    """Where a question has <...> words, the release's sentence differs from the intended one: its p-th
    such word is the p-th character of the values text; elsewhere the two are the same."""
    rows = _json_update_rows()
    differ = 0
    for r in rows:
        release, intended = release_question_sentence(r).split(" "), question_sentence(r).split(" ")
        tags = [i for i, w in enumerate(r["question_content"].rstrip()[:-1].split(" ")) if "<" in w]
        assert len(release) == len(intended)
        assert [release[i].rstrip("?") for i in tags] == list(r["templ_values"][:len(tags)])
        assert [intended[i].rstrip("?") for i in tags] == fillers(r)[:len(tags)]
        assert [w for i, w in enumerate(release) if i not in tags] == [w for i, w in enumerate(intended) if i not in tags]
        differ += release != intended
    assert differ == sum(1 for r in rows if "<" in r["question_content"]) == 9481
    assert all(question_text(r) + "?" == question_sentence(r) and "<" not in question_text(r) for r in rows)


@needs_real
def test_qa_tiger_text_of_a_few_real_questions():
    rows = {r["question_id"]: r for r in json.loads((REAL / "json_update" / "avqa-test.json").read_text())}
    some = [r for r in rows.values() if r["question_content"].startswith("How many sounding")][:3]
    for r in some:
        assert question_text(r) == f"How many sounding {fillers(r)[0]} in the video"
