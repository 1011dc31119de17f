"""The mock server with real websockets clients on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import make_session
from tests.serve.helpers import chat_session, j, make_capture, served
from tests.timeouts import scaled
from wsshadow.replay.capture.model import Close, Closer, Direction, Session, Source
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, load_config
from wsshadow.replay.diff.capture import diff_capture
from wsshadow.replay.serve import MatchMode, OnMismatch, Pace, ServeOptions


async def replay_client_side(ws: ClientConnection, session: Session) -> list[str | bytes]:
    """Send the recorded client messages, each once the server messages recorded before it
    arrived; return everything the server sent until it closed."""
    got: list[str | bytes] = []
    pending = 0
    for m in session.messages:
        if m.direction is Direction.SERVER:
            pending += 1
            continue
        while pending:
            got.append(await asyncio.wait_for(ws.recv(), scaled(10)))
            pending -= 1
        await ws.send(m.payload)
    try:
        while True:
            got.append(await asyncio.wait_for(ws.recv(), scaled(10)))
    except ConnectionClosed:
        pass
    return got


async def test_a_recorded_client_gets_the_recorded_server_side_and_close() -> None:
    session = chat_session()
    async with served([session]) as (url, server, lines):
        async with connect(url + "/ws/chat") as ws:
            got = await replay_client_side(ws, session)
        assert got == [m.payload for m in session.server_messages()]
        assert ws.close_code == 4000 and ws.close_reason == "done"
        assert lines == [] and server.mismatches == []
        assert server.stats.messages_served == 5


async def test_the_recorded_subprotocol_is_selected() -> None:
    session = chat_session(subprotocols=("chat.v1", "chat.v2"), subprotocol="chat.v2")
    async with served([session]) as (url, _server, _lines):
        async with connect(url + "/ws/chat", subprotocols=["chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v2"
            await replay_client_side(ws, session)
        assert ws.close_code == 4000


async def test_a_deviating_client_gets_1008_and_one_mismatch_line() -> None:
    session = chat_session()
    async with served([session]) as (url, server, lines):
        async with connect(url + "/ws/chat") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(j(type="join", room="kitchen", user="ann"))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), scaled(10))
        assert ws.close_code == 1008
        assert ws.close_reason.startswith("wsshadow: client message 1 differs")
        assert len(lines) == 1 and len(server.mismatches) == 1
        assert "expected" in lines[0] and '"room": "lobby"' in lines[0]
        assert '"room": "kitchen"' in lines[0] and "chat-1" in lines[0]


async def test_skip_drops_a_deviating_message_and_waits_for_the_recorded_one() -> None:
    session = chat_session()
    async with served([session], ServeOptions(on_mismatch=OnMismatch.SKIP)) as (url, server, _):
        async with connect(url + "/ws/chat") as ws:
            await ws.recv()
            await ws.send(j(type="typo"))
            await ws.send(j(type="join", room="lobby", user="ann"))
            assert json.loads(await asyncio.wait_for(ws.recv(), scaled(10)))["type"] == "joined"
        assert len(server.mismatches) == 1


async def test_sessions_are_served_once_each_unless_reuse() -> None:
    a, b = chat_session("a", user="ann"), chat_session("b", user="bob")
    async with served([a, b]) as (url, _server, lines):
        # The second client says it is bob: it gets bob's session though ann's was first.
        async with connect(url + "/ws/chat") as ws:
            await replay_client_side(ws, b)
        async with connect(url + "/ws/chat") as ws:
            assert await replay_client_side(ws, a) == [m.payload for m in a.server_messages()]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url + "/ws/chat"):
                pass
        assert refused.value.response.status_code == 503
        assert any("every recorded session on it was served" in line for line in lines)
    async with served([a], ServeOptions(reuse=True)) as (url, server, _):
        for _ in range(3):
            async with connect(url + "/ws/chat") as ws:
                await replay_client_side(ws, a)
        assert server.stats.connections == 3


async def test_unknown_route_and_refused_handshake() -> None:
    refused = make_session("r", "/ws/private", [], close=None, status=403)
    async with served([chat_session(), refused]) as (url, _server, lines):
        with pytest.raises(InvalidStatus) as e404:
            async with connect(url + "/nope"):
                pass
        assert e404.value.response.status_code == 404
        assert lines and "no recorded session on /nope" in lines[0]
        with pytest.raises(InvalidStatus) as e403:
            async with connect(url + "/ws/private"):
                pass
        assert e403.value.response.status_code == 403


async def test_a_client_closed_session_waits_for_the_client() -> None:
    session = make_session("c", "/ws", [("client", "text", "ping?"), ("server", "text", "pong!")])
    assert session.close is not None and session.close.by is Closer.CLIENT
    async with served([session], ServeOptions(match=MatchMode.LOOSE)) as (url, _server, lines):
        async with connect(url + "/ws") as ws:
            await ws.send("anything")
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "pong!"
            await ws.send("more is fine when loose")
            await ws.close(1000, "bye")
        assert ws.close_code == 1000 and lines == []


async def test_recorded_pace_keeps_the_gaps_scaled_by_speed() -> None:
    msgs = [("server", "text", "one"), ("server", "text", "two")]
    session = make_session("p", "/ws", msgs, close=Close(1000, "", Closer.SERVER, t=0.5))
    # Recorded 10 ms apart; at speed 0.02 that is 0.5 s between them.
    options = ServeOptions(pace=Pace.RECORDED, speed=0.02)
    loop = asyncio.get_running_loop()
    async with served([session], options) as (url, _server, _):
        async with connect(url + "/ws") as ws:
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "one"
            first = loop.time()
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "two"
            assert loop.time() - first >= 0.45


async def test_served_connections_are_stored_as_a_run(tmp_path: Path) -> None:
    session = chat_session()
    path = make_capture(tmp_path / "c.db", [session])
    with CaptureStore.open(path) as store:
        async with served([session], store=store, run="serve-1") as (url, _server, _):
            async with connect(url + "/ws/chat") as ws:
                await ws.recv()
                await ws.send(j(type="join", room="kitchen", user="ann"))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), scaled(10))
        run = store.get_run("serve-1")
        assert run is not None and run.sessions == 1 and run.errors == 1
        assert run.settings["mode"] == "serve" and run.ended_at is not None
        (stored,) = list(store.iter_sessions("serve-1"))
        assert stored.provenance.origin == "chat-1" and stored.provenance.source is Source.REPLAY
        assert [m.payload for m in stored.client_messages()] == [j(type="join", room="kitchen",
                                                                   user="ann")]  # fmt: skip
        assert stored.close is not None and stored.close.code == 1008
        report = diff_capture(store, baseline="recorded", candidate="serve-1", config=DiffConfig())
    assert report["verdict"] != "equivalent"


async def test_strict_follows_the_routes_ignore_rules_from_the_config_file(tmp_path: Path) -> None:
    toml = tmp_path / "wsshadow.toml"
    toml.write_text('[routes."/ws/chat".events.join]\nignore = ["user"]\n', encoding="utf-8")
    config = load_config(toml).diff
    session = chat_session()
    async with served([session], config=config) as (url, server, _lines):
        async with connect(url + "/ws/chat") as ws:
            await ws.recv()
            await ws.send(j(type="join", room="lobby", user="zed"))  # user ignored on join
            assert json.loads(await asyncio.wait_for(ws.recv(), scaled(10)))["type"] == "joined"
        assert server.mismatches == []
    async with served([session]) as (url, server, _lines):  # without the config: a mismatch
        async with connect(url + "/ws/chat") as ws:
            await ws.recv()
            await ws.send(j(type="join", room="lobby", user="zed"))
            await asyncio.wait_for(ws.wait_closed(), scaled(10))
        assert ws.close_code == 1008 and len(server.mismatches) == 1
