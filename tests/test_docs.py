"""The documentation holds together: every relative link and section anchor in README.md,
data/README.md and docs/ exists, no tracked file cites a notes file that lives outside the
repository (docs/model.md is the place to cite), and the README stays a short front door."""
from __future__ import annotations

import re
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
