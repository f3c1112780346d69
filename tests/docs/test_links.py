"""The documentation's links hold: every relative link in README.md and docs/**/*.md names a file of
the repository, every #anchor names a heading of its page (GitHub's slugs), every docs page can be
reached from the README, and no page, comment or other file points at a document the repository
does not contain."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target "title") and ![alt](target); the target ends at whitespace or the closing parenthesis.
_INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HTML_LINK = re.compile(r"<a\s[^>]*href=\"([^\"]+)\"", re.IGNORECASE)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...
# Documents outside the repository that a reader of the repository cannot open, and work history.
_OUTSIDE = re.compile(
    r"\bdesign\.md\b|(?<![\w-])providers\.md\b|\.\./shared\b|/work/|\bissues?\s+#?\d+", re.IGNORECASE
)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1) == fence):
            fence = None if fence else match.group(1)
            continue
        if fence is None:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text without markup, lower case, punctuation other than
    hyphens and underscores removed, each space a hyphen."""
    text = _CODE_SPAN.sub(lambda match: match.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("*", "").lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in " -_" or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every heading's anchor on the page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return frozenset(found)


def links(page: Path) -> list[tuple[int, str]]:
    """Every link target on the page outside code (fenced blocks and code spans)."""
    targets: list[tuple[int, str]] = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        prose = _CODE_SPAN.sub("", line)
        for pattern in (_INLINE_LINK, _REFERENCE_DEFINITION, _HTML_LINK):
            targets.extend((number, match.group(1)) for match in pattern.finditer(prose))
    return targets


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    problems: list[str] = []
    for number, target in links(page):
        if not target or _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root)}:{number}: {target}"
        if not destination.is_relative_to(root):
            problems.append(f"{where} points outside the repository")
        elif not destination.exists():
            problems.append(f"{where} names no file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where} names no heading of {destination.relative_to(root)}")
    return problems


def outside_references(page: Path) -> list[str]:
    return [
        f"{page.relative_to(REPO) if page.is_relative_to(REPO) else page.name}:{number}: {match.group(0)!r}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        for match in _OUTSIDE.finditer(line)
    ]


def reachable_from_readme() -> set[Path]:
    reached, todo = set(), [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for _, target in links(page):
            path_part = target.partition("#")[0]
            if path_part and not _EXTERNAL.match(target):
                destination = (page.parent / path_part).resolve()
                if destination.suffix == ".md" and destination.is_file():
                    todo.append(destination)
    return reached


def test_there_are_docs_to_check() -> None:
    assert REPO / "README.md" in PAGES
    assert len(PAGES) > 5, PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_no_page_refers_to_documents_outside_the_repository(page: Path) -> None:
    assert outside_references(page) == []


def tracked_text_files() -> list[Path]:
    """Every file git tracks (code, template, tests, tools' pages), except this one, which names
    the patterns; files that are not UTF-8 text are left out."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    files = []
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def test_no_comment_or_file_refers_to_documents_outside_the_repository() -> None:
    files = tracked_text_files()
    assert REPO / "template.yaml" in files and REPO / "Makefile" in files
    assert [problem for path in files for problem in outside_references(path)] == []


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    unreached = sorted(str(page.relative_to(REPO)) for page in set(PAGES) - reachable_from_readme())
    assert unreached == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Quick start", "quick-start"),
        ("`fetch` (JSON answer)", "fetch-json-answer"),
        ("No cold starts at all: provisioned concurrency", "no-cold-starts-at-all-provisioned-concurrency"),
        ("Captcha Cat and ByeBot (`rayengine.py`)", "captcha-cat-and-byebot-rayenginepy"),
        ("What it costs, per million", "what-it-costs-per-million"),
        ("Review it in CloudWatch", "review-it-in-cloudwatch"),
        ("Origins & CORS", "origins--cors"),
        ("snake_case stays", "snake_case-stays"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_checks_catch_what_they_exist_for(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "docs").mkdir()
    page = root / "docs" / "page.md"
    page.write_text(
        "# Title\n\n## Second part\n\n"
        "[ok](#second-part) [ok too](page.md#title) [gone](missing.md) [bad](#third-part)\n"
        "[outside](../../elsewhere.md) see design.md and issue 16\n"
        "as /work/shared/providers.md says\n"
        "```\n[in code](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root)
    assert len(problems) == 3, problems
    assert any("missing.md names no file" in problem for problem in problems)
    assert any("#third-part names no heading" in problem for problem in problems)
    assert any("points outside the repository" in problem for problem in problems)
    assert len(outside_references(page)) == 4
