"""Dialects end to end: real clients recorded through the proxy against real server
libraries, then shadow-replayed to an identical server, one with a field changed inside the
framed payload, and one answering in another order.

Socket.IO: python-socketio (server and client). GraphQL over WebSocket: strawberry-graphql
(both graphql-transport-ws and subscriptions-transport-ws). JSON-RPC 2.0: jsonrpcserver.
MQTT: the mosquitto broker with its WebSocket listener and the paho-mqtt client. STOMP,
Phoenix, SignalR and ActionCable have no server in the package registries used here: their
tests are spec-derived (tests/diff/dialects).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import socketio
from aiohttp import web
from dialect_kit import record, serving_aiohttp, shadow, signatures

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, TimingConfig

pytestmark = pytest.mark.slow

SLOW_OK = DiffConfig(timing=TimingConfig(floor_ms=60_000))
"""The answers held back to change their order are slower: that is not what is tested."""


# ---- Socket.IO ---------------------------------------------------------------------


@asynccontextmanager
async def socketio_server(variant: str = "same") -> AsyncIterator[str]:
    """A python-socketio chat: ``changed`` reports another count, ``swapped`` acks the
    first emit last."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("join")
    async def join(sid: str, data: dict) -> None:
        count = 2 if variant == "changed" else 1
        await sio.emit("joined", {"room": data["room"], "count": count, "sid": sid}, to=sid)

    @sio.on("chat")
    async def chat(sid: str, data: dict) -> dict:
        if variant == "swapped" and data["n"] == 1:
            await asyncio.sleep(0.3)
        return {"ok": True, "echo": data["text"], "n": data["n"]}

    async with serving_aiohttp(app) as url:
        yield url


async def socketio_client(url: str, transports: tuple[str, ...] = ("websocket",)) -> None:
    client = socketio.AsyncClient()
    acked: list[object] = []
    await client.connect(url.replace("ws://", "http://"), transports=list(transports))
    await client.emit("join", {"room": "lobby"})
    await asyncio.sleep(0.1)
    await client.emit("chat", {"text": "hi", "n": 1}, callback=acked.append)
    await client.emit("chat", {"text": "yo", "n": 2}, callback=acked.append)
    while len(acked) < 2:
        await asyncio.sleep(0.02)
    await client.disconnect()


async def test_socketio(tmp_path: Path) -> None:
    capture = tmp_path / "capture.db"
    async with socketio_server() as legacy:
        await record(legacy, capture, socketio_client)
        async with socketio_server() as same:
            report = await shadow(capture, legacy, same)
        assert report["verdict"] == "equivalent", signatures(report)
        assert report["dialects"] == {"/socket.io/": ["socketio"]}
        async with socketio_server("changed") as changed:
            report = await shadow(capture, legacy, changed)
        assert signatures(report) == ["changed_value /socket.io/ joined count"]
        async with socketio_server("swapped") as swapped:
            report = await shadow(capture, legacy, swapped, SLOW_OK)
        assert report["verdict"] == "equivalent", signatures(report)


async def test_socketio_upgraded_from_long_polling(tmp_path: Path) -> None:
    """The client opens with polling and upgrades; the replay gets a fresh sid the same way."""
    capture = tmp_path / "capture.db"

    async def client(url: str) -> None:
        await socketio_client(url, ("polling", "websocket"))

    async with socketio_server() as legacy:
        await record(legacy, capture, client)
        with CaptureStore.open(capture) as store:
            [recorded] = list(store.iter_sessions())
        assert "sid=" in recorded.handshake.query
        assert [m.payload for m in recorded.messages][:1] == ["2probe"]
        async with socketio_server() as same:
            report = await shadow(capture, legacy, same)
        assert report["verdict"] == "equivalent", signatures(report)
        assert report["sessions"]["errored"] == 0
        async with socketio_server("changed") as changed:
            report = await shadow(capture, legacy, changed)
        assert signatures(report) == ["changed_value /socket.io/ joined count"]
