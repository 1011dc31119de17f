"""A multi-user Socket.IO chat room on the real python-socketio server and clients.

Three users recorded through the proxy: Alice creates a room and gets a server-issued code,
Bob and Carol join with it, everyone's lines are broadcast to the room, and closing the room
is announced to all. Replayed with ``shadow``, the sessions form one scenario (the code is a
value link): an identical server is equivalent with every recorded event reproduced, and a
server that stops broadcasting to the others, or never announces the end, is divergent,
naming the event. Replayed alone (``links=False``), Bob's and Carol's joins carry a code
that no server issued in the replay: the fidelity check says so instead of passing.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import socketio
from aiohttp import web

from tests.shadow.dialect_kit import recorded_capture, serving_aiohttp, shadow, signatures
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, TimingConfig
from wsshadow.replay.engine.scenarios import capture_links

pytestmark = pytest.mark.slow

NO_TIMING = DiffConfig(timing=TimingConfig(floor_ms=60_000))
"""Timing is not what is tested here."""


@asynccontextmanager
async def room_server(
    *, no_broadcast: bool = False, no_close_notice: bool = False
) -> AsyncIterator[str]:
    """A python-socketio chat with rooms joined by a server-issued code."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)
    names: dict[str, str] = {}
    rooms: dict[str, list[str]] = {}

    @sio.on("create")
    async def create(sid: str, data: dict) -> None:
        code = secrets.token_hex(4).upper()  # upper case: never reads like a word
        names[sid] = data["name"]
        rooms[code] = [data["name"]]
        await sio.enter_room(sid, code)
        await sio.emit("created", {"code": code}, to=sid)

    @sio.on("join")
    async def join(sid: str, data: dict) -> None:
        code = data["code"]
        if code not in rooms:
            await sio.emit("error", {"message": "no such room"}, to=sid)
            return
        names[sid] = data["name"]
        rooms[code].append(data["name"])
        await sio.enter_room(sid, code)
        await sio.emit("joined", {"name": data["name"], "members": len(rooms[code])}, room=code)

    @sio.on("say")
    async def say(sid: str, data: dict) -> None:
        line = {"from": names.get(sid), "text": data["text"]}
        if no_broadcast:
            await sio.emit("said", line, to=sid)
        else:
            await sio.emit("said", line, room=data["code"])

    @sio.on("close_room")
    async def close_room(sid: str, data: dict) -> None:
        if not no_close_notice:
            await sio.emit("room_closed", {"by": names.get(sid)}, room=data["code"])

    async with serving_aiohttp(app) as url:
        yield url


async def three_users(url: str, transports: tuple[str, ...] = ("websocket",)) -> None:
    """Alice creates, Bob and Carol join with her code, each speaks, Alice closes."""
    http = url.replace("ws://", "http://")
    clients = {name: socketio.AsyncClient() for name in ("alice", "bob", "carol")}
    code: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    heard: dict[str, list[str]] = {name: [] for name in clients}

    for name, client in clients.items():

        def on_any(event: str, data: object, name: str = name) -> None:
            heard[name].append(event)
            if event == "created" and isinstance(data, dict):
                code.set_result(data["code"])

        client.on("*", on_any)

    async def until(name: str, count: int, event: str) -> None:
        while heard[name].count(event) < count:
            await asyncio.sleep(0.01)

    await clients["alice"].connect(http, transports=list(transports))
    await clients["alice"].emit("create", {"name": "alice"})
    room = await asyncio.wait_for(code, scaled(5.0))
    await asyncio.sleep(0.3)
    for n, name in enumerate(("bob", "carol"), start=2):
        await clients[name].connect(http, transports=list(transports))
        await clients[name].emit("join", {"code": room, "name": name})
        await asyncio.wait_for(until("alice", n - 1, "joined"), scaled(5.0))
        await asyncio.sleep(0.3)
    for n, name in enumerate(clients, start=1):
        await clients[name].emit("say", {"code": room, "text": f"hello from {name}"})
        await asyncio.wait_for(until("carol", n, "said"), scaled(5.0))
        await asyncio.sleep(0.3)
    await clients["alice"].emit("close_room", {"code": room})
    await asyncio.wait_for(until("bob", 1, "room_closed"), scaled(5.0))
    await asyncio.sleep(0.3)
    for client in clients.values():
        await client.disconnect()


@pytest.fixture(scope="module")
def room_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    capture = tmp_path_factory.mktemp("room") / "room.db"
    return recorded_capture(capture, room_server, three_users)


@pytest.fixture(scope="module")
def polled_room_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same room, each client opening with long-polling and upgrading."""
    capture = tmp_path_factory.mktemp("polled-room") / "room.db"
    return recorded_capture(
        capture, room_server, lambda url: three_users(url, ("polling", "websocket"))
    )


def test_the_room_is_one_scenario_linked_by_the_code(room_capture: Path) -> None:
    with CaptureStore.open(room_capture, readonly=True) as store:
        graph = capture_links(store, DiffConfig().event_keys)
        assert store.count_sessions() == 3
    assert len(graph.scenarios) == 1
    (members,) = graph.scenarios.values()
    assert len(members) == 3
    values = {lk.value for lk in graph.links if lk.kind == "value"}
    assert len(values) == 1 and all(re.fullmatch("[0-9A-F]{8}", str(v)) for v in values)


async def test_an_identical_room_server_is_equivalent_with_everything_reproduced(
    room_capture: Path,
) -> None:
    for _ in range(3):
        async with room_server() as base, room_server() as cand:
            report = await shadow(room_capture, base, cand, NO_TIMING)
        assert report["verdict"] == "equivalent", signatures(report)
        fidelity = report["fidelity"]
        assert fidelity["sessions"] == {"total": 3, "reproduced": 3, "unreproduced": 0}
        assert fidelity["events"]["reproduced"] == fidelity["events"]["recorded"]
        assert {d["scenario"] for d in report["session_details"]} != {None}


async def test_a_room_whose_clients_upgraded_from_polling_replays_too(
    polled_room_capture: Path,
) -> None:
    """Each replayed session opens a fresh Engine.IO session over polling; a namespace the
    client CONNECTed on the WebSocket is not CONNECTed twice (``44"Unable to connect"``)."""
    async with room_server() as base, room_server() as cand:
        report = await shadow(polled_room_capture, base, cand, NO_TIMING)
    assert report["verdict"] == "equivalent", signatures(report)
    assert report["fidelity"]["sessions"]["reproduced"] == 3


@pytest.mark.parametrize(
    ("candidate", "event"),
    [({"no_broadcast": True}, "said"), ({"no_close_notice": True}, "room_closed")],
)
async def test_a_room_server_that_stops_broadcasting_or_announcing_the_end_is_divergent(
    room_capture: Path, candidate: dict[str, bool], event: str
) -> None:
    async with room_server() as base, room_server(**candidate) as cand:
        report = await shadow(room_capture, base, cand, NO_TIMING)
    assert report["verdict"] == "divergent"
    found = signatures(report)
    assert found and all(event in s for s in found), found


async def test_replayed_alone_the_joins_are_not_reproduced_and_the_verdict_says_so(
    room_capture: Path,
) -> None:
    async with room_server() as base, room_server() as cand:
        report = await shadow(room_capture, base, cand, NO_TIMING, links=False)
    assert report["verdict"] != "equivalent"
    assert report["fidelity"]["sessions"]["unreproduced"] >= 2
