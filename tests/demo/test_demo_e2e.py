"""`wsshadow demo` end to end: exactly the five planted regressions, three runs in a row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.timeouts import scaled
from wsshadow.replay.capture.model import CausalWaits
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main
from wsshadow.replay.demo import ROOM_USERS
from wsshadow.replay.demo.run import DEMO_FILES

EXPECTED = {
    ("missing_event", "/ws/factory", "agent_thinking", None),
    ("close", "/ws", None, "code"),
    ("changed_value", "/ws", "error_message", "error_code"),
    ("handshake", "/ws", None, "subprotocol"),
    ("changed_value", "/ws/isolated", "*", "user_context.user_id"),
}


def findings(report: dict[str, object]) -> set[tuple[str, str, str | None, str | None]]:
    diffs = report["differences"]
    assert isinstance(diffs, list)
    return {(d["kind"], d["route"], d["event"], d["path"]) for d in diffs}


def check_shared_room(capture: Path, report: dict[str, Any]) -> None:
    """The room's two sessions are the capture's one scenario, linked by the invite code,
    replayed together: reproduced, and no wait of the baseline or noise runs timed out."""
    with CaptureStore.open(capture) as store:
        recorded = {s.id: s for s in store.iter_sessions()}
        room = {
            s.id
            for s in recorded.values()
            if any(m.opcode.is_data and "create_invite" in str(m.payload) for m in s.messages)
            or any(m.opcode.is_data and "join_thread" in str(m.payload) for m in s.messages)
        }
        assert len(room) == len(ROOM_USERS)
        for run in (report["baseline"]["run"], *report["noise_runs"]):
            for replayed in store.iter_sessions(run):
                assert CausalWaits.from_tags(replayed.provenance.tags) is None, replayed.id
        candidate = report["candidate"]["run"]
        for replayed in store.iter_sessions(candidate):
            if replayed.provenance.origin in room:  # the room has no planted regression
                assert CausalWaits.from_tags(replayed.provenance.tags) is None
    scenarios = {d["session"]: d["scenario"] for d in report["session_details"]}
    (scenario,) = {scenarios[sid] for sid in room}
    assert scenario is not None
    assert {sid for sid, sc in scenarios.items() if sc is not None} == room
    details = [d for d in report["session_details"] if d["session"] in room]
    assert all(d["reproduced"] == 1.0 for d in details), details


@pytest.mark.slow
def test_demo_reports_exactly_the_five_regressions_three_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for attempt in range(3):  # the noise (races, ids, clocks) is random every run
        out = tmp_path / f"run{attempt}"
        # The replay's waits for answers are time bounds too: scaled on a loaded machine.
        wait = str(scaled(0.5))
        assert main(["demo", "--out", str(out), "--causal-timeout", wait]) == 0
        printed = capsys.readouterr()
        assert printed.out.startswith("DIVERGENT  5 difference groups")
        for name in DEMO_FILES:
            assert (out / name).stat().st_size > 0, name
            assert str(out / name) in printed.out
        report = json.loads((out / "report.json").read_text())
        assert report["verdict"] == "divergent"
        assert findings(report) == EXPECTED, report["differences"]
        assert len(report["differences"]) == 5  # each once, as its own signature
        isolated = next(d for d in report["differences"] if d["event"] == "*")
        assert isolated["events"] == [
            "agent_completed",
            "agent_started",
            "agent_thinking",
            "tool_completed",
            "tool_executing",
        ]
        assert isolated["examples"][0]["actual"].endswith("...")
        assert report["noise"], "the noise section is not empty"
        assert report["sessions"]["errored"] == 0
        # every session reproduced by the baseline replay, every route comparable
        fidelity = report["fidelity"]
        total = report["sessions"]["total"]
        assert fidelity["sessions"] == {"total": total, "reproduced": total, "unreproduced": 0}
        assert fidelity["reasons"] == [] and fidelity["causes"] == []
        assert all(r["comparable"] for r in fidelity["routes"]), fidelity["routes"]
        assert all(d["reproduced"] >= 0.9 for d in report["session_details"])
        check_shared_room(out / "capture.db", report)
        # every route of the demo speaks plain JSON, detected so
        assert report["dialects"] == {
            route: ["json"] for route in ("/websocket", "/ws", "/ws/factory", "/ws/isolated")
        }, report["dialects"]


def test_show_config_prints_the_packaged_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--show-config"]) == 0
    text = capsys.readouterr().out
    assert "[replay]" in text and '"/ws/factory=/ws?mode=factory"' in text
