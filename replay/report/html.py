"""The HTML report: one self-contained file (inline CSS and JS, no network requests).

The report dict is embedded as JSON in a ``<script type="application/json">``
island with ``<``, ``>``, ``&`` and U+2028/2029 escaped, so no payload can
close the element or start markup; the page script builds the DOM with
``textContent`` only, and a Content-Security-Policy allows nothing but the
page's own script (by hash) and inline styles. Sessions are listed a page
at a time and a session's aligned streams are built only when it is opened,
so a report of 10,000 sessions stays responsive.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["embed_json", "render_html"]


@cache
def _asset(name: str) -> str:
    return (
        resources.files("wsshadow.replay.report")
        .joinpath("assets", name)
        .read_text(encoding="utf-8")
    )


def embed_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (and as JavaScript source)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '{script_hash}'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
{css}
</style>
</head>
<body>
<header class="top">
  <h1>wsshadow report</h1>
  <span id="verdict" class="verdict"></span>
  <div id="meta" class="meta"></div>
  <ul id="reasons" class="reasons"></ul>
</header>
<main>
<section id="summary">
  <h2>Summary</h2>
  <div class="cards">
    <div class="card"><div class="n" id="count-total"></div><div class="l">sessions</div></div>
    <div class="card equivalent"><div class="n" id="count-equivalent"></div><div class="l">equivalent</div></div>
    <div class="card divergent"><div class="n" id="count-divergent"></div><div class="l">divergent</div></div>
    <div class="card errored"><div class="n" id="count-errored"></div><div class="l">errored</div></div>
    <div class="card"><div class="n" id="count-groups"></div><div class="l">difference groups</div></div>
    <div class="card noise"><div class="n" id="count-noise"></div><div class="l">noise signatures</div></div>
  </div>
  <div class="bar" id="bar"></div>
</section>
<section id="differences">
  <h2>Differences <span class="sub">click a group to filter the sessions below</span></h2>
  <table>
    <thead><tr><th class="num">#</th><th>signature</th><th class="num">sessions</th><th class="num">occurrences</th><th class="num">share</th><th>example</th></tr></thead>
    <tbody id="groups-body"></tbody>
  </table>
</section>
<div class="two">
<section id="timing">
  <h2>Timing <span class="sub">latency of server messages from the client message that triggered them</span></h2>
  <table class="timing">
    <thead><tr><th></th><th class="num">baseline</th><th class="num">candidate</th><th class="num">ratio</th></tr></thead>
    <tbody id="timing-body"></tbody>
  </table>
</section>
<section id="noise">
  <h2>Noise <span class="sub" id="noise-total"></span></h2>
  <details class="noise"><summary>Differences that also occur between two baseline runs are suppressed, not dropped: show them</summary>
  <table>
    <thead><tr><th>signature</th><th class="num">occurrences</th><th class="num" title="sessions where it occurred against the candidate">candidate</th><th class="num" title="sessions where it occurred between two baseline runs">baseline pair</th><th>reason</th></tr></thead>
    <tbody id="noise-body"></tbody>
  </table>
  </details>
</section>
</div>
<section id="sessions">
  <h2>Sessions</h2>
  <div class="filters">
    <label>route<select id="f-route"><option value="">all routes</option></select></label>
    <label>signature<select id="f-signature"><option value="">all signatures</option></select></label>
    <label>verdict<select id="f-verdict"><option value="">all</option><option value="divergent">divergent</option><option value="errored">errored</option><option value="equivalent">equivalent</option></select></label>
    <label>session id<input id="f-search" type="search" placeholder="filter by id" autocomplete="off"></label>
    <span class="count" id="shown"></span>
  </div>
  <table>
    <thead><tr><th>session</th><th>route</th><th>verdict</th><th class="num">differences</th><th>signatures</th></tr></thead>
    <tbody id="sessions-body"></tbody>
  </table>
  <div class="pager"><button class="pg" id="prev" type="button">&larr; previous</button><span id="page-info"></span><button class="pg" id="next" type="button">next &rarr;</button></div>
</section>
<footer>{footer}</footer>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    js = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    tool = report.get("tool")
    if not isinstance(tool, dict):
        tool = {}
    footer = "generated by {} {}".format(tool.get("name") or "wsshadow", tool.get("version") or "")
    return _PAGE.format(
        script_hash=f"sha256-{digest}",
        title=html.escape(f"wsshadow report: {report['verdict']}"),
        css=_asset("report.css"),
        footer=html.escape(footer.strip()),
        data=embed_json(report),
        js=js,
    )
