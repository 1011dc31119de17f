"""An inconclusive report (schema_version 2): its reasons come first in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from tests.report.report_fixtures import load_fixture
from wsshadow.replay.report.build import exit_status
from wsshadow.replay.report.render import render
from wsshadow.replay.report.schema import validate_report

REASON = "3 of 4 sessions not reproduced by the baseline replay (25% reproduced, 95% needed)"
WHOLE = "noise swallows whole payloads (changed_value /txt -)"
CAUSE = 'baseline answered error "Game not found." (x5) where the recording had play (x3)'


def inconclusive() -> dict[str, Any]:
    report = load_fixture()
    report.update(
        schema_version=2,
        verdict="inconclusive",
        differences=[],
        fidelity={
            "measured": True,
            "sessions": {"total": 4, "reproduced": 1, "unreproduced": 3},
            "events": {"recorded": 40, "reproduced": 12},
            "causes": [{"cause": CAUSE, "count": 3, "sessions": ["s1", "s2", "s3"]}],
            "routes": [{"route": "/txt", "comparable": False, "reason": WHOLE}],
            "reasons": [REASON, "route /txt is not comparable: noise swallows whole payloads"],
        },
    )
    for d in report["session_details"]:
        d.update(verdict="equivalent", differences=[], reproduced=0.2, cause=CAUSE)
    return report


def test_inconclusive_is_exit_3_and_valid() -> None:
    report = validate_report(inconclusive())
    assert int(exit_status(report)) == 3


def test_terminal_puts_the_reasons_under_the_verdict() -> None:
    lines = render(inconclusive(), "text", width=200).splitlines()
    assert lines[0].startswith("INCONCLUSIVE  no differences in")
    assert lines[1].strip() == REASON
    assert lines[2].strip().startswith("route /txt is not comparable")
    text = "\n".join(lines)
    assert "Fidelity  1 of 4 sessions reproduced by the baseline replay (25.0%)" in text
    assert CAUSE in text


def test_markdown_puts_the_reasons_under_the_verdict() -> None:
    lines = render(inconclusive(), "markdown").splitlines()
    assert lines[0].startswith("### ⚠️ wsshadow: inconclusive")
    assert lines[2] == f"- ⚠️ {REASON}"
    assert "Fidelity: **1** of 4 sessions reproduced" in "\n".join(lines)


def test_junit_has_a_failing_verdict_case_first_and_skips_unreproduced_sessions() -> None:
    root = ET.fromstring(render(inconclusive(), "junit").split("\n", 1)[1])
    first = root[0]
    assert first.get("name") == "wsshadow.verdict"
    failure = first.find("testcase/failure")
    assert failure is not None and failure.get("type") == "inconclusive"
    assert REASON in (failure.text or "")
    skipped = root.findall(".//testcase/skipped")
    assert skipped and all("not reproduced: " in (s.get("message") or "") for s in skipped)
    assert int(root.get("skipped") or 0) == len(skipped)
    assert int(root.get("failures") or 0) == 1


def test_html_has_a_distinct_badge_and_carries_the_reasons() -> None:
    page = render(inconclusive(), "html")
    assert "<title>wsshadow report: inconclusive</title>" in page
    assert '<ul id="reasons" class="reasons"></ul>' in page
    assert ".verdict.inconclusive" in page
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["fidelity"]["reasons"][0] == REASON


def test_a_version_1_report_still_renders_without_fidelity() -> None:
    report = load_fixture()
    assert report["schema_version"] == 1 and "fidelity" not in report
    text = render(report, "text")
    assert "Fidelity" not in text and text.startswith("DIVERGENT")


def test_terminal_shows_each_routes_noise_budget() -> None:
    report = inconclusive()
    report["fidelity"]["thresholds"] = {"max_noise_share": 0.2}
    report["fidelity"]["routes"].insert(
        0, {"route": "/ws", "suppressed_share": 0.134, "comparable": True, "reason": None}
    )
    text = render(report, "text", width=200)
    assert (
        "Noise budget /ws 13.4% · /txt 0.0% (not comparable) of compared values suppressed "
        "as noise (max 20%)"
    ) in " ".join(text.split())
