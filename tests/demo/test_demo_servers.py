"""Protocol facts of the demo servers, per route, over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.timeouts import scaled
from wsshadow.replay.demo import create_legacy_app, select_mode, serve_app
from wsshadow.replay.demo.chat import AGENT_EVENTS, Mode, derive_content

BROWSER = "browser"
HEADER = "header"
QUERY = "query"


def _connect(base: str, route: str, user: str | None = "alice-anderson", how: str = HEADER) -> Any:
    token = f"user-{user}"
    kwargs: dict[str, Any] = {"open_timeout": 5, "ping_interval": None}
    if user is not None and how == BROWSER:
        kwargs["subprotocols"] = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]
    elif user is not None and how == HEADER:
        kwargs["additional_headers"] = [("Authorization", f"Bearer {token}")]
    elif user is not None and how == QUERY:
        route += ("&" if "?" in route else "?") + f"token={token}"
    return connect(base + route, **kwargs)


async def recv(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))


async def recv_n(ws: ClientConnection, n: int) -> list[Any]:
    return [await recv(ws) for _ in range(n)]


async def send(ws: ClientConnection, kind: str, **payload: Any) -> None:
    await ws.send(json.dumps({"type": kind, "payload": payload}))


async def closed(ws: ClientConnection) -> tuple[list[Any], int | None]:
    """Messages until the server closes, and its close code."""
    got = []
    try:
        while True:
            got.append(await recv(ws))
    except ConnectionClosed:
        return got, ws.close_code


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---- /ws and /websocket (main) ---------------------------------------------------


@pytest.mark.parametrize("route", ["/ws", "/websocket"])
async def test_main_welcome_and_heartbeat(legacy: str, route: str) -> None:
    async with _connect(legacy, route, "alice-anderson", BROWSER) as ws:
        assert ws.subprotocol == "jwt-auth"
        first_two = await recv_n(ws, 2)
    by_type = {m["type"]: m for m in first_two}
    assert set(by_type) == {"ping", "system_message"}
    assert isinstance(by_type["ping"]["data"]["timestamp"], float)
    data = by_type["system_message"]["data"]
    assert data["event"] == "connection_established"
    assert re.fullmatch(r"ws_\d{13}_\d+", data["connection_id"])
    assert data["user_id"] == "alice-anderson"
    assert _iso(data["server_time"]).tzinfo is not None


@pytest.mark.parametrize("how", [HEADER, BROWSER, QUERY])
async def test_main_accepts_every_token_carrier(legacy: str, how: str) -> None:
    async with _connect(legacy, "/ws", "bob-brennan", how) as ws:
        welcome = next(m for m in await recv_n(ws, 2) if m["type"] == "system_message")
        assert welcome["data"]["user_id"] == "bob-brennan"
        assert ws.subprotocol == ("jwt-auth" if how == BROWSER else None)


async def test_heartbeat_races_the_welcome(legacy: str, consolidated: str) -> None:
    async def first(base: str) -> str:
        async with _connect(base, "/ws") as ws:
            return str((await recv(ws))["type"])

    for base in (legacy, consolidated):
        firsts = await asyncio.gather(*(first(base) for _ in range(30)))
        assert set(firsts) == {"ping", "system_message"}, firsts


async def test_main_golden_path(legacy: str) -> None:
    async with _connect(legacy, "/ws") as ws:
        await recv_n(ws, 2)
        runs = []
        for _ in range(2):
            await send(ws, "user_message", text="Convert 250 euros to yen", thread_id="t-1")
            runs.append(await recv_n(ws, 5))
    for events in runs:
        assert [e["type"] for e in events] == list(AGENT_EVENTS)
        assert {e["run_id"] for e in events} == {events[0]["run_id"]}
        assert all(e["thread_id"] == "t-1" and e["agent_name"] == "ChatAgent" for e in events)
        stamps = [e["timestamp"] for e in events]
        assert all(isinstance(t, float) for t in stamps) and stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] < 0.5
        content = derive_content("Convert 250 euros to yen")
        assert events[2]["tool_input"] == content["tool_executing"]["tool_input"]
    assert runs[0][0]["run_id"] != runs[1][0]["run_id"]
    strip = {"run_id", "timestamp"}
    assert [{k: v for k, v in e.items() if k not in strip} for e in runs[0]] == [
        {k: v for k, v in e.items() if k not in strip} for e in runs[1]
    ]


async def test_main_other_messages(legacy: str) -> None:
    async with _connect(legacy, "/ws") as ws:
        await recv_n(ws, 2)
        await send(ws, "ping")
        assert (await recv(ws))["type"] == "pong"
        await send(ws, "heartbeat")
        assert (await recv(ws))["type"] == "heartbeat_ack"
        await send(ws, "typing_indicator")
        assert await recv(ws) == {
            "type": "ack",
            "received_type": "typing_indicator",
            "status": "acknowledged",
        }
        await ws.send("{not json")
        error = await recv(ws)
        assert error["type"] == "error_message" and error["error_code"] == "FORMAT_ERROR"


@pytest.mark.parametrize("route", ["/ws", "/websocket"])
async def test_main_without_token(legacy: str, route: str) -> None:
    async with _connect(legacy, route, None) as ws:
        got, code = await closed(ws)
    assert [m["error_code"] for m in got] == ["NO_TOKEN"] and got[0]["type"] == "error_message"
    assert code == 1011


async def test_invalid_token_is_no_token(legacy: str) -> None:
    async with connect(legacy + "/ws?token=admin", open_timeout=scaled(5)) as ws:
        got, code = await closed(ws)
    assert got[0]["error_code"] == "NO_TOKEN" and code == 1011


# ---- /ws/factory -------------------------------------------------------------------


async def test_factory_shapes(legacy: str) -> None:
    async with _connect(legacy, "/ws/factory", "grace-goldberg", BROWSER) as ws:
        assert ws.subprotocol is None  # never echoes one, even when offered
        await send(ws, "ping")
        assert (await recv(ws))["type"] == "pong"  # no welcome came first
        await send(ws, "user_message", text="Hello there", thread_id="t-9")
        events = await recv_n(ws, 5)
        await ws.send(
            json.dumps({"type": "agent_request", "data": {"message": "Hi", "thread_id": "t-9"}})
        )
        requested = await recv_n(ws, 5)
        await send(ws, "typing_indicator")
        unknown = await recv(ws)
    for run in (events, requested):
        assert [e["type"] for e in run] == list(AGENT_EVENTS)
        for e in run:
            assert set(e) == {"type", "run_id", "agent_name", "timestamp", "payload"}
            assert e["payload"]["thread_id"] == "t-9"
            _iso(e["timestamp"])
    assert events[0]["run_id"] != requested[0]["run_id"]
    assert unknown == {"type": "error", "error": "Unknown message type: typing_indicator"}


async def test_factory_without_token(legacy: str) -> None:
    async with _connect(legacy, "/ws/factory", None) as ws:
        got, code = await closed(ws)
    assert [m["type"] for m in got] == ["authentication_error"] and code == 4001


# ---- /ws/isolated ------------------------------------------------------------------


async def test_isolated_shapes(legacy: str) -> None:
    async with _connect(legacy, "/ws/isolated", "judy-jablonski") as ws:
        welcome = await recv(ws)
        await send(ws, "user_message", text="Hi", thread_id="t-2", user_id="judy-jablonski")
        events = await recv_n(ws, 5)
        await send(ws, "user_message", text="Hi", thread_id="t-2", user_id="someone-else")
        mismatch = await recv(ws)
    assert welcome["type"] == "connection_established"
    assert welcome["isolation_mode"] == "connection_scoped"
    assert welcome["user_id"] == "judy-jablonski" and welcome["connection_id"]
    _iso(welcome["timestamp"])
    assert [e["type"] for e in events] == list(AGENT_EVENTS)
    for e in events:
        assert e["critical"] is True and e["user_context"] == {"user_id": "judy-jablonski"}
        assert {"run_id", "thread_id", "request_id"} <= set(e["data"])
        assert e["data"]["thread_id"] == "t-2"
    assert mismatch["type"] == "error" and mismatch["data"]["code"] == "USER_MISMATCH"


async def test_isolated_without_token(legacy: str) -> None:
    async with _connect(legacy, "/ws/isolated", None) as ws:
        got, code = await closed(ws)
    assert got == [] and code == 1008


# ---- consolidated: mode selection ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mode", "expected"),
    [
        ("/ws", None, Mode.MAIN),
        ("/ws", "factory", Mode.FACTORY),
        ("/ws/factory", None, Mode.FACTORY),
        ("/ws/isolated", None, Mode.ISOLATED),
        ("/websocket", None, Mode.LEGACY),
        ("/ws/factory", "isolated", Mode.ISOLATED),
        ("/ws", "legacy", Mode.LEGACY),
    ],
)
def test_select_mode(path: str, mode: str | None, expected: Mode) -> None:
    assert select_mode(path, mode) is expected


async def test_unknown_mode_is_refused(consolidated: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with _connect(consolidated, "/ws?mode=bogus"):
            pass
    assert info.value.response.status_code == 400


async def test_mode_query_selects_dialect(consolidated: str) -> None:
    async with _connect(consolidated, "/ws?mode=isolated") as ws:
        assert (await recv(ws))["type"] == "connection_established"
    async with _connect(consolidated, "/ws?mode=factory") as ws:
        await send(ws, "ping")
        assert (await recv(ws))["type"] == "pong"


async def test_seeded_race_is_reproducible() -> None:
    async def order(seed: int) -> list[str]:
        async with serve_app(create_legacy_app(seed=seed)) as url:
            out = []
            for _ in range(8):
                async with _connect(url, "/ws") as ws:
                    out.append(str((await recv(ws))["type"]))
            return out

    assert await order(7) == await order(7)
