"""A capture full of script, markup and control characters renders inert, end to end.

Hostile sessions go into a capture, a hostile candidate run beside them,
``wsshadow diff`` writes HTML, Markdown and text reports, and the HTML one is
opened in real headless Chromium (the helper from tests/report) with every
session's detail expanded: nothing runs, nothing loads, the payloads show as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.reliability.kit import cli, recorded
from tests.report.chromium import CHROMIUM, Chromium
from wsshadow.replay.capture.model import Run, Source
from wsshadow.replay.capture.store import CaptureStore

HOSTILE = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=2">',
    "<svg onload=window.__pwned=3></svg>",
    "</pre></td></tr></table><script>window.__pwned=4</script>",
    "<iframe src=javascript:window.top.__pwned=5></iframe>",
    "[click](javascript:window.__pwned=6) <a href='javascript:window.__pwned=7'>x</a>",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x00nul \u202eevil\u202c \r\nsplit",
    "```\n<script>window.__pwned=8</script>\n```",
    "{{7*7}} ${7*7} <!-- comment --> ]]> &amp; &lt;script&gt; @octocat @org/team",
]


def _capture(path: Path) -> Path:
    with CaptureStore.open(path, create=True) as store:
        for i, bad in enumerate(HOSTILE):
            base = [
                ("client", json.dumps({"type": "ask", "q": bad})),
                ("server", json.dumps({"type": "answer", "text": bad, "n": i})),
                ("server", bad),  # non-JSON text, compared as text
                ("server", json.dumps({"type": bad, "v": 1})),  # hostile event key
            ]
            cand = [
                ("client", json.dumps({"type": "ask", "q": bad})),
                ("server", json.dumps({"type": "answer", "text": bad[::-1], "n": i})),
                ("server", bad + "<b>changed</b>"),
            ]
            sid = f"s{i}-<b>{i}</b>"
            store.put_session(recorded(sid, base, route=f"/ws/<i>{i}</i>"))
            store.put_run(Run("cand", "ws://127.0.0.1:1", Source.REPLAY, {}, 1.0, 2.0, 0, 0))
            store.put_session(
                recorded(f"cand:{sid}", cand, run="cand", origin=sid, route=f"/ws/<i>{i}</i>")
            )
    return path


def _outside_fences(markdown: str) -> str:
    out, fence = [], None
    for line in markdown.splitlines():
        m = re.match(r"^(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.startswith(fence) and line.strip() == line.strip()[0] * len(line.strip()):
                fence = None
            continue
        out.append(line)
    return "\n".join(out)


@pytest.fixture
def reports(tmp_path: Path, capsys) -> dict[str, Path]:
    cap = _capture(tmp_path / "hostile.db")
    out = {k: tmp_path / f"report.{k}" for k in ("html", "md", "txt", "json")}
    code, _o, err = cli(
        capsys,
        ["diff", cap, "--candidate", "cand", "--output", out["html"],
         "--report", out["md"], "--report", out["txt"], "--report", out["json"]],
    )  # fmt: skip
    assert code == 1, err
    return out


def test_markdown_and_text_reports_are_inert(reports: dict[str, Path]) -> None:
    md = reports["md"].read_text()
    prose = _outside_fences(md)
    tags = set(re.findall(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)", prose))
    assert tags <= {"details", "summary", "br", "code", "sub", "sup"}, tags
    assert not re.search(r"(?<!\\)\]\(\s*javascript:", prose)  # no live Markdown link
    assert not re.search(r"@(octocat|org/team)", prose)  # no mention pings anyone
    for text in (md, reports["txt"].read_text()):
        assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
        assert "\x07" not in text
    report = json.loads(reports["json"].read_text())
    assert report["sessions"]["divergent"] == len(HOSTILE)


@pytest.mark.slow
async def test_html_report_runs_nothing_in_chromium(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():  # make test installs it first (the `browser` target)
        pytest.fail(f"{CHROMIUM} is missing: run `make browser`", pytrace=False)
    url = reports["html"].resolve().as_uri()
    async with Chromium(tmp_path) as browser:
        await browser.navigate(url, "document.documentElement.dataset.ready === '1'")
        opened = await browser.evaluate("""(() => {
            const bs = Array.from(document.querySelectorAll('tr.session button'));
            bs.forEach(b => b.click()); return bs.length; })()""")
        assert opened == len(HOSTILE)
        state = await browser.evaluate("""({pwned: typeof window.__pwned,
            top: typeof window.top.__pwned, images: document.images.length,
            iframes: document.querySelectorAll('iframe').length,
            svgs: document.querySelectorAll('svg[onload]').length,
            links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
            scripts: document.scripts.length, text: document.body.textContent})""")
        assert state["pwned"] == "undefined" and state["top"] == "undefined"
        assert state["images"] == 0 and state["iframes"] == 0 and state["svgs"] == 0
        assert not [h for h in state["links"] if h.startswith("javascript:")]
        assert state["scripts"] == 2  # the report's own
        for bad in HOSTILE[:5]:
            assert bad in state["text"], bad  # shown as text, whole
        assert browser.problems() == []
        assert set(browser.requests()) == {url}  # nothing fetched
