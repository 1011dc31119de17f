"""Markdown for a PR comment: bounded size, escaped payloads, collapsible details."""

from __future__ import annotations

import re
from typing import Any

from tests.report.report_fixtures import large_report
from wsshadow.replay.report.markdown import MAX_CHARS, md_escape
from wsshadow.replay.report.render import render


def test_large_report_stays_under_the_comment_limit(big_report: dict[str, Any]) -> None:
    text = render(big_report, "markdown")
    assert len(text) < MAX_CHARS == 65_000
    assert "10,000** sessions" in text
    assert "not shown here" in text  # it had to leave groups out, and says so
    assert text.count("<details>") == text.count("</details>")


def test_many_huge_groups_still_bounded() -> None:
    report = large_report(3_000, groups=300)
    for g in report["differences"]:
        g["signature"] = g["signature"] + " " + "|`<x>" * 400
    text = render(report, "markdown")
    assert len(text) < MAX_CHARS
    assert text.count("<details>") == text.count("</details>")


def test_every_group_in_table_and_details_for_the_fixture(report: dict[str, Any]) -> None:
    text = render(report, "markdown")
    assert text.startswith("### ❌ wsshadow: divergent")
    table_rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(table_rows) == len(report["differences"])
    assert text.count("<details><summary>") == len(report["differences"]) + 1  # + noise


def test_payloads_cannot_inject_markup(report: dict[str, Any]) -> None:
    text = render(report, "markdown")
    # Outside fenced code blocks no raw tag from a payload survives.
    outside = re.sub(r"(?ms)^(`{3,})json\n.*?^\1$", "", text)
    assert "<script" not in outside and "<img" not in outside
    # Inside them the payload is shown as it was (code blocks render literally).
    assert '"><img src=x onerror=alert(1)>' in text
    assert "<script>window.__xss=1</script>" in text
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text


def test_md_escape_neutralises_markdown_html_and_mentions() -> None:
    s = md_escape("a|b `c` *d* _e_ [l](x) <script>&amp; @bob \\ ~~s~~")
    assert "|" not in s.replace("\\|", "")
    assert "<" not in s and ">" not in s
    assert "@bob" not in s
    assert "\\`c\\`" in s and "\\[l\\]" in s and "\\*d\\*" in s


def test_a_fence_longer_than_any_backtick_run(report: dict[str, Any]) -> None:
    group = report["differences"][0]
    sid = group["examples"][0]["session"]
    detail = next(d for d in report["session_details"] if d["session"] == sid)
    row = detail["rows"][detail["differences"][0]["row"]]
    row["baseline"]["payload"]["note"] = "```\n</details><script>x</script>\n````"
    text = render(report, "markdown")
    assert "`````json" in text  # five backticks: longer than the payload's four


def test_equivalent_report() -> None:
    report = large_report(20, groups=0)
    assert report["verdict"] == "equivalent"
    text = render(report, "markdown")
    assert text.startswith("### ✅ wsshadow: equivalent — no differences in 20 sessions")
    assert "#### Differences" not in text
