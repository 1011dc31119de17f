"""Shared threads on both demo servers, every route: invites, joins, broadcasts, unknown codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.timeouts import scaled
from wsshadow.replay.demo import create_consolidated_app, create_legacy_app, serve_app
from wsshadow.replay.demo.chat import AGENT_EVENTS

ROUTES = ("/ws", "/websocket", "/ws/factory", "/ws/isolated")
GREETING = {"/ws": 2, "/websocket": 2, "/ws/factory": 0, "/ws/isolated": 1}
SERVERS = {"legacy": create_legacy_app, "consolidated": create_consolidated_app}


@pytest.fixture(params=sorted(SERVERS))
async def server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with serve_app(SERVERS[request.param]()) as url:
        yield url


@asynccontextmanager
async def user(base: str, route: str, name: str) -> AsyncIterator[ClientConnection]:
    """A connected user on ``route``, past the route's greeting."""
    headers = [("Authorization", f"Bearer user-{name}")]
    async with connect(base + route, additional_headers=headers, ping_interval=None) as ws:
        for _ in range(GREETING[route]):
            await recv(ws)
        yield ws


async def recv(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))


async def send(ws: ClientConnection, kind: str, **payload: Any) -> None:
    await ws.send(json.dumps({"type": kind, "payload": payload}))


async def until(ws: ClientConnection, kind: str) -> tuple[list[Any], Any]:
    """Messages up to the first of type ``kind`` (the ones before it, and it)."""
    before = []
    while (message := await recv(ws))["type"] != kind:
        before.append(message)
    return before, message


def fields(message: dict[str, Any], route: str) -> dict[str, Any]:
    """The shared-thread fields of ``message``, checking the route's envelope on the way."""
    if route in ("/ws", "/websocket"):  # flat, with an epoch timestamp
        assert isinstance(message.pop("timestamp"), float)
        return {k: v for k, v in message.items() if k != "type"}
    datetime.fromisoformat(message["timestamp"])  # ISO
    if route == "/ws/factory":
        assert set(message) == {"type", "timestamp", "payload"}
        return dict(message["payload"])
    # isolated: a data envelope; user_context marks the agent's events only
    assert set(message) == {"type", "timestamp", "data"}
    return dict(message["data"])


PAIRS = [(r, ROUTES[(i + 1) % 4]) for i, r in enumerate(ROUTES)] + [("/ws/isolated", "/ws")]


@pytest.mark.parametrize(("inviting", "joining"), PAIRS)
async def test_invite_join_and_broadcast_across_routes(
    server: str, inviting: str, joining: str
) -> None:
    async with (
        user(server, inviting, "oscar-okonkwo") as oscar,
        user(server, joining, "peggy-pemberton") as peggy,
    ):
        await send(oscar, "create_invite", thread_id="t-shared")
        created = fields(await recv(oscar), inviting)
        code = created.pop("code")
        assert created == {"thread_id": "t-shared"}
        assert len(code) == 10 and code.isalnum() and code.upper() == code

        await send(peggy, "join_thread", code=code)
        joined = await recv(peggy)
        assert joined["type"] == "thread_joined"
        assert fields(joined, joining) == {
            "thread_id": "t-shared",
            "members": ["oscar-okonkwo", "peggy-pemberton"],
        }

        # Oscar speaks: Peggy hears it first, Oscar's run goes as usual, no echo to him.
        await send(oscar, "user_message", text="Hello room", thread_id="t-shared")
        heard = await recv(peggy)
        assert heard["type"] == "thread_message"
        assert fields(heard, joining) == {
            "thread_id": "t-shared",
            "from": "oscar-okonkwo",
            "text": "Hello room",
        }
        events, done = await until(oscar, "agent_completed")
        assert all(m["type"] in AGENT_EVENTS for m in events)
        assert done["type"] == "agent_completed"

        # Peggy speaks: Oscar hears it; her run goes to her alone.
        await send(peggy, "user_message", text="Hi Oscar", thread_id="t-shared")
        heard = await recv(oscar)
        assert heard["type"] == "thread_message"
        assert fields(heard, inviting) == {
            "thread_id": "t-shared",
            "from": "peggy-pemberton",
            "text": "Hi Oscar",
        }
        events, _ = await until(peggy, "agent_completed")
        assert "thread_message" not in {m["type"] for m in events}


ERRORS = {
    "/ws": ("error_message", lambda m: m["error_code"]),
    "/websocket": ("error_message", lambda m: m["error_code"]),
    "/ws/factory": ("error", lambda m: m["code"]),
    "/ws/isolated": ("error", lambda m: m["data"]["code"]),
}


@pytest.mark.parametrize("route", ROUTES)
async def test_an_unknown_invite_code_gets_the_routes_error(server: str, route: str) -> None:
    async with user(server, route, "mallory-mcallister") as ws:
        await send(ws, "join_thread", code="NOSUCHCODE")
        error = await recv(ws)
        kind, code_of = ERRORS[route]
        assert error["type"] == kind
        assert code_of(error) == "INVITE_NOT_FOUND"
        # ... and the connection carries on.
        await send(ws, "ping")
        assert (await recv(ws))["type"] == "pong"


async def test_membership_is_per_connection_and_ends_with_it(server: str) -> None:
    """Two tabs of one user are two members (replay runs many users as one); a closed
    connection leaves; a connection that only names the thread is no member."""
    async with user(server, "/ws/factory", "oscar-okonkwo") as tab1:
        await send(tab1, "create_invite", thread_id="t-tabs")
        code = (await recv(tab1))["payload"]["code"]
        async with user(server, "/ws/factory", "oscar-okonkwo") as tab2:
            await send(tab2, "join_thread", code=code)
            members = (await recv(tab2))["payload"]["members"]
            assert members == ["oscar-okonkwo", "oscar-okonkwo"]
            await send(tab1, "user_message", text="to my other tab", thread_id="t-tabs")
            assert (await recv(tab2))["payload"]["from"] == "oscar-okonkwo"
            await until(tab1, "agent_completed")
        async with (
            user(server, "/ws/factory", "peggy-pemberton") as outsider,
            user(server, "/ws/factory", "trent-tanaka") as third,
        ):
            await send(third, "join_thread", code=code)
            assert (await recv(third))["payload"]["members"] == ["oscar-okonkwo", "trent-tanaka"]
            # The outsider uses the thread id without joining: nobody hears it.
            await send(outsider, "user_message", text="psst", thread_id="t-tabs")
            await until(outsider, "agent_completed")
            await send(third, "user_message", text="after psst", thread_id="t-tabs")
            heard = await recv(tab1)
            assert (heard["type"], heard["payload"]["text"]) == ("thread_message", "after psst")


async def test_a_create_invite_without_a_thread_is_refused(server: str) -> None:
    async with user(server, "/ws/isolated", "judy-jablonski") as ws:
        await send(ws, "create_invite")
        error = await recv(ws)
        assert (error["type"], error["data"]["code"]) == ("error", "INVALID_REQUEST")
