"""The README and docs/: short, linked, and using the import names that exist.

The README is the way in, so it stays under 300 lines; everything else
lives in docs/. Relative links (to files and to headings inside Markdown
files) must resolve, and no page may show an import under the old top-level
names ``replay`` / ``recorders`` (installed as ``wsshadow.replay`` and
``wsshadow.recorders``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "captures" / "README.md"]

# [text](target) and ![alt](target); the target ends at whitespace or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
OLD_IMPORT = re.compile(r"\b(?:from|import)\s+(?:replay|recorders)\b(?!-)")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text without fenced code blocks (links inside code are not links)."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return frozenset(anchors)


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_readme_is_under_300_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < 300, f"README.md has {lines} lines; move detail into docs/"


def test_the_docs_pages_exist() -> None:
    names = {p.name for p in DOCS}
    expected = {
        "architecture.md", "captures.md", "config.md", "demo.md", "diff.md", "library.md",
        "performance.md", "pytest-plugin.md", "recording.md", "RELIABILITY.md", "replay.md",
        "report-schema.md", "reports.md",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_point_to_existing_files(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_name(dest)}")
    assert broken == [], f"{_name(page)}: broken links"


def test_every_docs_page_is_linked_from_another_page() -> None:
    linked = {
        (page.parent / t.partition("#")[0]).resolve()
        for page in PAGES
        for t in _links(page)
        if "://" not in t and not t.startswith("#")
    }
    orphans = [_name(p) for p in DOCS if p.resolve() not in linked]
    assert orphans == [], "link these from README.md's Documentation list or another page"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_page_imports_the_old_top_level_names(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    hits = [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for m in OLD_IMPORT.finditer(text)
    ]
    hits += [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for m in re.finditer(r"python -m (?:replay|recorders)\b", text)
    ]
    assert hits == [], f"{_name(page)}: use wsshadow / wsshadow.replay / wsshadow.recorders"


def test_the_anchor_slugs_follow_github() -> None:
    assert _slug("Record inside a FastAPI / Starlette app: ASGI middleware") == (
        "record-inside-a-fastapi--starlette-app-asgi-middleware"
    )
    assert _slug("Shadow mode: `wsshadow shadow`") == "shadow-mode-wsshadow-shadow"
    assert _slug("Import a browser's HAR export") == "import-a-browsers-har-export"


@pytest.mark.parametrize("name", ["config.md", "diff.md"])
def test_the_config_examples_load(name: str, tmp_path: Path) -> None:
    """Every ``wsshadow.toml`` example on these pages is a valid configuration."""
    from wsshadow import load_config

    blocks = re.findall(
        r"```toml\n(.*?)```", (ROOT / "docs" / name).read_text(encoding="utf-8"), re.S
    )
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"{i}.toml"
        path.write_text(block, encoding="utf-8")
        load_config(path)  # raises ConfigError naming the key
