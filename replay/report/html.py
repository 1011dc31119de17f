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

from wsshadow.replay.report.common import (
    p_text,
    side_stats,
    timing_events,
    timing_gates,
    timing_headline,
    timing_method,
)

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
{timing_events}
<section id="sessions">
  <h2>Sessions</h2>
  <div class="filters">
    <label>route<select id="f-route"><option value="">all routes</option></select></label>
    <label>signature<select id="f-signature"><option value="">all signatures</option></select></label>
    <label>verdict<select id="f-verdict"><option value="">all</option><option value="divergent">divergent</option><option value="errored">errored</option><option value="equivalent">equivalent</option></select></label>
    <label id="f-scenario-label" hidden>scenario<select id="f-scenario"><option value="">all scenarios</option></select></label>
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
        timing_events=_timing_events(report),
    )


_E = html.escape


def _plot(row: dict[str, Any]) -> str:
    """An inline SVG: the baseline's and the candidate's latency distributions (ECDFs)."""
    plot = row.get("plot")
    if not isinstance(plot, dict):
        return ""
    sides = [(name, plot.get(name)) for name in ("baseline", "candidate")]
    points = [v for _, vs in sides if isinstance(vs, list) for v in vs]
    if not points or not all(isinstance(v, int | float) for v in points):
        return ""
    lo, hi = min(points), max(points)
    span = (hi - lo) or 1.0
    w, h, pad = 320.0, 90.0, 6.0
    colors = {"baseline": "#2b6cb0", "candidate": "#c53030"}
    lines = []
    for name, values in sides:
        if not isinstance(values, list) or len(values) < 2:
            continue
        n = len(values) - 1
        xy = " ".join(
            f"{pad + (v - lo) / span * (w - 2 * pad):.1f},{h - 16 - i / n * (h - 26):.1f}"
            for i, v in enumerate(values)
        )
        lines.append(
            f'<polyline fill="none" stroke="{colors[name]}" stroke-width="2" points="{xy}">'
            f"<title>{name}</title></polyline>"
        )
    return (
        f'<svg class="dist" role="img" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_E(str(row.get('signature')))}: latency distributions (share of samples "
        "at or under each latency)</title>"
        f'<line x1="{pad}" y1="{h - 16}" x2="{w - pad}" y2="{h - 16}" stroke="#999"/>'
        + "".join(lines)
        + f'<text x="{pad}" y="{h - 3}" font-size="10">{lo:,.1f} ms</text>'
        f'<text x="{w - pad}" y="{h - 3}" font-size="10" text-anchor="end">{hi:,.1f} ms</text>'
        f'<text x="{w - pad}" y="12" font-size="10" text-anchor="end">'
        f'<tspan fill="{colors["baseline"]}">baseline</tspan> '
        f'<tspan fill="{colors["candidate"]}">candidate</tspan></text>'
        "</svg>"
    )


def _timing_events(report: dict[str, Any]) -> str:
    """The per-event latency table, with a distribution plot per event that has a finding."""
    rows = timing_events(report)
    if not rows:
        return ""
    headline = timing_headline(report) or "no timing findings"
    method = timing_method(report) or ""
    cls = "divergent" if timing_gates(report) else "noise"
    body = []
    for r in rows:
        b, c = side_stats(r, "baseline"), side_stats(r, "candidate")
        found = r.get("finding") is True
        why = r.get("why_not")
        note = (
            "finding" if found else "; ".join(str(x) for x in why) if isinstance(why, list) else ""
        )
        significant = "yes" if r.get("significant") is True else "no"
        body.append(
            f'<tr class="{"finding" if found else ""}"><td style="white-space:nowrap">'
            f"{_E(str(r['signature']))}</td>"
            f'<td class="num">{b[0]}</td><td class="num">{c[0]}</td>'
            f'<td class="num">{b[1]}</td><td class="num">{c[1]}</td>'
            f'<td class="num">{b[2]} / {c[2]}</td><td class="num">{_E(p_text(r))}</td>'
            f'<td>{significant}</td><td style="min-width:18em">{_E(note)}</td></tr>'
        )
        if found:
            body.append(f'<tr class="plot"><td colspan="9">{_plot(r)}</td></tr>')
    return (
        '<section id="timing-events">\n'
        f'  <h2>Timing by event <span class="sub {cls}">{_E(headline)}</span></h2>\n'
        f'  <p class="sub">{_E(method)}</p>\n'
        "  <table>\n"
        '    <thead><tr><th>event</th><th class="num">baseline median ms</th>'
        '<th class="num">candidate median ms</th><th class="num">baseline p95 ms</th>'
        '<th class="num">candidate p95 ms</th><th class="num">samples</th>'
        '<th class="num">p</th><th>significant</th><th></th></tr></thead>\n'
        f"    <tbody>{''.join(body)}</tbody>\n"
        "  </table>\n"
        "</section>"
    )
