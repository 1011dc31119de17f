"""Golden-file tests: the fixture report rendered as text, Markdown and JUnit.

A rendering change shows up here as a diff against tests/report/golden/.
Regenerate deliberately with ``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/reports``
and review the diff before committing it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.report.report_fixtures import GOLDEN, columns_collapsed
from wsshadow.replay.report.render import render

CASES = {
    "report.txt": ("text", {"width": 100}),
    "report-narrow.txt": ("text", {"width": 72}),
    "report.md": ("markdown", {}),
    "report.xml": ("junit", {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden(report: dict[str, Any], name: str) -> None:
    fmt, options = CASES[name]
    text = render(report, fmt, color=False, **options)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8", newline="\n")
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 once, then review it"
    golden = path.read_text(encoding="utf-8")
    if name.endswith(".txt"):  # rich's column widths vary by release; lines and words do not
        assert columns_collapsed(text) == columns_collapsed(golden)
    else:
        assert text == golden


def test_plain_text_is_stable_and_has_no_escape_sequences(report: dict[str, Any]) -> None:
    first = render(report, "text", color=False, width=100)
    assert first == render(report, "text", color=False, width=100)
    assert "\x1b" not in first
    assert all(len(line) <= 100 for line in first.splitlines())
