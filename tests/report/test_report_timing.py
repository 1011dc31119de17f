"""The timing section in every format, from a report alone (headlines never contradict the verdict)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.report.report_fixtures import load_fixture
from wsshadow.replay.report.html import render_html
from wsshadow.replay.report.junit import render_junit
from wsshadow.replay.report.markdown import render_markdown
from wsshadow.replay.report.terminal import render_terminal

FINDING = {
    "signature": "timing /ws <b>data</b>", "route": "/ws", "event": "<b>data</b>",
    "baseline": {"median_ms": 2.0, "p95_ms": 4.0, "samples": 24},
    "candidate": {"median_ms": 102.0, "p95_ms": 104.0, "samples": 24},
    "noise": None, "delta_ms": 100.0, "p_value": 1.5e-9, "significant": True,
    "finding": True, "why_not": [],
    "plot": {"baseline": [1.0 + i / 10 for i in range(21)],
             "candidate": [100.0 + i / 5 for i in range(21)]},
}  # fmt: skip


def with_timing(verdict: str, mode: str, differences: bool = False) -> dict[str, Any]:
    report = copy.deepcopy(load_fixture())
    report["verdict"] = verdict
    if not differences:
        report["differences"] = []
    report["timing"].update(
        mode=mode, method="mann-whitney-u", significance=0.01, min_samples=20, ratio=2.0,
        floor_ms=50.0, noise_margin=2.0, findings=[FINDING], events=[FINDING],
        interleaving="lockstep: ...", warmup=5,
    )  # fmt: skip
    return report


@pytest.mark.parametrize("verdict", ["equivalent", "inconclusive"])
def test_a_reported_timing_finding_keeps_the_verdict_line(verdict: str) -> None:
    report = with_timing(verdict, "report")
    first = render_terminal(report, width=200).splitlines()[0]
    assert first.startswith(verdict.upper()) and "1 timing finding (reported, not gating)" in first
    assert "DIVERGENT" not in render_terminal(report)
    assert "divergent" not in render_markdown(report).splitlines()[0]
    assert 'failures="0"' in render_junit(report).split('name="timing"')[1].split(">")[0]


def test_a_gating_finding_alone_is_the_headline() -> None:
    report = with_timing("divergent", "gate")
    assert render_terminal(report).splitlines()[0] == "DIVERGENT  1 timing finding (gating)"
    assert render_markdown(report).startswith("### ❌ wsshadow: divergent — 1 timing finding")
    assert '<testsuite name="timing" tests="1" failures="1"' in render_junit(report)


def test_html_escapes_the_event_and_draws_one_plot() -> None:
    page = render_html(with_timing("divergent", "gate"))
    section = page[page.index('<section id="timing-events">') :]
    section = section[: section.index("</section>")]
    assert "<b>data</b>" not in section and "&lt;b&gt;data&lt;/b&gt;" in section
    assert section.count("<svg") == 1 and section.count("<polyline") == 2


def test_an_older_report_has_no_timing_section() -> None:
    report = load_fixture()
    assert "Timing findings" not in render_terminal(report)
    assert '<section id="timing-events">' not in render_html(report)
    assert 'name="timing"' not in render_junit(report)
