"""Reading a typed question as the model reads it, and the template and type it follows."""
from __future__ import annotations

import difflib
import textwrap
from typing import Sequence

from ..annotations import MAX_QUESTION_LEN, PAD, QUESTION_TYPES, TAG_VALUES, Vocab, template_tags, tokenize
from ..templates import TEMPLATES
from ..utils import USAGE
from .errors import AskError


def read_question(text: str, vocab: Vocab) -> list[str]:
    """The question's words as the model reads them (the original's tokenisation), or an AskError
    naming each unknown word with the closest known ones.

    Forgiven on the way: a missing '?', extra spaces, a capital letter more or less (the first word
    takes its capital), and instrument names typed with a space ('acoustic guitar' for acoustic_guitar).
    """
    if "<" in text or ">" in text:
        raise AskError("write the question with its placeholders filled in (e.g. 'Is the violin louder than the "
                       "piano?'); python -m avqa.ask --template lists them and their words", USAGE)
    body = " ".join(text.split()).rstrip("?？").rstrip()
    if not body:
        raise AskError("the question is empty", USAGE)
    raw = tokenize({"question_content": body + "?", "templ_values": []})
    known = set(vocab.questions) - {PAD}
    words: list[str] = []
    i = 0
    while i < len(raw):
        pair = f"{raw[i]}_{raw[i + 1]}".lower() if i + 1 < len(raw) else ""
        if pair in known and raw[i] not in known:
            words.append(pair)
            i += 2
            continue
        w = raw[i]
        words.append(w if w in known else next((v for v in (w.lower(), w.capitalize()) if v in known), w))
        i += 1
    first = words[0][:1].upper() + words[0][1:]
    if first in known:  # the templates' questions all begin with a capital, a word of its own to the model
        words[0] = first
    unknown = list(dict.fromkeys(w for w in words if w not in known))
    if unknown:
        listed = sorted(known)
        parts = []
        for w in unknown:
            close = difflib.get_close_matches(w, listed, n=3, cutoff=0.6)
            parts.append(f"'{w}' (closest known: {', '.join(close)})" if close else f"'{w}' (no close known word)")
        raise AskError(f"the checkpoint's vocabulary ({len(known)} words) has no {'; no '.join(parts)}. Rephrase "
                       f"with known words: python -m avqa.ask --template lists the templates and the words it knows",
                       USAGE)
    if len(words) > MAX_QUESTION_LEN:
        raise AskError(f"the question has {len(words)} words; the model reads at most {MAX_QUESTION_LEN}", USAGE)
    return words


def template_words(text: str) -> list[str]:
    """A template's words as the original tokenises questions, each placeholder kept as its tag."""
    return tokenize({"question_content": text, "templ_values": template_tags(text)})


def infer_template(words: Sequence[str]) -> tuple[str, tuple[str, str], bool]:
    """The template the question follows and its type, or (False) the closest template."""
    def fits(word: str, token: str) -> bool:
        return word == token or word in TAG_VALUES.get(token, ())

    scored = []
    for text, modality, kind in TEMPLATES:
        tokens = template_words(text)
        if len(tokens) == len(words) and all(fits(w, t) for w, t in zip(words, tokens)):
            return text.rstrip(), (modality, kind), True
        tags = [t for t in tokens if t in TAG_VALUES]
        general = [next((t for t in tags if w in TAG_VALUES[t]), w) for w in words]
        scored.append((difflib.SequenceMatcher(None, general, tokens).ratio(), text.rstrip(), (modality, kind)))
    _, text, qtype = max(scored, key=lambda s: s[0])
    return text, qtype, False


def template_listing(vocab: Vocab) -> str:
    """The 33 templates by type, each placeholder's words this checkpoint knows, and all its words."""
    known = set(vocab.questions) - {PAD}
    lines = [f"The {len(TEMPLATES)} MUSIC-AVQA question templates, by type. Fill each <placeholder> with one of its "
             f"words below; (!) marks a template with a word this checkpoint does not know."]
    for qtype in QUESTION_TYPES:
        lines.append(f"  {' / '.join(qtype)}")
        for text, modality, kind in TEMPLATES:
            if (modality, kind) == qtype:
                plain = [w for w in template_words(text) if w not in TAG_VALUES]
                lines.append(f"    {text.rstrip()}{'  (!)' if any(w not in known for w in plain) else ''}")
    lines.append("Placeholders, with the words this checkpoint knows for them:")
    for tag, values in TAG_VALUES.items():
        have = [v for v in values if v in known]
        missing = [v for v in values if v not in known]
        text = f"{tag:<9} {', '.join(have) or '(none)'}" + (f"   (unknown: {', '.join(missing)})" if missing else "")
        lines += textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent=" " * 12)
    lines += textwrap.wrap(f"All {len(known)} words it knows: {', '.join(sorted(known, key=str.lower))}", 100,
                           subsequent_indent="  ")
    return "\n".join(lines)

