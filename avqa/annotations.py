"""MUSIC-AVQA annotation files: schema, validation, tokenisation, vocabularies, statistics.

One module reads the real release (``json/``, ``json_update/``), MUSIC-AVQA v2.0 and our synthetic
set alike. v2.0 files leave ``question_id`` out of some rows (:func:`question_key` names those),
carry extra fields, and name new videos by their YouTube id, with a ``_flip`` (mirrored copy) or
``_#02`` (second segment) suffix.
Tokenisation and vocabulary order are bit-for-bit those of the original code, because the
original checkpoints index their embedding and answer layers by them.

Run ``python -m avqa.annotations data/json/avqa-test.json ...`` to print statistics.
"""
from __future__ import annotations

import argparse
import ast
import collections
import functools
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .utils import EXIT_CODES, relative_hint, user_errors

# ----------------------------------------------------------------------------- vocabulary facts

INSTRUMENTS: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas",
    "drum", "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "suona",
    "trumpet", "tuba", "ukulele", "violin", "xylophone",
)
NUMBERS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "more than ten",
)
ANSWERS: frozenset[str] = frozenset(
    NUMBERS + ("yes", "no", "left", "right", "middle", "indoor", "outdoor", "simultaneously")
    + INSTRUMENTS
)
assert len(ANSWERS) == 42

# Template tags and the words that may fill them.
TAG_VALUES: dict[str, tuple[str, ...]] = {
    "<Object>": INSTRUMENTS,
    "<LR>": ("left", "right", "middle"),
    "<LRer>": ("leftest", "rightest"),
    "<TH>": ("first", "second", "third", "fourth", "fifth"),
    "<FL>": ("first", "last"),
    "<LL>": ("loudest", "lowest"),
    "<BA>": ("before", "after"),
}

# The nine question types in the order of the paper's result table.
QUESTION_TYPES: tuple[tuple[str, str], ...] = (
    ("Audio", "Counting"), ("Audio", "Comparative"),
    ("Visual", "Counting"), ("Visual", "Location"),
    ("Audio-Visual", "Existential"), ("Audio-Visual", "Location"), ("Audio-Visual", "Counting"),
    ("Audio-Visual", "Comparative"), ("Audio-Visual", "Temporal"),
)
REQUIRED_KEYS = ("video_id", "type", "question_content", "templ_values", "anser")
# Fields of the original release; v2.0 adds others (audio_instrument, video_instrument, person, ...).
KNOWN_KEYS = frozenset(REQUIRED_KEYS + ("question_id", "question_deleted"))
MAX_QUESTION_LEN = 14  # tokens after tokenisation; shorter questions are padded with <pad>
PAD = "<pad>"


class AnnotationError(ValueError):
    """A problem in an annotation file, naming the file, the question and the reason."""

    def __init__(self, path: str | Path, problems: Sequence[str]):
        self.path = str(path)
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{self.path}: {len(self.problems)} problem(s):\n  {shown}{more}")


# ----------------------------------------------------------------------------- parsing


def tag_of(token: str) -> str:
    """The tag inside a template token: '<Object>?' -> '<Object>'."""
    start, end = token.find("<"), token.find(">")
    return token[start:end + 1] if 0 <= start < end else token


def template_tags(question_content: str) -> list[str]:
    """Tags in the order their fillers appear in templ_values."""
    return list(_template_tags(question_content))


# A test set repeats a few thousand distinct strings over up to hundreds of thousands of rows: each is
# parsed once (MUSIC-AVQA-R's 211,572 questions validate in about a second).
@functools.lru_cache(maxsize=1 << 16)
def _template_tags(question_content: str) -> tuple[str, ...]:
    return tuple(tag_of(t) for t in question_content.rstrip().split(" ") if "<" in t)


@functools.lru_cache(maxsize=1024)
def _parse_type(text: str) -> tuple[str, str]:
    t = json.loads(text)
    return t[0], t[1]


@functools.lru_cache(maxsize=1 << 16)
def _parse_fillers(text: str) -> tuple[str, ...]:
    return tuple(ast.literal_eval(text))


def question_type(sample: dict) -> tuple[str, str]:
    """('Audio-Visual', 'Counting') from the string-encoded ``type`` field."""
    t = sample["type"]
    if isinstance(t, str):
        return _parse_type(t)
    return t[0], t[1]


_TYPE_INDEX = {t: i for i, t in enumerate(QUESTION_TYPES)}


def type_index(sample: dict) -> int:
    """The question's type as an index into QUESTION_TYPES (the order of the result table)."""
    return _TYPE_INDEX[question_type(sample)]


def fillers(sample: dict) -> list[str]:
    v = sample["templ_values"]
    return list(_parse_fillers(v)) if isinstance(v, str) else list(v)


def question_key(sample: dict) -> str:
    """The key that names a question in prediction files.

    The ``question_id`` as a decimal string ("47859" for 47859 or 47859.0). A row without one (as in
    MUSIC-AVQA v2.0) gets ``<video_id>/<12 hex digits>``: the start of the sha256 of the JSON list
    [question text stripped, fillers, type], so the key depends on nothing but the question itself.
    """
    qid = sample.get("question_id")
    if qid is not None:
        return str(int(qid)) if isinstance(qid, float) and qid.is_integer() else str(qid)
    text = json.dumps([sample["question_content"].strip(), fillers(sample), list(question_type(sample))])
    return f"{sample['video_id']}/{hashlib.sha256(text.encode()).hexdigest()[:12]}"


# MUSIC-AVQA ids: 8 digits ("00005754") or a letter prefix and digits ("sa00007079", "evv00001381");
# v2.0's new videos: an 11-character YouTube id, then "_flip" and/or "_#NN".
_VIDEO_ID = re.compile(r"^(?:(?P<avqa>[a-z]{0,3}\d{8})|(?P<youtube>[A-Za-z0-9_-]{11}))(?P<segment>_#\d+)?(?P<flip>_flip)?$")


def video_kind(video_id: str) -> tuple[str, str | None, bool] | None:
    """('musicavqa' or 'youtube', segment suffix or None, flipped) for a known id form; None otherwise."""
    m = _VIDEO_ID.match(video_id)
    if m is None:
        return None
    return ("musicavqa" if m["avqa"] else "youtube"), m["segment"], bool(m["flip"])


def is_recording(video_id: str) -> bool:
    """True for a recorded video, False for MUSIC-AVQA's composed ones (ids with a letter prefix:
    'sa', 'va', 'vv', 'esa', 'eva', 'evv') and for ids of no known form.

    Recordings are the ids of digits only and v2.0's YouTube ids, with or without their ``_#NN``
    (another segment of the recording) and ``_flip`` (the recording mirrored) suffixes.
    """
    if video_id.isdigit():
        return True
    kind = video_kind(video_id)
    return kind is not None and kind[0] == "youtube"


def tokenize(sample: dict) -> list[str]:
    """Tokens of a question as the original code builds them (no padding).

    Split the stripped text on single spaces, drop the last character of the last token (the
    '?' or the full-width '？'), then replace every token containing '<' by the next filler.
    """
    return list(_tokens(sample["question_content"], tuple(fillers(sample))))


@functools.lru_cache(maxsize=1 << 16)
def _tokens(question_content: str, values: tuple[str, ...]) -> tuple[str, ...]:
    words = question_content.rstrip().split(" ")
    words[-1] = words[-1][:-1]
    p = 0
    for i, w in enumerate(words):
        if "<" in w:
            words[i] = values[p]
            p += 1
    return tuple(words)


def validate(samples: object, path: str | Path = "<memory>", strict_values: bool = True,
             max_tokens: int | None = MAX_QUESTION_LEN) -> None:
    """Raise AnnotationError listing every malformed row (file, question_id, reason).

    ``max_tokens``: the longest question allowed, in this project's tokens (the 14 of the word-embedding
    models' question encoders); None for a reader of any length (CLIP's 77 BPE ids, the scorer)."""
    if not isinstance(samples, list):
        raise AnnotationError(path, ["the file must hold a JSON list of question objects"])
    problems: list[str] = []
    types = set(QUESTION_TYPES)
    for row, s in enumerate(samples):
        where = f"row {row}"
        if not isinstance(s, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        if s.get("question_id") is not None:
            where += f" (question_id {s['question_id']})"
        missing = [k for k in REQUIRED_KEYS if k not in s]
        if missing:
            problems.append(f"{where}: missing key(s) {', '.join(missing)}")
            continue
        try:
            qt = question_type(s)
        except (ValueError, TypeError, IndexError):
            problems.append(f"{where}: 'type' is not a JSON list like '[\"Audio\", \"Counting\"]'")
            continue
        if qt not in types:
            problems.append(f"{where}: unknown question type {list(qt)}")
        if not isinstance(s["question_content"], str) or not s["question_content"].strip():
            problems.append(f"{where}: empty question_content")
            continue
        try:
            values = fillers(s)
        except (ValueError, SyntaxError):
            problems.append(f"{where}: 'templ_values' is not a list like '[\"piano\"]'")
            continue
        tags = template_tags(s["question_content"])
        unknown = [t for t in tags if t not in TAG_VALUES]
        if unknown:
            problems.append(f"{where}: unknown tag(s) {', '.join(unknown)} in {s['question_content']!r}")
            continue
        if len(tags) != len(values):
            problems.append(f"{where}: {len(tags)} tag(s) but {len(values)} filler(s) in templ_values")
            continue
        if strict_values:
            for t, v in zip(tags, values):
                if v not in TAG_VALUES[t]:
                    problems.append(f"{where}: filler {v!r} is not a value of tag {t}")
        if s["anser"] not in ANSWERS:
            problems.append(f"{where}: answer {s['anser']!r} is not one of the 42 MUSIC-AVQA answers")
        if max_tokens is not None and len(tokenize(s)) > max_tokens:
            problems.append(f"{where}: question has more than {max_tokens} tokens")
        qid = s.get("question_id")
        if qid is not None and not (isinstance(qid, int) or isinstance(qid, float) and qid.is_integer()):
            problems.append(f"{where}: question_id {qid!r} is not a whole number")
    if problems:
        raise AnnotationError(path, problems)


def load_annotations(path: str | Path, check: bool = True, max_tokens: int | None = MAX_QUESTION_LEN) -> list[dict]:
    """Read an annotation file; with ``check`` every row is validated first (``max_tokens``: as validate's)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"annotation file {path} not found{relative_hint(path)}: generate the synthetic set (python -m avqa.synthetic) "
            f"or download the real annotations (python -m avqa.download)")
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AnnotationError(path, [f"not valid JSON: {e}"]) from None
    if check:
        validate(samples, path, max_tokens=max_tokens)
    return samples


# ----------------------------------------------------------------------------- vocabularies


def _name(sample: dict) -> str:
    """How a message names a row: its question_id, or the key of a row without one."""
    return f"question_id {sample['question_id']}" if sample.get("question_id") is not None \
        else f"question {question_key(sample)}"


@dataclass(frozen=True)
class Vocab:
    """Question words and answers, in order of first appearance in the train file."""

    questions: tuple[str, ...]
    answers: tuple[str, ...]

    @classmethod
    def from_samples(cls, samples: Iterable[dict]) -> "Vocab":
        words: dict[str, None] = {PAD: None}
        answers: dict[str, None] = {}
        for s in samples:
            for w in tokenize(s):
                words.setdefault(w)
            answers.setdefault(s["anser"])
        return cls(tuple(words), tuple(answers))

    @classmethod
    def from_file(cls, train_json: str | Path) -> "Vocab":
        return cls.from_samples(load_annotations(train_json))

    def word_index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.questions)}

    def answer_index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.answers)}

    def word_ids(self, words: Sequence[str], max_len: int = MAX_QUESTION_LEN,
                 index: dict[str, int] | None = None) -> list[int]:
        """The model's question input: word ids padded with <pad> (id 0) to ``max_len`` (words must be known)."""
        index = index if index is not None else self.word_index()
        return [index[w] for w in words] + [0] * (max_len - len(words))

    def encode(self, samples: Sequence[dict], path: str | Path = "<memory>",
               max_len: int = MAX_QUESTION_LEN) -> tuple[list[list[int]], list[int]]:
        """Padded word ids and answer ids; unseen words or answers are a clear error."""
        widx, aidx = self.word_index(), self.answer_index()
        questions, answers, problems = [], [], []
        for row, s in enumerate(samples):
            toks = tokenize(s)
            unseen = [w for w in toks if w not in widx]
            if unseen:
                problems.append(f"row {row} ({_name(s)}): word(s) {unseen} are not in "
                                f"the question vocabulary built from the train file")
                continue
            if s["anser"] not in aidx:
                problems.append(f"row {row} ({_name(s)}): answer {s['anser']!r} never "
                                f"occurs in the train file, so the model cannot predict it")
                continue
            if len(toks) > max_len:
                problems.append(f"row {row} ({_name(s)}): {len(toks)} tokens > {max_len}")
                continue
            questions.append(self.word_ids(toks, max_len, widx))
            answers.append(aidx[s["anser"]])
        if problems:
            raise AnnotationError(path, problems)
        return questions, answers


# ----------------------------------------------------------------------------- statistics


def statistics(samples: Sequence[dict]) -> dict:
    per_type = collections.Counter("/".join(question_type(s)) for s in samples)
    per_template = collections.Counter(s["question_content"].rstrip() for s in samples)
    answers = collections.Counter(s["anser"] for s in samples)
    videos: dict[str, int] = collections.Counter()
    for v in {s["video_id"] for s in samples}:
        kind = video_kind(v)
        videos["other" if kind is None else kind[0]] += 1
        videos["_flip"] += bool(kind and kind[2])
        videos["_#NN"] += bool(kind and kind[1])
    extra = collections.Counter(k for s in samples for k in s if k not in KNOWN_KEYS)
    return {
        "qa_pairs": len(samples),
        "videos": len({s["video_id"] for s in samples}),
        "types": len(per_type),
        "templates": len(per_template),
        "answers": len(answers),
        "per_type": {"/".join(t): per_type.get("/".join(t), 0) for t in QUESTION_TYPES},
        "per_template": dict(per_template.most_common()),
        "answer_counts": dict(answers.most_common()),
        "video_kinds": {k: n for k, n in videos.items() if n},
        "without_question_id": sum(s.get("question_id") is None for s in samples),
        "extra_fields": dict(extra.most_common()),
    }


def format_statistics(name: str, st: dict, details: bool = True) -> str:
    lines = [f"{name}: {st['qa_pairs']:,} QA over {st['videos']:,} videos, {st['templates']} templates, "
             f"{st['types']} types, {st['answers']} distinct answers"]
    kinds = st.get("video_kinds", {})
    if set(kinds) - {"musicavqa"}:
        lines.append("  videos: " + ", ".join(f"{n:,} {name}" for name, n in (
            ("MUSIC-AVQA ids", kinds.get("musicavqa", 0)), ("YouTube ids", kinds.get("youtube", 0)),
            ("of another form", kinds.get("other", 0)), ("with _flip (mirrored)", kinds.get("_flip", 0)),
            ("with a _#NN segment suffix", kinds.get("_#NN", 0))) if n))
    if st.get("without_question_id"):
        lines.append(f"  {st['without_question_id']:,} questions have no question_id; they are keyed "
                     f"<video_id>/<sha256 of the question> (see avqa.annotations.question_key)")
    if st.get("extra_fields"):
        lines.append("  fields beyond the original release's: "
                     + ", ".join(f"{k} ({n:,} rows)" for k, n in st["extra_fields"].items()))
    if details:
        lines.append("  per type:")
        lines += [f"    {t:<28} {n:>6,}" for t, n in st["per_type"].items()]
        lines.append("  per template:")
        lines += [f"    {n:>6,}  {t}" for t, n in st["per_template"].items()]
        lines.append("  answers: " + ", ".join(f"{a} {n}" for a, n in st["answer_counts"].items()))
    return "\n".join(lines)


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Validate MUSIC-AVQA annotation files and print their statistics.",
                                epilog=EXIT_CODES)
    p.add_argument("files", nargs="+", help="annotation JSON files (real or synthetic)")
    p.add_argument("--brief", action="store_true", help="one line per file instead of the full tables")
    args = p.parse_args(argv)
    status = 0
    for f in args.files:
        try:
            st = statistics(load_annotations(f))
        except (AnnotationError, FileNotFoundError) as e:
            print(e, file=sys.stderr)
            status = 1
            continue
        print(format_statistics(f, st, details=not args.brief))
    return status


if __name__ == "__main__":
    sys.exit(main())
