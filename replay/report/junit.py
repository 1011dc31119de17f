"""The JUnit XML report: a test suite per route, a test case per recorded session.

A divergent session is a ``<failure>`` whose message lists its differences,
an errored one an ``<error>``. Layout follows the common reader format
(Jenkins, GitLab, GitHub test reporters): ``<testsuites>`` with counts, then
``<testsuite name tests failures errors skipped>``, then ``<testcase name classname>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from wsshadow.replay.report.common import (
    clean_text,
    compact,
    fidelity_reasons,
    timing_finding_text,
    timing_findings,
    timing_gates,
    timing_method,
    truncate,
)

__all__ = ["render_junit"]

MESSAGE_LIMIT = 1_000
MAX_LISTED = 50


def _x(text: Any, keep_newlines: bool = False) -> str:
    """Text safe for XML 1.0 (control characters and lone surrogates escaped)."""
    return clean_text(str(text), keep_newlines=keep_newlines)


def _cases(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per session: from ``session_details``, else rebuilt from the groups."""
    details = report.get("session_details")
    if details:
        return list(details)
    by_session: dict[str, dict[str, Any]] = {}
    for g in report["differences"]:
        for sid in g.get("sessions") or []:
            entry = by_session.setdefault(
                sid,
                {
                    "session": sid,
                    "route": g.get("route") or "-",
                    "verdict": "divergent",
                    "differences": [],
                },
            )
            entry["differences"].append({"signature": g["signature"]})
    return list(by_session.values())


def _failure_text(detail: dict[str, Any]) -> str:
    lines = []
    diffs = detail.get("differences") or []
    for d in diffs[:MAX_LISTED]:
        line = str(d.get("signature") or d.get("kind") or "difference")
        if "expected" in d or "actual" in d:
            line += (
                f"\n    expected: {compact(d.get('expected'), 300)}"
                f"\n    actual:   {compact(d.get('actual'), 300)}"
            )
        if isinstance(d.get("row"), int):
            line += f"\n    row: {d['row']}"
        lines.append(line)
    if len(diffs) > MAX_LISTED:
        lines.append(f"... and {len(diffs) - MAX_LISTED} more")
    for side in ("baseline_session", "candidate_session"):
        if detail.get(side):
            lines.append(f"{side.replace('_', ' ')}: {detail[side]}")
    return "\n".join(lines)


def _signatures(detail: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for d in detail.get("differences") or []:
        sig = str(d.get("signature") or d.get("kind") or "difference")
        if sig not in seen:
            seen.append(sig)
    return seen


def _timing_suite(root: ET.Element, report: dict[str, Any], totals: dict[str, int]) -> None:
    """A ``timing`` suite, a case per timing finding: a failure when timing gates the verdict.

    With ``[verdict] timing = "report"`` the case passes and says what was found.
    """
    found = timing_findings(report)
    if not found:
        return
    gates = timing_gates(report)
    suite = ET.SubElement(root, "testsuite", name="timing")
    method = timing_method(report) or ""
    for f in found:
        case = ET.SubElement(
            suite, "testcase", name=_x(f["signature"]), classname="wsshadow.timing", time="0"
        )
        text = timing_finding_text(f) + (f"\n{method}" if method else "")
        if gates:
            fail = ET.SubElement(
                case, "failure", type="timing", message=_x(truncate(text, MESSAGE_LIMIT))
            )
            fail.text = _x(text, keep_newlines=True)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _x("reported, not gating ([verdict] timing = \"report\"): " + text,
                          keep_newlines=True)  # fmt: skip
    counts = {"tests": len(found), "failures": len(found) if gates else 0, "errors": 0}
    for key, value in counts.items():
        suite.set(key, str(value))
        totals[key] += value
    suite.set("skipped", "0")
    suite.set("time", "0")


def render_junit(report: dict[str, Any]) -> str:
    """The report as JUnit XML (UTF-8 text with an XML declaration)."""
    by_route: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for detail in _cases(report):
        by_route[str(detail.get("route") or "-")].append(detail)

    root = ET.Element("testsuites", name="wsshadow")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    reasons = fidelity_reasons(report)
    if reasons:
        # The verdict's reasons first: a test case of their own.
        suite = ET.SubElement(root, "testsuite", name="wsshadow.verdict")
        case = ET.SubElement(suite, "testcase", name="verdict", classname="wsshadow.verdict",
                             time="0")  # fmt: skip
        failed = report["verdict"] == "inconclusive"
        text = "\n".join(reasons)
        if failed:
            node = ET.SubElement(
                case, "failure", type="inconclusive", message=_x(truncate(text, MESSAGE_LIMIT))
            )
        else:
            node = ET.SubElement(case, "system-out")
        node.text = _x(text, keep_newlines=True)
        for key, value in (("tests", 1), ("failures", int(failed)), ("errors", 0), ("skipped", 0)):
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for route in sorted(by_route):
        cases = by_route[route]
        suite = ET.SubElement(root, "testsuite", name=_x(route))
        counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
        for detail in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                name=_x(detail["session"]),
                classname=_x(f"wsshadow.{route.strip('/').replace('/', '.') or 'root'}"),
                time="0",
            )
            verdict = detail.get("verdict")
            if verdict == "errored":
                counts["errors"] += 1
                err = ET.SubElement(
                    case,
                    "error",
                    type="errored",
                    message=_x(truncate(str(detail.get("error") or "error"), MESSAGE_LIMIT)),
                )
                err.text = _x(
                    _failure_text(detail) or detail.get("error") or "error", keep_newlines=True
                )
            elif verdict == "equivalent" and detail.get("cause"):
                # not evidence of equivalence: the baseline replay did not reproduce it
                ET.SubElement(
                    case,
                    "skipped",
                    message=_x(truncate(f"not reproduced: {detail['cause']}", MESSAGE_LIMIT)),
                )
                counts["skipped"] += 1
            elif verdict == "divergent" or detail.get("differences"):
                counts["failures"] += 1
                sigs = _signatures(detail)
                message = f"{len(sigs)} difference{'s' if len(sigs) != 1 else ''}: " + "; ".join(
                    sigs
                )
                fail = ET.SubElement(
                    case, "failure", type="divergent", message=_x(truncate(message, MESSAGE_LIMIT))
                )
                fail.text = _x(_failure_text(detail), keep_newlines=True)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    _timing_suite(root, report, totals)
    for key, value in totals.items():
        if key != "skipped" or value:
            root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
