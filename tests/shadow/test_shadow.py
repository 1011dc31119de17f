"""wsshadow shadow end to end: real servers on loopback, real replays, the report and exit code."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main


def chat_handler(value_factor: int, close_code: int) -> Any:
    """A tiny protocol: welcome (noisy ids and times), answers to asks, close on bye."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "welcome",
                    "connection_id": str(uuid.uuid4()),
                    "ts": time.time(),
                    "seq": random.randrange(10**6),
                }
            )
        )
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "ask":
                await asyncio.sleep(random.uniform(0, 0.003))
                await ws.send(
                    json.dumps(
                        {
                            "type": "answer",
                            "n": msg["n"],
                            "value": msg["n"] * value_factor,
                            "id": uuid.uuid4().hex[:10],
                        }
                    )
                )
            elif msg["type"] == "bye":
                await ws.close(close_code, "done")
                return

    return handler


@asynccontextmanager
async def server(value_factor: int = 2, close_code: int = 1000) -> AsyncIterator[str]:
    async with serve(chat_handler(value_factor, close_code), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def recorded_session(i: int) -> Session:
    def m(seq: int, d: str, payload: dict[str, Any]) -> Message:
        return Message(seq, seq * 0.01, Direction(d), Opcode.TEXT, json.dumps(payload))

    msgs = [m(0, "server", {"type": "welcome", "connection_id": "c", "ts": 1.0, "seq": 1})]
    for n in (1, 2, 3):
        msgs.append(m(len(msgs), "client", {"type": "ask", "n": n + i}))
        msgs.append(
            m(len(msgs), "server", {"type": "answer", "n": n + i, "value": 2 * (n + i), "id": "x"})
        )
    msgs.append(m(len(msgs), "client", {"type": "bye"}))
    return Session(
        f"rec{i:02}",
        1000.0 + i,
        Handshake("/chat"),
        tuple(msgs),
        Close(1000, "done", Closer.SERVER, t=0.1),
        Provenance(),
    )


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(recorded_session(i) for i in range(12))
    return path


async def shadow(capture: Path, baseline: str, candidate: str, *extra: str) -> int:
    args = ["shadow", str(capture), "--baseline", baseline, "--candidate", candidate, *extra]
    return await asyncio.to_thread(main, args)


@pytest.fixture
def no_timing(tmp_path: Path) -> Path:
    """A config under which no timing difference is reported.

    For tests about other kinds: a loaded machine can delay one candidate
    answer by the 50 ms a timing difference needs.
    """
    path = tmp_path / "no-timing.toml"
    path.write_text("[diff.timing]\nfloor_ms = 60000\n")
    return path


async def test_one_field_and_one_close_code_are_exactly_two_signatures(
    capture: Path, tmp_path: Path, no_timing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    async with server() as legacy, server(value_factor=3, close_code=4000) as rewrite:
        code = await shadow(
            capture, legacy, rewrite, "--report", str(report_path), "--run-prefix", "t1",
            "--config", str(no_timing),
        )  # fmt: skip
    assert code == 1
    report = json.loads(report_path.read_text())
    assert [d["signature"] for d in report["differences"]] == [
        "changed_value /chat answer value",
        "close /chat - code",
    ]
    assert all(d["count"] == 12 for d in report["differences"])
    assert report["sessions"] == {"total": 12, "equivalent": 0, "divergent": 12, "errored": 0}
    assert report["baseline"] == {"target": legacy, "run": "t1-baseline"}
    assert report["noise_runs"] == ["t1-noise1"]
    # the noisy fields (ids, times, seq) were learned from the second baseline run, not reported
    noise = {n["signature"] for n in report["noise"]}
    assert any("welcome" in s for s in noise)
    out = capsys.readouterr().out
    assert out.startswith("DIVERGENT") and "changed_value /chat answer value" in out
    with CaptureStore.open(capture) as store:
        assert {r.name for r in store.runs()} == {"t1-baseline", "t1-candidate", "t1-noise1"}
        assert store.count_sessions("t1-candidate") == 12


async def test_identical_noisy_servers_are_equivalent(
    capture: Path, no_timing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server() as legacy, server() as rewrite:
        code = await shadow(
            capture, legacy, rewrite, "--format", "json", "--config", str(no_timing)
        )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "equivalent", report["differences"]
    assert report["noise"], "the noise section lists what was suppressed"


async def test_candidate_maps_apply_to_the_candidate_only(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server() as legacy, server() as rewrite:
        code = await shadow(
            capture, legacy, rewrite, "--map", "/chat=/v2/chat?mode=x", "--run-prefix", "m"
        )
    assert code == 0, capsys.readouterr().out
    with CaptureStore.open(capture) as store:
        cand = store.get_session("m-candidate:rec00").handshake
        base = store.get_session("m-baseline:rec00").handshake
    assert (cand.route, cand.query) == ("/v2/chat", "mode=x")
    assert (base.route, base.query) == ("/chat", "")


async def test_unreachable_candidate_is_exit_2(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server() as legacy:
        code = await shadow(capture, legacy, "ws://127.0.0.1:9", "--noise-runs", "0")
    err = capsys.readouterr().err
    assert code == 2 and "candidate ws://127.0.0.1:9" in err and err.count("\n") == 1


async def test_recorded_baseline_needs_no_baseline_server(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server(value_factor=3) as rewrite:
        code = await shadow(capture, "recorded", rewrite, "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["noise_runs"] == []
    assert "changed_value /chat answer value" in [d["signature"] for d in report["differences"]]
