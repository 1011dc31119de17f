"""The terminal report: colour only when asked, safe text, the sections a reader needs."""

from __future__ import annotations

import json
import re
from typing import Any

from wsshadow.replay.report.render import render

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_colour_only_when_asked_and_same_text(report: dict[str, Any]) -> None:
    plain = render(report, "text", color=False, width=100)
    coloured = render(report, "text", color=True, width=100)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    stripped = "\n".join(line.rstrip() for line in ANSI.sub("", coloured).split("\n"))
    assert stripped == plain


def test_sections_and_counts(report: dict[str, Any]) -> None:
    text = render(report, "text", width=120)
    s = report["sessions"]
    assert text.splitlines()[0].startswith("DIVERGENT  14 difference groups in 11 of 17 sessions")
    assert (
        f"{s['total']} total  ·  {s['equivalent']} equivalent  ·  "
        f"{s['divergent']} divergent  ·  {s['errored']} errored"
    ) in text
    for g in report["differences"]:
        assert g["signature"] in text
    assert "Noise suppressed  5 signatures, 45 occurrences" in text
    assert re.search(r"p95\s+11\.8 ms\s+236\.2 ms", text)
    assert "candidate unreachable" in text  # the errored session says why


def test_example_marks_differing_fields_both_sides(report: dict[str, Any]) -> None:
    text = render(report, "text", width=140)
    block = text.split("changed_value /ws/isolated agent_completed user_context.user_id  (")[1]
    marked = [line for line in block.splitlines() if line.lstrip().startswith("-")]
    assert any(
        '"user_id": "alice.wonderland@example.com"' in line
        and '+     "user_id": "alice.wo..."' in line
        for line in marked
    )
    first = text.split("1. missing_event /ws/factory agent_thinking")[1].split("\n2. ")[0]
    assert "(absent)" in first and '"type": "agent_thinking"' in first


def test_control_and_bidi_characters_never_reach_the_terminal(report: dict[str, Any]) -> None:
    group = report["differences"][0]
    group["signature"] = "evil \x1b]0;title\x07 \u202e sig"
    text = render(report, "text", color=True, width=100)
    assert "\x1b]0;" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]0;title\\x07" in text


def test_equivalent_and_thin_report() -> None:
    thin = {
        "schema_version": 1,
        "verdict": "equivalent",
        "sessions": {"total": 3, "equivalent": 3, "divergent": 0, "errored": 0},
        "differences": [],
        "noise": [],
    }
    text = render(thin, "text", width=80)
    assert text.startswith("EQUIVALENT  no differences in 3 sessions")
    assert "No differences." in text
    assert json.loads(render(thin, "json")) == thin
