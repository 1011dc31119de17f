"""How replay runs use the capture store: paged prefetch, batched writes, leftover ids."""

# ruff: noqa: F811  (the capture fixture is imported, then used as a parameter)

from __future__ import annotations

import sqlite3
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.engine.engine_helpers import capture, conversation  # noqa: F401
from wsshadow.replay.capture.model import Direction, Provenance, Source
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.engine.run import ReplayOptions, replay_capture


async def echo(ws: ServerConnection) -> None:
    async for raw in ws:
        await ws.send(raw)


async def test_run_writes_every_session_and_replaces_leftover_ids(
    capture: tuple[Path, CaptureStore],
) -> None:
    _, store = capture
    store.put_sessions(
        conversation(
            f"e{i:03d}", [("client", {"n": i, "token": "s3cret-value"}), ("server", {"n": i})]
        )
        for i in range(150)
    )
    # A leftover session with a replayed id and no run row (an imported capture, say).
    leftover = conversation("r1:e007", [("server", {"old": True})] * 3)
    store.put_sessions([leftover.__class__(
        leftover.id, leftover.started_at, leftover.handshake, leftover.messages, leftover.close,
        Provenance(Source.REPLAY, run="r1", origin="e007"),
    )])  # fmt: skip
    async with serve(echo, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        result = await replay_capture(
            store,
            ReplayOptions(url, concurrency=7, credentials={"token": "fresh-s3cret"}),
            run="r1",
        )
    assert result.completed == 150 and result.messages_received == 150
    assert store.count_sessions("r1") == 150
    replayed = {s.provenance.origin: s for s in store.iter_sessions("r1")}
    assert sorted(replayed) == [f"e{i:03d}" for i in range(150)]
    for origin, s in replayed.items():
        n = int(origin[1:])
        assert [m.direction for m in s.messages] == [Direction.CLIENT, Direction.SERVER]
        # The filled credential, sent and echoed, is redacted on the way into the capture.
        assert all("s3cret" not in m.payload for m in s.messages)
        assert all("${redacted:json:token}" in m.payload for m in s.messages)
        assert f'"n": {n}' in s.messages[1].payload or f'"n":{n}' in s.messages[1].payload
        assert s.close is not None and s.handshake.status == 101
    assert "old" not in str(replayed["e007"].messages)


async def test_a_session_with_a_damaged_row_fails_alone(capture: tuple[Path, CaptureStore]) -> None:
    path, store = capture
    store.put_sessions(
        conversation(f"d{i}", [("client", {"n": i}), ("server", {"n": i})]) for i in range(5)
    )
    conn = sqlite3.connect(path)
    conn.execute("UPDATE frames SET opcode = 'bogus' WHERE session_id = 'd2' AND seq = 1")
    conn.commit()
    conn.close()
    async with serve(echo, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        result = await replay_capture(store, ReplayOptions(url, concurrency=5), run="r")
    by_origin = {o.origin: o for o in result.outcomes}
    assert result.completed == 4 and not by_origin["d2"].connected
    error = by_origin["d2"].error or ""
    assert "'d2' is damaged" in error and "internal error" not in error
    assert sorted(s.provenance.origin or "" for s in store.iter_sessions("r")) == [
        "d0", "d1", "d3", "d4",
    ]  # fmt: skip
    assert store.get_run("r") is not None and store.get_run("r").errors == 1  # type: ignore[union-attr]
