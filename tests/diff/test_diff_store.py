"""``diff_capture`` over a real capture file and ``wsshadow diff`` run in-process."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.diff.diffkit import C, S, session
from wsshadow.replay.capture.model import Close, Closer, Run, Session
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main
from wsshadow.replay.diff.capture import diff_capture
from wsshadow.replay.errors import BadInput

ROUTES = ["/ws", "/ws/factory"]


def _stream(rng: random.Random, route: str, *, error_code: str, close_code: int) -> Any:
    """One session's traffic: volatile ids and times, a heartbeat racing the welcome."""
    now = 1764150000 + rng.random() * 1000
    heartbeat = S({"type": "ping", "data": {"timestamp": now}})
    welcome = S({"type": "system_message", "data": {
        "event": "connection_established", "connection_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "server_time": f"2026-11-26T10:00:{rng.randrange(60):02d}Z"}})  # fmt: skip
    first = [heartbeat, welcome] if rng.random() < 0.5 else [welcome, heartbeat]
    run_id = f"{rng.getrandbits(48):012x}"
    items = [
        *first,
        C({"type": "user_message", "payload": {"text": "hi"}}, 0.05),
        S({"type": "agent_started", "run_id": run_id, "timestamp": now + 0.05}, 0.051),
        S({"type": "agent_completed", "run_id": run_id, "result": "ih"}, 0.052),
        C("not json", 0.06),
        S({"type": "error_message", "error_code": error_code}, 0.061),
    ]
    return session("x", items, route=route, close=Close(close_code, "bye", Closer.SERVER))


def _as(s: Session, sid: str, run: str | None, origin: str | None) -> Session:
    from dataclasses import replace

    from wsshadow.replay.capture.model import Provenance, Source

    prov = Provenance(source=Source.REPLAY, run=run, origin=origin) if run else Provenance()
    return replace(s, id=sid, provenance=prov)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    rng = random.Random(7)
    path = tmp_path / "capture.db"
    ids = [f"s{i:02d}" for i in range(24)]
    routes = {sid: ROUTES[i % 2] for i, sid in enumerate(ids)}
    sessions: list[Session] = []
    for sid in ids:
        sessions.append(_as(_stream(rng, routes[sid], error_code="FORMAT_ERROR", close_code=1011),
                            sid, None, None))  # fmt: skip
    runs = {
        "baseline-1": dict(error_code="FORMAT_ERROR", close_code=1011),
        "baseline-2": dict(error_code="FORMAT_ERROR", close_code=1011),
        "candidate-1": dict(error_code="JSON_PARSE_ERROR", close_code=1008),
        "candidate-2": dict(error_code="FORMAT_ERROR", close_code=1011),
    }
    with CaptureStore.open(path, create=True) as store:
        for name, kwargs in runs.items():
            store.put_run(Run(name=name, target=f"ws://127.0.0.1:1/{name}"))
            for sid in reversed(ids):  # replays finish in any order
                sessions.append(
                    _as(_stream(rng, routes[sid], **kwargs), f"{name}:{sid}", name, sid)
                )  # type: ignore[arg-type]
        store.put_sessions(sessions)
    return path


def test_diff_capture_finds_exactly_the_two_regressions(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        report = diff_capture(store, "baseline-1", "candidate-1", ["baseline-2"], now=0)
    assert report["verdict"] == "divergent"
    sigs = {d["signature"]: d for d in report["differences"]}
    assert set(sigs) == {
        "changed_value /ws error_message error_code",
        "changed_value /ws/factory error_message error_code",
        "close /ws - code",
        "close /ws/factory - code",
    }
    group = sigs["close /ws - code"]
    assert group["count"] == 12 and group["occurrences"] == 12
    assert group["sessions"] == [f"s{i:02d}" for i in range(0, 24, 2)]  # capture order
    assert group["examples"][0] == {"session": "s00", "expected": 1011, "actual": 1008}
    assert len(group["examples"]) == 3
    assert report["sessions"] == {"total": 24, "equivalent": 0, "divergent": 24, "errored": 0}
    assert {n["signature"].split()[0] for n in report["noise"]} == {"reordered"}
    detail = report["session_details"][0]
    assert detail["session"] == "s00" and detail["baseline_session"] == "baseline-1:s00"
    assert detail["candidate_session"] == "candidate-1:s00"
    assert detail["close"]["candidate"] == {"code": 1008, "reason": "bye", "by": "server"}
    statuses = [r["status"] for r in detail["rows"]]
    assert statuses.count("changed") == 1 and len(statuses) == 5
    assert report["baseline"] == {"target": "ws://127.0.0.1:1/baseline-1", "run": "baseline-1"}
    json.dumps(report)  # JSON-ready all the way down


def test_noisy_but_identical_runs_are_equivalent(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        report = diff_capture(store, "baseline-1", "candidate-2", ["baseline-2"])
        recorded = diff_capture(store, "recorded", "candidate-2", ["baseline-1", "baseline-2"])
    for r in (report, recorded):
        assert r["verdict"] == "equivalent", r["differences"]
        assert r["differences"] == [] and r["noise"]
        assert r["sessions"]["equivalent"] == 24
    assert recorded["baseline"] == {"target": None, "run": "recorded"}
    assert recorded["session_details"][0]["baseline_session"] == "s00"


def test_without_noise_runs_the_race_is_reported(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        report = diff_capture(store, "baseline-1", "candidate-2")
    assert {d["kind"] for d in report["differences"]} == {"reordered"}


def test_unknown_run_is_bad_input(capture: Path) -> None:
    with CaptureStore.open(capture) as store, pytest.raises(BadInput, match="no run called 'nope'"):
        diff_capture(store, "baseline-1", "nope")


def test_missing_replays_are_errored_sessions(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions([
            session("r1", [S({"type": "a"})]),
            session("r2", [S({"type": "a"})]),
            session("c:r1", [S({"type": "a"})], run="cand", origin="r1"),
        ])  # fmt: skip
        report = diff_capture(store, "recorded", "cand")
    assert report["sessions"] == {"total": 2, "equivalent": 1, "divergent": 0, "errored": 1}
    assert [d["signature"] for d in report["differences"]] == ["error /ws -"]
    assert report["session_details"][1]["error"] == "no candidate session"


def test_cli_diff_exit_codes_and_outputs(
    capture: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["diff", str(capture), "--baseline", "baseline-1", "--noise", "baseline-2"]
    out = tmp_path / "report.json"
    assert main([*args, "--candidate", "candidate-1", "--report", str(out)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("DIVERGENT")
    assert "close /ws - code" in text and "noise" in text.lower()
    report = json.loads(out.read_text())
    assert report["schema_version"] == 2 and len(report["differences"]) == 4

    assert main([*args, "--candidate", "candidate-2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "equivalent"

    assert main([*args, "--candidate", "nope"]) == 2
    assert "no run called 'nope'" in capsys.readouterr().err
    assert main([*args, "--candidate", "candidate-1", "--report", "r.pdf"]) == 2
    assert main(["diff", str(tmp_path / "missing.db"), "--candidate", "x"]) == 2


def test_cli_config_is_used_and_errors_exit_2(
    capture: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["diff", str(capture), "--baseline", "baseline-1", "--candidate", "candidate-1"]
    (tmp_path / "wsshadow.toml").write_text(
        '[diff]\nignore = ["error_code"]\n[diff.background]\nping = ["unordered"]\n'
        '[routes."/ws"]\nignore = []\n'
    )
    assert main([*args, "--format", "json"]) == 1  # config found in the working directory
    sigs = {d["signature"] for d in json.loads(capsys.readouterr().out)["differences"]}
    assert sigs == {"close /ws - code", "close /ws/factory - code"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[diff]\nordering = "sideways"\n')
    assert main([*args, "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: [diff].ordering: expected one of strict, per-key, window:N" in err
    assert "Traceback" not in err


def test_without_session_details_the_verdicts_are_the_same(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        full = diff_capture(store, "baseline-1", "candidate-1", ["baseline-2"], now=0)
        lean = diff_capture(
            store, "baseline-1", "candidate-1", ["baseline-2"], now=0, session_details=False
        )
    assert lean["session_details"] == []
    assert lean["sessions"] == full["sessions"]
    assert lean["differences"] == full["differences"] and lean["noise"] == full["noise"]


def test_rows_of_suppressed_differences_say_noise(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        report = diff_capture(store, "baseline-1", "candidate-2", ["baseline-2"])
    statuses = {r["status"] for d in report["session_details"] for r in d["rows"] or ()}
    assert "noise" in statuses and statuses <= {"equal", "noise"}
    with_rows = [d for d in report["session_details"] if d["rows"] is not None]
    assert len(with_rows) == 24  # every session is equivalent: up to 50 get rows


def test_a_session_replayed_twice_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions([
            session("r1", [S({"type": "a", "v": 1})]),
            session("c:r1", [S({"type": "a", "v": 1})], run="cand", origin="r1"),
            session("c:r1:again", [S({"type": "a", "v": 2})], run="cand", origin="r1"),
        ])  # fmt: skip
        report = diff_capture(store, "recorded", "cand")
    assert report["verdict"] == "equivalent"
    assert report["session_details"][0]["candidate_session"] == "c:r1"
