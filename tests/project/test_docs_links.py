"""Every relative link in README.md, CHANGELOG.md and docs/*.md resolves (house style: Habits).

A link ``[x](path)`` must name an existing file, and ``[x](path#anchor)`` or ``[x](#anchor)``
a heading of that Markdown file, by GitHub's slug rules: the heading's text without its
markup, lowercased, punctuation stripped except hyphens, underscores and spaces, spaces
turned into hyphens; a repeated slug gets ``-1``, ``-2`` ... External links (``http:``,
``https:``, ``mailto:``) are not fetched. Text inside code spans and fenced code blocks is
neither a link nor a heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
README_MAX_LINES = 250


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (fences blanked, so numbering is kept)."""
    lines, fence = [], ""
    for line in text.split("\n"):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif opened:
            fence = opened.group(1)
            lines.append("")
        else:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]|<[^>]+>", "", text)  # code and emphasis marks, inline HTML
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    found = []
    for number, line in enumerate(prose_lines(page.read_text(encoding="utf-8")), start=1):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            found.append((number, match.group(1)))
    return found


def broken(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the page's relative links, one line each (paths from ``root``)."""
    problems = []
    for number, target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(root)}:{number}: {target}"
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            problems.append(f"{where}: no file {dest.relative_to(root)}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Run it", "run-it"),
        ("Promotion, rollback, and losing Docker", "promotion-rollback-and-losing-docker"),
        ("Canary: judged by Traefik's metrics", "canary-judged-by-traefiks-metrics"),
        ("What `bluegreen init` writes", "what-bluegreen-init-writes"),
        ("Push, not poll: the held Traefik poll", "push-not-poll-the-held-traefik-poll"),
        ("[0.2.0] - 2026-11-25", "020---2026-11-25"),
        ("`state_file` and *emphasis*", "state_file-and-emphasis"),
        ("Traefik 3.7.15: what it accepts", "traefik-3715-what-it-accepts"),
    ],
)  # fmt: skip
def test_slug_follows_github(heading: str, expected: str) -> None:
    """Headings turn into GitHub's anchors: lowercase, punctuation gone, spaces to hyphens."""
    assert expected == slug(heading)


def test_duplicate_headings_are_numbered(tmp_path: Path) -> None:
    """A repeated heading's anchor gets -1, -2; headings inside code fences are no headings."""
    page = tmp_path / "page.md"
    page.write_text("# Added\n## Added\n```sh\n# Added\n```\n### Added\n## Fixed\n")
    assert {"added", "added-1", "added-2", "fixed"} == anchors(page)


def test_links_skip_code(tmp_path: Path) -> None:
    """Links in code spans and fenced blocks are not links; images and titled links are."""
    page = tmp_path / "page.md"
    page.write_text(
        '`[no](nowhere.md)` [yes](a.md#b) ![img](p.png) [t](c.md "title")\n```\n[no](x.md)\n```\n'
    )
    assert [(1, "a.md#b"), (1, "p.png"), (1, "c.md")] == links(page)


def test_broken_links_are_reported(tmp_path: Path) -> None:
    """A missing file and a missing anchor are each reported; external links are not fetched."""
    (tmp_path / "other.md").write_text("# There\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n[a](#here) [b](other.md#there) [c](https://example.invalid/x#y)\n"
        "[d](#nowhere) [e](missing.md) [f](other.md#gone)\n"
    )
    assert [
        "page.md:3: #nowhere: no heading #nowhere in page.md",
        "page.md:3: missing.md: no file missing.md",
        "page.md:3: other.md#gone: no heading #gone in other.md",
    ] == broken(page, tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    """Every relative link and anchor of the page names an existing file and heading."""
    assert [] == broken(page)


def test_readme_is_a_five_minute_read() -> None:
    """README.md stays short (issue 20): the reference and the guides belong in docs/."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"
