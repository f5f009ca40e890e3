"""TSPM's sentences per question: the question with its fillers in place, and the declarative "QA
prompt" of its template (docs/tspm.md, "CLIP features"). The CLIP text extractors encode these.

The prompt table maps each of MUSIC-AVQA's 33 question templates to a sentence pattern and the
fillers it takes (by position in ``templ_values``; -1 is the last). The sentences are TSPM's, word
for word. Templates are matched after stripping trailing spaces and reading the full-width '？' as
'?': three templates of the annotation files differ from TSPM's list only in that way; TSPM's
exact-string lookup finds no sentence for them and encodes the letter "e" ('error!'[0]) in its place
(docs/tspm.md, CLIP features).

Each sentence has two variants (VARIANTS): "intended", this project's reading, and "release", the
sentence the public release encodes, reproduced exactly for its CLIP text extractors' ``--prompt
release`` and ``--question release`` switches.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

from ..annotations import fillers, tokenize

ANY_PLAYING = "There are musical instruments playing in the video."
DIFFERENT_SOUNDS = "The sounds of musical instruments in the video are different."
IS_PLAYING = "The {} is playing in this video."

# template -> (sentence with one {} per filler used, positions of those fillers in templ_values)
PROMPTS: Mapping[str, tuple[str, tuple[int, ...]]] = {
    "Is this sound from the instrument in the video?": ("The sound is from the instrument in the video.", ()),
    "Is the <Object> in the video always playing?": ("The {} is not playing in this video.", (0,)),
    "Is there a voiceover?": ("There are sounds other than musical instruments in the video.", ()),
    "How many instruments are sounding in the video?": (ANY_PLAYING, ()),
    "How many types of musical instruments sound in the video?": (ANY_PLAYING, ()),
    "How many instruments in the video did not sound from beginning to end?":
        ("The instrument is not playing in the video.", ()),
    "How many sounding <Object> in the video?": (IS_PLAYING, (0,)),
    "Where is the <LL> instrument?": (DIFFERENT_SOUNDS, ()),
    "Is the <FL> sound coming from the <LR> instrument?":
        ("The instruments in the video are not sounding simultaneously.", ()),
    "Which is the musical instrument that sounds at the same time as the <Object>?": (IS_PLAYING, (0,)),
    "What is the <LR> instrument of the <FL> sounding instrument?":
        ("There are musical instruments on the {} that are not being played.", (-1,)),
    "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?":
        ("Inconsistent rhythmic sense of instrumental performance in the video.", ()),
    "Is the instrument on the <LR> louder than the instrument on the <LR>?": (DIFFERENT_SOUNDS, ()),
    "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?":
        ("The {} on the {} plays a different rhythm than the {} on the {}.", (0, 1, 2, -1)),
    "Is the <Object> on the <LR> louder than the <Object> on the <LR>?":
        ("The {} on the {} and the {} on the {} produce different volumes of sound.", (0, 1, 2, -1)),
    "Where is the <FL> sounding instrument?": ("The instruments in the video do not sound simultaneously.", ()),
    "Which <Object> makes the sound <FL>?": ("The {} in the video are not sounding at the same time.", (0,)),
    "What is the <TH> instrument that comes in?": (ANY_PLAYING, ()),
    "Which instrument makes sounds <BA> the <Object>?": (IS_PLAYING, (-1,)),
    "Is there a <Object> in the entire video?": ("The {} is not in this video.", (0,)),
    "Are there <Object> and <Object> instruments in the video?":
        ("There are instruments other than {} or {} in this video.", (0, -1)),
    "How many types of musical instruments appeared in the entire video?": (ANY_PLAYING, ()),
    "How many <Object> are in the entire video?": ("The {} is in this video.", (0,)),
    "Where is the performance?": (ANY_PLAYING, ()),
    "What is the instrument on the <LR> of <Object>?":
        ("There is a musical instrument on the {} side of the {}.", (0, -1)),
    "What kind of musical instrument is it?": (ANY_PLAYING, ()),
    "What kind of instrument is the <LRer> instrument?": (ANY_PLAYING, ()),
    "Is there a <Object> sound?": ("There are sounds of instruments other than the {} in the video.", (0,)),
    "Are there <Object> and <Object> sound?":
        ("There are sounds of instruments other than the {} or the {} in the video.", (0, -1)),
    "How many musical instruments were heard throughout the video?": (ANY_PLAYING, ()),
    "Is the <Object> more rhythmic than the <Object>?": ("The {} and {} have different rhythms in the video.", (0, -1)),
    "Is the <Object> louder than the <Object>?": ("The {} and {} have different sounds in the video.", (0, -1)),
    "Is the <Object> playing longer than the <Object>?":
        ("The {} and {} are not played at the same time in the video.", (0, -1)),
}


class PromptError(ValueError):
    """A question whose template is none of the 33, or whose fillers the prompt cannot take."""


def template_key(question_content: str) -> str:
    """The template as the prompt table spells it: trailing spaces stripped, '？' read as '?'."""
    return question_content.rstrip().replace("？", "?")


def qa_prompt(sample: dict, source: str | Path = "<memory>") -> str:
    """TSPM's QA prompt of an annotation row; PromptError names ``source`` and the question otherwise."""
    values = [v.replace(" ", "") for v in fillers(sample)]  # TSPM drops spaces inside the fillers
    return _prompt(sample, source, template_key(sample["question_content"]), values)


def _prompt(sample: dict, source: str | Path, key: str, values: list[str]) -> str:
    """The sentence PROMPTS gives template ``key`` with ``values``; PromptError naming the row otherwise."""
    if key not in PROMPTS:
        raise PromptError(f"{source}: question {sample.get('question_id')}: template {sample['question_content']!r} "
                          f"is none of the 33 MUSIC-AVQA templates that TSPM has a QA prompt for")
    pattern, positions = PROMPTS[key]
    try:
        return pattern.format(*(values[i] for i in positions))
    except IndexError:
        raise PromptError(f"{source}: question {sample.get('question_id')}: {len(values)} template values for "
                          f"{sample['question_content']!r}, which needs {max(positions) + 1}") from None


def question_text(sample: dict) -> str:
    """The question with its fillers in place and its final '?' (or '？') dropped, words joined by one
    space: the text QA-TIGER's data loader hands CLIP's tokenizer ("How many cello are in the entire video")."""
    return " ".join(tokenize({**sample, "question_content": sample["question_content"].lstrip()}))


def question_sentence(sample: dict) -> str:
    """The question as TSPM's question extractor means to encode it: question_text ending in '?'."""
    return question_text(sample) + "?"


# ----------------------------------------------------------------------------- the release's sentences

VARIANTS = ("intended", "release")
MISSED = "e"  # what the release encodes for a template its exact lookup misses: 'error!'[0]


def release_prompt(sample: dict, source: str | Path = "<memory>") -> str:
    """The QA prompt the release encodes: the template looked up as it is written (a trailing space or a
    '？' misses, giving MISSED), and the fillers read by cutting the ``templ_values`` text at its commas
    after deleting quotes, brackets and spaces (a list, as some v2.0 rows hold, is read as its JSON text).
    A template that is none of the 33 however written is refused, as qa_prompt refuses it."""
    content = sample["question_content"]
    if content not in PROMPTS and template_key(content) in PROMPTS:
        return MISSED
    raw = sample["templ_values"] if isinstance(sample["templ_values"], str) else json.dumps(sample["templ_values"])
    return _prompt(sample, source, content, "".join(ch for ch in raw if ch not in '"[] ').split(","))


def release_question_sentence(sample: dict) -> str:
    """The question sentence the release's question extractor encodes: each <...> word replaced by the
    next CHARACTER of the ``templ_values`` text ('["cello"]' gives '[' then '"'), not the next value."""
    return " ".join(tokenize({**sample, "templ_values": list(sample["templ_values"])})) + "?"


def sentence_builder(kind: str, variant: str) -> Callable[[dict, str | Path], str]:
    """The sentence of ``kind`` ('question' or 'prompt') in ``variant`` (VARIANTS): (row, source) -> text."""
    return {("prompt", "intended"): qa_prompt, ("prompt", "release"): release_prompt,
            ("question", "intended"): lambda row, _source: question_sentence(row),
            ("question", "release"): lambda row, _source: release_question_sentence(row)}[kind, variant]
