"""The documentation holds together: every relative link and section anchor in README.md,
data/README.md and docs/ exists, no tracked file cites a notes file that lives outside the
repository (docs/model.md is the place to cite), the README stays a short front door, the pages
say what is true now (no history of earlier versions, no targets, no words about how the work was
organised: those belong in CHANGELOG.md and docs/experiments/), and the code's docstrings, comments
and --help texts quote no measured seconds or speeds (those live in docs/ with their command)."""
from __future__ import annotations

import ast
import io
import re
import tokenize
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 12 * 1024
# the forbidden word, in two halves so that this file does not hold it
FORBIDDEN = re.compile(r"\b" + "SP" + "EC" + r"\b")

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HTML_ANCHOR = re.compile(r"""<[a-z][^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
ATX_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
LINE_ANCHOR = re.compile(r"L(\d+)(?:-L(\d+))?")

# Words of history, targets and the organisation of the work, in prose outside code spans. Each pattern is
# narrow enough that present-tense prose does not trip it ("a progress bar", pytest's session fixtures,
# a "speed-up" column and "before/after" as a template's word stay allowed).
HISTORY_WORDS = re.compile("|".join(f"(?:{p})" for p in (
    r"\bbeen lent\b", r"\blent to\b", r"\bworkplace\b",                       # who lent which machine
    r"\b(?:another|this|that|a later|an earlier|the previous|the next|the same) session\b",
    r"\bthe issue (?:that|which)\b", r"\bissue #?\d+\b",
    r"\b\d+-minute (?:target|goal|budget|limit)s?\b", r"\bminute (?:target|goal)s?\b",   # targets
    r"\btargets? (?:column|of \d|met|held|hold)\b", r"\bagainst (?:its|their|the) (?:\d+-minute )?targets?\b",
    r"\|\s*targets?\s*\|", r"\b(?:its|our|the|a) (?:\d+-minute )?goal\b", r"\bbudget of\b",
    r"\bbar of\b", r"\b(?:missed|misses|miss|clears?|cleared) (?:its|the|their) bars?\b", r"\bclears? \d+ points\b",
    r"\b(?:before|after) the speed-?ups?\b", r"\bversions? of the same\b",        # history of versions
    r"\b(?:earlier|first|older|previous|old) (?:version|suite|recipe|release)s?\b",
    r"\bnot (?:been )?\w+(?: \w+){0,5} yet\b", r"\bno \w+ was available\b", r"\bfilled up\b",
    r"\b(?:measured|lent|run|tested|seen) since\b", r"\bnow\b",
    r"\|[^|\n]*\b(?:before|now)\s*(?=\|)",                                          # before/now columns
    r"\(was \d", r"\d[\d.,%]* before\)",                                            # "(was 30)", "(80.81% before)"
)), re.I)
# Measured seconds and speeds in docstrings, comments and --help texts: they go stale as the code changes.
MEASURED_FIGURE = re.compile("|".join(f"(?:{p})" for p in (
    r"\b\d+(?:\.\d+)?x (?:faster|slower|the)\b", r"\b\d+(?:\.\d+)?% (?:faster|slower)\b", r"\b\d+ times faster\b",
    r"\b\d+(?:\.\d+)? (?:more )?(?:minutes|hours)\b", r"\b\d+(?:\.\d+)? (?:samples|frames|examples|clips)/s\b",
    r"\b\d+(?:\.\d+)? s against \d", r"\buntil [^.]*\bexists?\b", r"\bsized to the\b",
)), re.I)
CODE_FOLDERS = ("avqa", "net_grd_avst", "net_grd_baseline", "grounding_gen", "net_tspm", "feat_script")


def doc_files(root: Path) -> list[Path]:
    """The pages whose links are checked: README.md, CHANGELOG.md, data/README.md and every docs/**/*.md."""
    pages = [root / "README.md", root / "CHANGELOG.md", root / "data" / "README.md",
             *sorted((root / "docs").rglob("*.md"))]
    return [p for p in pages if p.is_file()]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence is None:
            out.append((number, INLINE_CODE.sub("", line)))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text as rendered, lowercased, punctuation other than
    '-' and '_' removed, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every #fragment a link into ``page`` may use: its headings' slugs (repeats get -1, -2, ...)
    and the ids of explicit HTML anchors."""
    lines = prose_lines(page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    previous = ""
    for _, line in lines:
        heading = None
        m = ATX_HEADING.match(line)
        if m:
            heading = m.group(1)
        elif SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith(("|", "-", "*", ">")):
            heading = previous.strip()
        if heading is not None:
            slug = github_slug(heading)
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
        out.update(HTML_ANCHOR.findall(line))
        previous = line
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image in ``page``: inline, reference definitions, HTML."""
    found = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_LINK):
            found.extend((number, target) for target in pattern.findall(line))
    return found


def broken_links(pages: list[Path], root: Path) -> list[str]:
    """'file:line: target (why)' for every relative link whose file or #fragment does not exist."""
    problems = []
    cache: dict[Path, set[str]] = {}
    for page in pages:
        for number, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):     # http(s), mailto, ...: not checked
                continue
            path_part, _, fragment = target.partition("#")
            path_part = urllib.parse.unquote(path_part.split("?")[0])
            where = f"{page.relative_to(root)}:{number}: {target}"
            dest = (page.parent / path_part).resolve() if path_part else page
            if path_part.startswith("/"):
                dest = (root / path_part.lstrip("/")).resolve()
            if not dest.exists():
                problems.append(f"{where} (no such file)")
                continue
            if not fragment:
                continue
            fragment = urllib.parse.unquote(fragment)
            if dest.suffix.lower() == ".md":
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if fragment not in cache[dest]:
                    problems.append(f"{where} (no heading with anchor #{fragment} in {dest.relative_to(root)})")
            elif dest.is_file():
                m = LINE_ANCHOR.fullmatch(fragment)
                count = len(dest.read_text(encoding="utf-8", errors="replace").splitlines())
                if not m or max(int(g) for g in m.groups() if g) > count:
                    problems.append(f"{where} (#{fragment} is not a line of {dest.relative_to(root)}, "
                                    f"which has {count} lines)")
    return problems


def forbidden_word_hits(files: list[Path], root: Path) -> list[str]:
    """'file:line: text' for every line of a text file that holds the forbidden word."""
    hits = []
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:          # tracked, but deleted in the working tree
            continue
        if b"\0" in data:        # binary: a checkpoint, an image
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{f.relative_to(root)}:{number}: {line.strip()[:120]}")
    return hits


def present_tense_pages(root: Path) -> list[Path]:
    """The pages that say what is true now: README.md, data/README.md and docs/*.md, not CHANGELOG.md
    (history) nor docs/experiments/ (dated studies)."""
    pages = [root / "README.md", root / "data" / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [p for p in pages if p.is_file()]


def history_hits(pages: list[Path], root: Path) -> list[str]:
    """'file:line: "words": text' for every history, target or organisation phrase in the pages' prose."""
    hits = []
    for page in pages:
        for number, line in prose_lines(page.read_text(encoding="utf-8")):
            hits.extend(f"{page.relative_to(root)}:{number}: {m.group(0).strip()!r}: {line.strip()[:100]}"
                        for m in HISTORY_WORDS.finditer(line))
    return hits


def code_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring, every help=/description=/epilog= string and every comment in a file."""
    source = path.read_text(encoding="utf-8")
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
        elif (isinstance(node, ast.keyword) and node.arg in ("help", "description", "epilog")
              and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            out.append((node.value.lineno, node.value.value))
    out.extend((tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
               if tok.type == tokenize.COMMENT)
    return sorted(out, key=lambda item: item[0])


def measured_figure_hits(files: list[Path], root: Path) -> list[str]:
    """'file:line: "figure": context' for every measured second or speed quoted in code's own words."""
    hits = []
    for f in files:
        for number, text in code_texts(f):
            for m in MEASURED_FIGURE.finditer(text):
                context = " ".join(text[max(0, m.start() - 50):m.end() + 30].split())
                hits.append(f"{f.relative_to(root)}:{number}: {m.group(0)!r}: ...{context}...")
    return hits


def tracked_files(root: Path) -> list[Path]:
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout (e.g. an sdist): no list of tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [root / name for name in out.decode().split("\0") if name]


# ----------------------------------------------------------------------------- the repository


def test_every_relative_link_and_anchor_resolves():
    pages = doc_files(REPO)
    assert (REPO / "README.md") in pages and (REPO / "docs" / "model.md") in pages
    problems = broken_links(pages, REPO)
    assert not problems, f"{len(problems)} broken link(s):\n  " + "\n  ".join(problems)


def test_no_tracked_file_cites_a_file_outside_the_repository():
    hits = forbidden_word_hits(tracked_files(REPO), REPO)
    assert not hits, (f"{len(hits)} line(s) cite a file that is not in the repository; cite docs/model.md's "
                      f"sections or say it in plain words:\n  " + "\n  ".join(hits))


def test_readme_is_a_short_front_door():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, (f"README.md is {size:,} bytes, more than {README_MAX_BYTES:,}: move the "
                                      f"detail into a page under docs/ and link it")


def test_pages_say_what_is_true_now():
    hits = history_hits(present_tense_pages(REPO), REPO)
    assert not hits, (f"{len(hits)} phrase(s) of history, targets or how the work was organised; say what is true "
                      f"now in the present tense, and put history in CHANGELOG.md and studies in docs/experiments/:"
                      f"\n  " + "\n  ".join(hits))


def test_code_quotes_no_measured_seconds_or_speeds():
    files = [f for folder in CODE_FOLDERS for f in sorted((REPO / folder).rglob("*.py"))]
    assert any(f.name == "pipeline.py" for f in files)
    hits = measured_figure_hits(files, REPO)
    assert not hits, (f"{len(hits)} measured figure(s) in docstrings, comments or --help texts, which go stale; say "
                      f"what the code does and point to the docs page that has the figure with its command:\n  "
                      + "\n  ".join(hits))


def test_model_page_has_the_sections_others_link_to():
    sections = {"inputs-and-sampling", "grounding-pre-training", "avst", "the-baseline",
                "question-only-and-the-ablation-rungs", "parameter-names-and-checkpoint-formats"}
    assert sections <= anchors(REPO / "docs" / "model.md")


# ----------------------------------------------------------------------------- the checkers themselves


@pytest.mark.parametrize("heading, slug", [
    ("Parameter names and checkpoint formats", "parameter-names-and-checkpoint-formats"),
    ("Question-only and the ablation rungs", "question-only-and-the-ablation-rungs"),
    ("`--resume` and C++ (v2.0)!", "--resume-and-c-v20"),
    ("The [real data](data.md), step by step", "the-real-data-step-by-step"),
    ("snake_case stays", "snake_case-stays"),
])
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug


def test_link_checker_reports_each_broken_link_and_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "plot.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Speed and memory\n\n## Speed and memory\n"
                                                "\nSetext title\n------------\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "Good: [other](docs/other.md), [speed](docs/other.md#speed-and-memory), "
        "[again](docs/other.md#speed-and-memory-1), [setext](docs/other.md#setext-title), "
        "![plot](figs/plot.png), [here](#top), [web](https://example.org/missing.md), [dir](docs/).\n"
        "Broken: [gone](docs/gone.md) and [bad anchor](docs/other.md#speed).\n"
        "![missing figure](figs/none.png) [self](#nowhere)\n\n"
        "```\n[in code](docs/not-a-link.md)\n```\n"
        "`[inline code](docs/not-a-link-either.md)`\n\n"
        "[ref]: docs/ref-gone.md\n", encoding="utf-8")
    problems = broken_links(doc_files(tmp_path), tmp_path)
    assert [p.split(" (")[0] for p in problems] == [
        "README.md:4: docs/gone.md", "README.md:4: docs/other.md#speed", "README.md:5: figs/none.png",
        "README.md:5: #nowhere", "README.md:12: docs/ref-gone.md"]
    assert "no heading with anchor #speed in docs/other.md" in problems[1]


def test_forbidden_word_checker_finds_the_word_and_only_the_word(tmp_path):
    word = "SP" + "EC"
    (tmp_path / "a.py").write_text(f"x = 1\n# see {word}.md\nSPRITE_ASPECT = 2\n", encoding="utf-8")
    (tmp_path / "b.md").write_text(f"{word.lower()} and {word}s and INSPECT\n", encoding="utf-8")
    (tmp_path / "c.bin").write_bytes(b"\0" + word.encode())
    hits = forbidden_word_hits([tmp_path / n for n in ("a.py", "b.md", "c.bin", "gone.txt")], tmp_path)
    assert hits == [f"a.py:2: # see {word}.md"]


# sentences of the kind the history check exists for, each as it once stood in these pages
HISTORY_SENTENCES = [
    "The Intel Xeon has not been lent to this project since; its \"now\" column is unmeasured.",
    "`python benchmarks/bench_first_hour.py` times both so, against their 10-minute targets.",
    "| stage | Intel Xeon, before | AMD EPYC (family 26), before | AMD EPYC (family 26), now |",
    "\"Before\" is the version before the speed-ups: clips at 25 fps with FFmpeg's default AAC coder.",
    "Five versions of the same job (the CHANGELOG has the others):",
    "- On a 2-core Intel Xeon of this workplace, the first version took 1,224 s.",
    "CPU has AMX, on which bfloat16 extraction should gain more (the issue that reported the 1,224 s).",
    "| | seconds | target |",
    "and grounding's attention peak missed its bar of 20 points over untrained (+15.6):",
    "An Intel Xeon ran an older suite in 1,160 s; it has not been measured since.",
    "An earlier version measured 125.0 samples/s on the full set in another session.",
    "all clear 80% validation match and three clear 20 points of peak over untrained",
    "Without `--tspm` the main job is unchanged (TSPM would take it past its 10-minute goal).",
    "TSPM's 385.1 s (6.4 minutes, against a budget of 15)",
    "The CUDA and NCCL paths have not been measured on a GPU yet.",
    "- Grounding: 22 epochs (30 before).",
    "the fused Adam the loop now uses took the stage from 354.1 s to 316.3 s",
]
PRESENT_SENTENCES = [
    "The tiny main job runs once per session (`tiny_main_job`); AVST reads the session's `trained` fixture.",
    "`--shard K/N`, `--float16` storage, `--bf16`, CPU or CUDA, a progress bar.",
    "| part | float32 | bfloat16 | speed-up |",
    "asked only when the start is at least 2 s (1 s for `<TH>`, before/after) apart from the others';",
    "three of the four sound heads pick 0, 2 and 3 s, before the piano comes in",
    "each difference named (`--lr (0.0001 then, 0.001 now)`), and the ways on",
    "On the Intel Xeon the extractions take about as long as on the AMD EPYC.",
    "The GPU paths are written for CUDA and untested on a GPU.",
]


@pytest.mark.parametrize("sentence", HISTORY_SENTENCES)
def test_history_checker_finds_each_kind_of_sentence(tmp_path, sentence):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(f"# Page\n\nFirst line.\n{sentence}\n", encoding="utf-8")
    hits = history_hits(present_tense_pages(tmp_path), tmp_path)
    assert hits and all(h.startswith("docs/page.md:4: ") for h in hits)


def test_history_checker_leaves_present_tense_code_and_other_pages_alone(tmp_path):
    (tmp_path / "docs" / "experiments").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "README.md").write_text("# Top\n\n" + "\n".join(PRESENT_SENTENCES) + "\n"
                                        "```\nthe version before the speed-ups, now in a code block\n```\n",
                                        encoding="utf-8")
    history = "\n".join(HISTORY_SENTENCES) + "\n"
    (tmp_path / "CHANGELOG.md").write_text(history, encoding="utf-8")
    (tmp_path / "docs" / "experiments" / "2026-01-01-study.md").write_text(history, encoding="utf-8")
    (tmp_path / "data" / "README.md").write_text("Made by the generator; its `now` field.\n", encoding="utf-8")
    pages = present_tense_pages(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in pages] == ["README.md", "data/README.md"]
    assert history_hits(pages, tmp_path) == []


def test_measured_figure_checker_reads_docstrings_help_and_comments(tmp_path):
    (tmp_path / "m.py").write_text(
        '"""Stand-in features, until the CLIP and ToMe extractors exist."""\n'
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--tspm', help='then TSPM (12 more minutes on 2 shared CPU cores)')\n"
        "p.add_argument('--tiny', help='16 clips of 4 s and one epoch')\n"
        "def f(x):\n"
        "    \"\"\"Fused Adam: trains grounding about 16% faster. Its output is not complete yet.\"\"\"\n"
        "    print(f'{x:.1f} samples/s, 10 minutes')  # runs about 5x faster (docs/speed.md)\n",
        encoding="utf-8")
    hits = measured_figure_hits([tmp_path / "m.py"], tmp_path)
    assert [h.split(": ...")[0] for h in hits] == [
        "m.py:1: 'until the CLIP and ToMe extractors exist'", "m.py:4: '12 more minutes'",
        "m.py:7: '16% faster'", "m.py:8: '5x faster'"]
