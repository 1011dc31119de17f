"""Reports people read, every one rendered from the JSON report dict alone.

The dict follows docs/report-schema.md (schema_version 1). ``render`` turns
it into text in one format; ``write_report`` picks the format from a file's
extension and writes it atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from wsshadow.replay.errors import BadInput
from wsshadow.replay.report.html import render_html
from wsshadow.replay.report.junit import render_junit
from wsshadow.replay.report.markdown import render_markdown
from wsshadow.replay.report.schema import SCHEMA_VERSION, load_report, validate_report
from wsshadow.replay.report.terminal import render_terminal

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "SCHEMA_VERSION",
    "format_for_path",
    "load_report",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "validate_report",
    "write_report",
]

FORMATS = ("text", "json", "junit", "markdown", "html")
"""Format names ``render`` accepts (``terminal`` is an alias of ``text``)."""

EXTENSIONS = {
    ".json": "json",
    ".xml": "junit",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
"""Which format ``write_report`` writes for a file extension."""


def render_json(report: dict[str, Any]) -> str:
    """The report as indented JSON (UTF-8 text, keys in the contract's order)."""
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the input: keep it as an escape
        text = json.dumps(report, indent=2, ensure_ascii=True) + "\n"
    return text


def render(report: dict[str, Any], fmt: str, *, color: bool = False, width: int = 100) -> str:
    """Render ``report`` in ``fmt`` (text, json, junit, markdown, html).

    ``color`` and ``width`` apply to the text format only. Raises BadInput for
    an unknown format or a dict that is not a report.
    """
    validate_report(report)
    if fmt in ("text", "terminal"):
        return render_terminal(report, color=color, width=width)
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    raise BadInput(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")


def format_for_path(path: str | Path) -> str:
    """The format a report file gets from its extension; BadInput for an unknown one."""
    suffix = Path(path).suffix.lower()
    try:
        return EXTENSIONS[suffix]
    except KeyError:
        known = " ".join(sorted(EXTENSIONS))
        raise BadInput(
            f"{path}: cannot tell the report format from {suffix or 'no extension'!r} "
            f"(use one of {known})"
        ) from None


def write_report(report: dict[str, Any], path: str | Path, fmt: str | None = None) -> Path:
    """Write ``report`` to ``path`` in the format its extension names (or ``fmt``).

    The file is replaced atomically, so a reader never sees half a report; it is
    mode 0600, since it holds payloads.
    """
    p = Path(path)
    text = render(report, fmt or format_for_path(p), width=100)
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise BadInput(f"{p}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # reports hold payloads: owner-only, like the capture
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
