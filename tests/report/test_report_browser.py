"""The HTML report in real headless Chromium (Debian's package, installed by `make browser`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.report.chromium import CHROMIUM, Chromium
from tests.timeouts import scaled
from wsshadow.replay.report.render import write_report

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists():  # make test installs it first (the `browser` target)
    pytest.fail(f"{CHROMIUM} is missing: run `make browser`", pytrace=False)

READY = "document.documentElement.dataset.ready === '1'"


async def _open(browser: Chromium, sid: str) -> None:
    found = await browser.evaluate(f"""(() => {{
        const b = document.querySelector('tr.session[data-session={json.dumps(sid)}] button');
        if (!b) return false; b.click(); return true; }})()""")
    assert found, f"session {sid} not listed on the first page"


async def test_fixture_report_in_chromium(report: dict[str, Any], tmp_path: Path) -> None:
    page = write_report(report, tmp_path / "report.html")
    url = page.resolve().as_uri()
    async with Chromium(tmp_path) as browser:
        await browser.navigate(url, READY)

        # Summary counts in the DOM are the JSON's.
        counts = await browser.evaluate("""(() => Object.fromEntries(
            ['total','equivalent','divergent','errored','groups','noise'].map(
              k => [k, document.getElementById('count-' + k).textContent])))()""")
        s = report["sessions"]
        assert counts == {
            k: f"{s[k]:,}" for k in ("total", "equivalent", "divergent", "errored")
        } | {"groups": str(len(report["differences"])), "noise": str(len(report["noise"]))}
        group_rows = await browser.evaluate(
            "document.querySelectorAll('#groups-body tr.group').length"
        )
        assert group_rows == len(report["differences"])

        # A changed row: differing field highlighted on both sides.
        await _open(browser, "s-iso-01")
        marks = await browser.evaluate("""Array.from(document.querySelectorAll(
            'tr.detail-row .srow.changed pre span.mark')).map(e => e.textContent.trim())""")
        assert '"user_id": "alice.wonderland@example.com"' in marks
        assert '"user_id": "alice.wo..."' in marks
        assert '"duration_ms": "12"' in marks

        # A missing event shows on the baseline side only.
        await _open(browser, "s-factory-01")
        missing = await browser.evaluate("""Array.from(document.querySelectorAll(
            'tr.detail-row .srow.missing')).map(r => [r.querySelector('.cell.b pre') !== null,
            r.querySelector('.cell.c').textContent])""")
        assert missing == [[True, "missing from candidate"]]

        # Hostile payloads render as text and run nothing.
        await _open(browser, "s-factory-02")
        await _open(browser, "s-main-02")
        await _open(browser, "s-main-01")
        state = await browser.evaluate("""({xss: typeof window.__xss, images: document.images.length,
            scripts: document.scripts.length, text: document.body.textContent})""")
        assert state["xss"] == "undefined"
        assert state["images"] == 0 and state["scripts"] == 2
        assert "<script>window.__xss=1</script>" in state["text"]
        assert '\\"><img src=x onerror=alert(1)>' in state["text"]
        assert "<script>alert(1)</script>" in state["text"]

        # The signature filter narrows the session list to the group's sessions.
        group = report["differences"][0]
        shown = await browser.evaluate(f"""(() => {{
            const s = document.getElementById('f-signature');
            s.value = {json.dumps(group["signature"])};
            s.dispatchEvent(new Event('change'));
            return Array.from(document.querySelectorAll('tr.session')).map(
              r => r.dataset.session); }})()""")
        assert sorted(shown) == sorted(group["sessions"])
        route = await browser.evaluate("""(() => {
            const s = document.getElementById('f-signature'); s.value = '';
            s.dispatchEvent(new Event('change'));
            const r = document.getElementById('f-route'); r.value = '/websocket';
            r.dispatchEvent(new Event('change'));
            return document.querySelectorAll('tr.session').length; })()""")
        assert route == sum(1 for d in report["session_details"] if d["route"] == "/websocket")

        shot = await browser.screenshot(tmp_path / "report.png")
        assert browser.problems() == []
        assert set(browser.requests()) == {url}
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


async def test_ten_thousand_sessions_stay_usable(
    big_report: dict[str, Any], tmp_path: Path
) -> None:
    page = write_report(big_report, tmp_path / "big.html")
    url = page.resolve().as_uri()
    async with Chromium(tmp_path) as browser:
        seconds = await browser.navigate(url, READY, timeout=scaled(60))
        state = await browser.evaluate("""({nodes: document.getElementsByTagName('*').length,
            rows: document.querySelectorAll('tr.session').length,
            total: document.getElementById('count-total').textContent,
            shown: document.getElementById('shown').textContent})""")
        assert state["total"] == "10,000" and state["shown"] == "10,000 of 10,000 sessions"
        assert state["rows"] == 50  # a page at a time, not one giant DOM
        assert state["nodes"] < 5_000
        await browser.evaluate("document.getElementById('next').click()")
        sid = await browser.evaluate("document.querySelector('tr.session').dataset.session")
        assert sid == "sess-00050"
        await browser.evaluate("document.querySelector('tr.session button').click()")
        assert (
            await browser.evaluate("document.querySelectorAll('tr.detail-row .srow').length") == 21
        )
        assert browser.problems() == []
        assert set(browser.requests()) == {url}
    print(f"10,000-session report ({page.stat().st_size / 1e6:.1f} MB) ready in {seconds:.2f}s")
    assert seconds < 30


async def test_scenario_filter_shows_one_scenarios_sessions(
    report: dict[str, Any], tmp_path: Path
) -> None:
    details = report["session_details"]
    for i, d in enumerate(details):
        d["scenario"] = details[0]["session"] if i < 2 else None
    page = write_report(report, tmp_path / "report.html")
    async with Chromium(tmp_path) as browser:
        await browser.navigate(page.resolve().as_uri(), READY)
        state = await browser.evaluate("""(() => {
            const label = document.getElementById('f-scenario-label');
            const s = document.getElementById('f-scenario');
            s.value = s.options[1].value;
            s.dispatchEvent(new Event('change'));
            return {hidden: label.hidden, options: s.options.length,
                    shown: Array.from(document.querySelectorAll('tr.session')).map(
                      r => r.dataset.session)}; })()""")
        assert state["hidden"] is False and state["options"] == 2
        assert sorted(state["shown"]) == sorted(d["session"] for d in details[:2])
        assert browser.problems() == []


async def test_inconclusive_report_shows_its_badge_and_reasons_first(tmp_path: Path) -> None:
    from tests.report.test_report_inconclusive import CAUSE, REASON, inconclusive

    page = write_report(inconclusive(), tmp_path / "report.html")
    async with Chromium(tmp_path) as browser:
        await browser.navigate(page.resolve().as_uri(), READY)
        badge = await browser.evaluate("""(() => { const v = document.getElementById('verdict');
            return [v.textContent, v.className, getComputedStyle(v).backgroundColor]; })()""")
        assert badge[:2] == ["inconclusive", "verdict inconclusive"]
        assert badge[2] not in ("", "rgba(0, 0, 0, 0)")  # a badge of its own colour
        reasons = await browser.evaluate(
            "Array.from(document.querySelectorAll('#reasons li')).map(e => e.textContent)"
        )
        assert reasons[0] == REASON and f"3 × {CAUSE}" in reasons
        fidelity = await browser.evaluate("document.querySelector('p.fidelity').textContent")
        assert fidelity == "fidelity: 1 of 4 sessions reproduced by the baseline replay"


async def test_dialects_show_per_route_and_per_session_as_text(
    report: dict[str, Any], tmp_path: Path
) -> None:
    # A dialect's name can come from a third-party entry point: it is shown, never run.
    hostile = '<img src=x onerror="window.__xss=1">'
    report["dialects"] = {"/ws": ["socketio", "json"], "/websocket": [hostile]}
    names = {"/ws": "socketio", "/websocket": hostile}
    for d in report["session_details"]:
        d["dialect"] = names.get(d["route"])
    page = write_report(report, tmp_path / "report.html")
    async with Chromium(tmp_path) as browser:
        await browser.navigate(page.resolve().as_uri(), READY)
        meta = await browser.evaluate("document.getElementById('meta').textContent")
        assert f"dialects /websocket {hostile} · /ws socketio, json" in meta
        chips = await browser.evaluate("""Object.fromEntries(Array.from(
            document.querySelectorAll('tr.session')).map(r => [r.dataset.session,
              (r.querySelector('span.dialect') || {textContent: null}).textContent]))""")
        assert chips == {d["session"]: d["dialect"] for d in report["session_details"]}
        await _open(browser, "s-main-01")
        await _open(browser, "s-legacy-01")
        await _open(browser, "s-iso-01")
        notes = await browser.evaluate("""Array.from(document.querySelectorAll(
            'tr.detail-row .dialect-note')).map(e => e.textContent)""")
        assert sorted(notes) == sorted(["Decoded as socketio", f"Decoded as {hostile}"])
        state = await browser.evaluate(
            "({xss: typeof window.__xss, images: document.images.length})"
        )
        assert state == {"xss": "undefined", "images": 0}
        assert browser.problems() == []
