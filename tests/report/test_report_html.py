"""The HTML report as a file: self-contained, data island escaped, CSP pinned to its script."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

from wsshadow.replay.report.html import embed_json
from wsshadow.replay.report.render import render


def _island(page: str) -> str:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m, "no data island"
    return m.group(1)


def test_data_island_round_trips_and_cannot_break_out(report: dict[str, Any]) -> None:
    page = render(report, "html")
    island = _island(page)
    assert "<" not in island and ">" not in island and "&" not in island
    assert "\u2028" not in island and "\u2029" not in island
    assert json.loads(island) == report  # escapes are JSON escapes: the data is intact


def test_embed_json_escapes_every_dangerous_character() -> None:
    value = {"a": "</script><script>alert(1)</script>", "b": "&lt; \u2028\u2029 <!--"}
    text = embed_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == value


def test_self_contained_no_external_references(report: dict[str, Any]) -> None:
    page = render(report, "html")
    without_data = page.replace(_island(page), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", without_data)
    assert "@import" not in without_data and "url(" not in without_data
    assert ".innerHTML" not in without_data and "insertAdjacentHTML" not in without_data
    assert page.count("<script") == 2  # the data island and the page script


def test_csp_allows_exactly_the_page_script(report: dict[str, Any]) -> None:
    page = render(report, "html")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and "default-src 'none'" in csp.group(1)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert script
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp.group(1)


def test_ten_thousand_sessions_render_quickly(big_report: dict[str, Any]) -> None:
    start = time.perf_counter()
    page = render(big_report, "html")
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    # Streams are built on demand in the browser: the page itself holds no session rows.
    assert page.count("<tr") < 20
    assert json.loads(_island(page))["sessions"]["total"] == 10_000
