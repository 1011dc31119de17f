"""End to end over real WebSockets on 127.0.0.1: two servers, recorded runs, ``wsshadow diff``.

A small client in this test plays the same script against each server and
stores what it saw as a run (the replay engine proper lives elsewhere);
the servers are real ``websockets`` servers on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.timeouts import scaled
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

Handler = Callable[[ServerConnection], Awaitable[None]]


def chat_server(status: str, close_code: int) -> Handler:
    """A chat backend: noisy welcome racing a heartbeat, two events per message."""

    async def handler(ws: ServerConnection) -> None:
        welcome = {"type": "welcome", "connection_id": str(uuid.uuid4()),
                   "server_time": time.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
        heartbeat = {"type": "heartbeat", "timestamp": time.time()}
        first = [welcome, heartbeat] if random.random() < 0.5 else [heartbeat, welcome]
        for m in first:
            await ws.send(json.dumps(m))
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "user_message":
                run_id = uuid.uuid4().hex
                await ws.send(json.dumps({"type": "agent_started", "run_id": run_id,
                                          "timestamp": time.time()}))  # fmt: skip
                await ws.send(json.dumps({"type": "agent_completed", "run_id": run_id,
                                          "result": msg["text"][::-1], "status": status}))  # fmt: skip
            elif msg["type"] == "bye":
                await ws.close(close_code, "bye")
                return

    return handler


@asynccontextmanager
async def running(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[index]
        yield f"ws://127.0.0.1:{port}"


async def play(url: str, sid: str, text: str, run: str | None, origin: str | None) -> Session:
    """Run the client script and record both directions as a Session."""
    messages: list[Message] = []
    opened = time.monotonic()

    def record(direction: Direction, payload: str) -> None:
        messages.append(Message(len(messages), time.monotonic() - opened, direction,
                                Opcode.TEXT, payload))  # fmt: skip

    async with connect(url + "/ws") as ws:
        for out in ({"type": "user_message", "text": text}, {"type": "bye"}):
            payload = json.dumps(out)
            record(Direction.CLIENT, payload)
            await ws.send(payload)
            try:
                while True:
                    got = await asyncio.wait_for(ws.recv(), scaled(0.3))
                    assert isinstance(got, str)
                    record(Direction.SERVER, got)
                    if json.loads(got)["type"] == "agent_completed":
                        break
            except (TimeoutError, ConnectionClosed):
                pass
        await ws.wait_closed()
        close = Close(ws.close_code, ws.close_reason or "", Closer.SERVER,
                      t=time.monotonic() - opened)  # fmt: skip
    source = Source.REPLAY if run else Source.PROXY
    return Session(
        id=sid,
        started_at=time.time(),
        handshake=Handshake(route="/ws", status=101),
        messages=tuple(messages),
        close=close,
        provenance=Provenance(source=source, run=run, origin=origin),
    )


@pytest.fixture
async def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.db"
    random.seed(5)  # the servers' race is random; seeded, the test is repeatable
    texts = [f"hello {i}" for i in range(10)]
    async with (
        running(chat_server("ok", 1000)) as legacy,
        running(chat_server("done", 4000)) as regressed,
        running(chat_server("ok", 1000)) as rewritten,
    ):
        recorded = [await play(legacy, f"s{i}", t, None, None) for i, t in enumerate(texts)]
        runs: dict[str, tuple[str, list[Session]]] = {}
        for name, url in (("baseline-1", legacy), ("baseline-2", legacy),
                          ("baseline-3", legacy), ("candidate-1", regressed),
                          ("candidate-2", rewritten)):  # fmt: skip
            runs[name] = (url, [await play(url, f"{name}:s{i}", t, name, f"s{i}")
                                for i, t in enumerate(texts)])  # fmt: skip
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(recorded)
        for name, (url, sessions) in runs.items():
            store.put_run(Run(name=name, target=url, sessions=len(sessions)))
            store.put_sessions(sessions)
    return path


async def test_two_real_servers_differ_in_one_field_and_one_close_code(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    args = ["diff", str(capture), "--baseline", "baseline-1", "--noise", "baseline-2",
            "--noise", "baseline-3"]  # fmt: skip
    code = await asyncio.to_thread(
        main, [*args, "--candidate", "candidate-1", "--format", "json", "-o", str(out)]
    )
    assert code == 1
    report: dict[str, Any] = json.loads(out.read_text())
    assert [d["signature"] for d in report["differences"]] == [
        "changed_value /ws agent_completed status",
        "close /ws - code",
    ]
    assert report["differences"][0]["examples"][0]["expected"] == "ok"
    assert report["differences"][1]["examples"][0]["actual"] == 4000
    assert report["sessions"]["divergent"] == 10
    assert {n["kind"] for n in report["noise"]} == {"reordered"}  # the race, suppressed

    code = await asyncio.to_thread(main, [*args, "--candidate", "candidate-2"])
    assert code == 0
    assert capsys.readouterr().out.startswith("EQUIVALENT")
    # Against the recording without noise runs, the masks absorb ids and times but the
    # race is a reordering, until the config declares the heartbeat a background event.
    recorded = ["diff", str(capture), "--candidate", "candidate-2"]
    code = await asyncio.to_thread(main, [*recorded, "--format", "json"])
    kinds = {d["kind"] for d in json.loads(capsys.readouterr().out)["differences"]}
    assert code in (0, 1) and kinds <= {"reordered"}
    config = tmp_path / "wsshadow.toml"
    config.write_text('[diff.background]\nheartbeat = ["unordered"]\n')
    assert await asyncio.to_thread(main, [*recorded, "--config", str(config)]) == 0
