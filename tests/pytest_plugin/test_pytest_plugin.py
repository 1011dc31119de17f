"""The pytest plugin, run through ``pytester`` against the demo servers.

A capture of the demo's scripted traffic against the legacy server
(``conftest.recorded_demo``) becomes one test item per session. Against the
legacy server every item passes; against the consolidated server (with the
demo config's route maps) exactly the sessions that meet a planted regression
fail, and their messages name it.
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.pytest_plugin.conftest import RecordedDemo
from wsshadow.replay.capture.model import Session
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import load_config
from wsshadow.replay.demo import demo_config_path
from wsshadow.replay.diff.capture import diff_capture

pytestmark = pytest.mark.slow

CONFIG = str(demo_config_path())


def run(pytester: pytest.Pytester, *args: str) -> pytest.HookRecorder:
    return pytester.inline_run("-p", "no:cacheprovider", *args)


def reports(rec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    """Node id -> the report that decided it (the failing phase, else the call)."""
    out: dict[str, pytest.TestReport] = {}
    for r in rec.getreports("pytest_runtest_logreport"):
        if r.failed or (r.when == "call" and r.nodeid not in out):
            out[r.nodeid] = r
    return out


def item_id(s: Session) -> str:
    return f"wsshadow::{s.route}::{s.id}"


def regressions(s: Session) -> list[str]:
    """The planted regressions (docs/demo.md) a recorded legacy session runs into, as the
    text its failure message must contain."""
    authenticated = bool(s.handshake.request_header("Authorization") or s.handshake.subprotocols)
    sent = [m.payload for m in s.client_messages()]
    out = []
    if s.route == "/ws/factory" and authenticated:
        out.append("missing_event /ws/factory agent_thinking")
    if s.route == "/ws" and not authenticated:
        out.append("close /ws - code\n      expected: 1011\n      actual:   1008")
    if s.route == "/ws" and any(isinstance(p, str) and p.startswith("{'") for p in sent):
        out.append('expected: "FORMAT_ERROR"\n      actual:   "JSON_PARSE_ERROR"')
    if s.route == "/ws" and s.handshake.subprotocols:
        out.append('handshake /ws - subprotocol\n      expected: "jwt-auth"')
    if s.route == "/ws/isolated" and authenticated:
        out.append("changed_value /ws/isolated agent_started user_context.user_id")
    return out


def _files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_against_legacy_every_session_passes(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo
) -> None:
    before = _files(recorded_demo.capture.parent)
    rec = run(pytester, "--wsshadow-capture=" + str(recorded_demo.capture),
              "--wsshadow-target=" + recorded_demo.legacy, "--wsshadow-config=" + CONFIG,
              "--wsshadow-no-maps")  # fmt: skip
    got = reports(rec)
    assert set(got) == {item_id(s) for s in recorded_demo.sessions}
    assert len(got) == 16
    failed = {k: r.longreprtext for k, r in got.items() if not r.passed}
    assert failed == {}
    # Without --wsshadow-run the plugin only reads: the capture and its directory are untouched.
    assert _files(recorded_demo.capture.parent) == before


def test_against_consolidated_the_planted_regressions_fail(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo
) -> None:
    rec = run(pytester, "--wsshadow-capture=" + str(recorded_demo.capture),
              "--wsshadow-target=" + recorded_demo.consolidated, "--wsshadow-config=" + CONFIG)  # fmt: skip
    got = reports(rec)
    expected = {item_id(s): regressions(s) for s in recorded_demo.sessions}
    assert {k for k, r in got.items() if r.failed} == {k for k, v in expected.items() if v}
    assert sum(1 for v in expected.values() if v) == 10  # every regression is met
    seen: set[str] = set()
    s_by_id = {item_id(s): s for s in recorded_demo.sessions}
    for node, wanted in expected.items():
        report = got[node]
        assert report.when == "call"  # failures, not errors
        text = report.longreprtext
        for phrase in wanted:
            assert phrase in text, f"{node}: {phrase!r} not in\n{text}"
            seen.add(phrase.split("\n")[0])
        if wanted:
            assert "Traceback" not in text and "differs from the recording" in text
            # what varies between replays (generated ids) is listed as noise, not failed on
            groups = [ln for ln in text.splitlines() if re.match(r"  [a-z_]+ /", ln)]
            assert groups and not any(
                i in g for g in groups for i in ("run_id", "connection_id", "request_id", "timing")
            )
            if s_by_id[node].route != "/ws/factory" or len(groups) > 1:
                continue
            assert "noise (varies between replays, ignored): " in text and "run_id" in text
    # the five regressions: missing_event, close, "expected:" (error_code), handshake, changed_value
    assert len({p.split(" ")[0] for p in seen}) == 5


def test_unreachable_target_errors_with_one_line(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        rec = run(pytester, "--wsshadow-capture=" + str(recorded_demo.capture),
                  "--wsshadow-target=" + f"ws://127.0.0.1:{port}", "--wsshadow-config=" + CONFIG)  # fmt: skip
    got = reports(rec)
    assert len(got) == 16
    for report in got.values():
        assert report.when == "setup" and report.failed  # an error, not a failure
        lines = report.longreprtext.strip().splitlines()
        assert len(lines) == 1, report.longreprtext
        assert lines[0].startswith(f"wsshadow: ws://127.0.0.1:{port}: unreachable")


def test_route_and_session_filters_and_node_ids(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo
) -> None:
    factory = [s for s in recorded_demo.sessions if s.route == "/ws/factory"]
    result = pytester.runpytest("--collect-only", "-q", "--wsshadow-capture=" + str(recorded_demo.capture), "--wsshadow-target=" + recorded_demo.legacy, "--wsshadow-route", "/ws/fac*")  # fmt: skip
    listed = [line for line in result.outlines if line.startswith("wsshadow::")]
    assert sorted(listed) == sorted(item_id(s) for s in factory)
    one = factory[0]
    result = pytester.runpytest("--collect-only", "-q", "--wsshadow-capture=" + str(recorded_demo.capture), "--wsshadow-target=" + recorded_demo.legacy, "--wsshadow-session", one.id[:6])  # fmt: skip
    assert [line for line in result.outlines if line.startswith("wsshadow::")] == [item_id(one)]


def test_without_a_capture_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        def test_plain(request):
            assert request.config.pluginmanager.get_plugin("wsshadow-collection") is None
            assert request.config.getoption("wsshadow_capture") is None

        def test_fixture_skips_without_a_capture(wsshadow_replay):
            raise AssertionError("not reached")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*wsshadow_replay needs --wsshadow-capture*"])
    assert not any(line.startswith("wsshadow::") for line in result.outlines)


def test_bad_options_are_one_line_usage_errors(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo, tmp_path: Path
) -> None:
    no_target = pytester.runpytest("--wsshadow-capture=" + str(recorded_demo.capture))
    assert no_target.ret == pytest.ExitCode.USAGE_ERROR
    no_target.stderr.fnmatch_lines(["*wsshadow: --wsshadow-capture needs --wsshadow-target URL*"])
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a sqlite file at all" * 100)
    bad = pytester.runpytest("--wsshadow-capture=" + str(corrupt), "--wsshadow-target=" + recorded_demo.legacy)  # fmt: skip
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines([f"*wsshadow: {corrupt}: not a readable wsshadow capture*"])
    config = tmp_path / "wsshadow.toml"
    config.write_text("[diff]\nordering = 'sideways'\n")
    bad = pytester.runpytest("--wsshadow-capture=" + str(recorded_demo.capture), "--wsshadow-target=" + recorded_demo.legacy, "--wsshadow-config=" + str(config))  # fmt: skip
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*wsshadow: *wsshadow.toml: [[]diff[]].ordering: expected*"])
    assert "Traceback" not in bad.stderr.str()


def test_fixture_in_custom_tests(pytester: pytest.Pytester, recorded_demo: RecordedDemo) -> None:
    factory = recorded_demo.session("/ws/factory")
    isolated = recorded_demo.session("/ws/isolated")
    pytester.makepyfile(
        test_custom=f"""
        def test_factory_regression(wsshadow_replay):
            result = wsshadow_replay("{factory.id}")
            assert not result.equivalent
            assert result.signatures == ("missing_event /ws/factory agent_thinking",)
            assert result.recorded.id == "{factory.id}"
            assert result.live.handshake.route == "/ws" and result.live.handshake.query == "mode=factory"
            kinds = {{d.kind for d in result.differences}}
            assert kinds == {{"missing_event"}}
            assert result.differences[0].actual is None

        def test_same_session_against_legacy(wsshadow_replay):
            result = wsshadow_replay("{factory.id[:8]}", target="{recorded_demo.legacy}", maps=())
            assert result.equivalent, result.explain()

        async def test_async_variant(wsshadow_replay):
            result = await wsshadow_replay.replay("{isolated.id}")
            assert "changed_value /ws/isolated agent_completed user_context.user_id" in result.signatures
            ids = wsshadow_replay.sessions("/ws/isolated")
            assert "{isolated.id}" in ids and len(ids) == 4 and len(wsshadow_replay.sessions()) == 16
        """
    )
    result = pytester.runpytest("-k", "not wsshadow", "--wsshadow-capture=" + str(recorded_demo.capture), "--wsshadow-target=" + recorded_demo.consolidated, "--wsshadow-config=" + CONFIG)  # fmt: skip
    result.assert_outcomes(passed=3)


def test_replays_stored_as_a_run(
    pytester: pytest.Pytester, recorded_demo: RecordedDemo, tmp_path: Path
) -> None:
    capture = tmp_path / "copy.db"
    shutil.copy(recorded_demo.capture, capture)
    args = [f"--wsshadow-capture={capture}", f"--wsshadow-config={CONFIG}",
            f"--wsshadow-target={recorded_demo.consolidated}", "--wsshadow-route=/ws",
            "--wsshadow-run=ci"]  # fmt: skip
    rec = run(pytester, *args)
    ws = [s for s in recorded_demo.sessions if s.route == "/ws"]
    assert len(reports(rec)) == len(ws) == 5
    with CaptureStore.open(capture) as store:
        runs = {r.name: r for r in store.runs()}
        assert set(runs) == {"ci", "ci-noise-1"}
        assert runs["ci"].sessions == runs["ci-noise-1"].sessions == 5
        assert runs["ci"].target == recorded_demo.consolidated
        assert runs["ci"].ended_at is not None and runs["ci"].errors == 0
        for s in ws:
            live = store.get_session(f"ci:{s.id}")
            assert live.provenance.origin == s.id and live.handshake.query == "mode=main"
            assert store.get_session(f"ci-noise-1:{s.id}").provenance.run == "ci-noise-1"
        report = diff_capture(store, "recorded", "ci", (), load_config(CONFIG).diff)
    signatures = {d["signature"] for d in report["differences"]}
    assert {"close /ws - code", "handshake /ws - subprotocol",
            "changed_value /ws error_message error_code"} <= signatures  # fmt: skip
    # the run name is taken now: a second run with it is refused with one line
    again = pytester.runpytest(*args)
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    again.stderr.fnmatch_lines(["*wsshadow: *copy.db: a run called 'ci' exists already*"])
