"""JUnit XML: read back by a real JUnit reader library (junitparser) and by the XML parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, TestSuite

from wsshadow.replay.report.render import render, write_report


def _read(tmp_path: Path, report: dict[str, Any]) -> JUnitXml:
    path = write_report(report, tmp_path / "junit.xml")
    return JUnitXml.fromfile(str(path))


def test_a_suite_per_route_and_a_case_per_session(report: dict[str, Any], tmp_path: Path) -> None:
    xml = _read(tmp_path, report)
    suites = {s.name: s for s in xml if isinstance(s, TestSuite)}
    routes = {d["route"] for d in report["session_details"]}
    assert set(suites) == routes
    cases = {c.name: c for s in suites.values() for c in s}
    assert set(cases) == {d["session"] for d in report["session_details"]}
    for d in report["session_details"]:
        assert cases[d["session"]].classname.startswith("wsshadow.")
    xml.update_statistics()
    s = report["sessions"]
    assert (xml.tests, xml.failures, xml.errors) == (s["total"], s["divergent"], s["errored"])


def test_divergent_is_failure_listing_differences_errored_is_error(
    report: dict[str, Any], tmp_path: Path
) -> None:
    xml = _read(tmp_path, report)
    cases = {c.name: c for suite in xml for c in suite}
    for d in report["session_details"]:
        results = cases[d["session"]].result
        if d["verdict"] == "equivalent":
            assert results == [] and cases[d["session"]].is_passed
        elif d["verdict"] == "errored":
            assert len(results) == 1 and isinstance(results[0], Error)
            assert d["error"] in results[0].message
        else:
            assert len(results) == 1 and isinstance(results[0], Failure)
            for diff in d["differences"]:
                assert diff["signature"] in results[0].message
                assert diff["signature"] in results[0].text


def test_hostile_payloads_stay_well_formed_xml(report: dict[str, Any]) -> None:
    detail = next(d for d in report["session_details"] if d["verdict"] == "divergent")
    hostile = "</failure><x>\x00\x07\x1b[31m\ud800\ufffe ]]> & <script>alert(1)</script>"
    detail["differences"][0]["signature"] = hostile
    detail["differences"][0]["expected"] = {"text": hostile}
    detail["error"] = hostile
    text = render(report, "junit")
    root = ET.fromstring(text.encode("utf-8"))  # raises on any invalid character
    messages = [f.get("message", "") for f in root.iter("failure")]
    assert any("<script>alert(1)</script>" in m for m in messages)
    assert any("\\x00" in m and "\\x1b" in m and "\\ud800" in m for m in messages)
    assert not list(root.iter("x")) and not list(root.iter("script"))


def test_report_without_session_details_still_lists_divergent_sessions(
    report: dict[str, Any],
) -> None:
    del report["session_details"]
    root = ET.fromstring(render(report, "junit"))
    failing = {c.get("name") for c in root.iter("testcase") if c.find("failure") is not None}
    expected = {s for g in report["differences"] for s in g["sessions"]}
    assert failing == expected
