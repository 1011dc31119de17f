"""run_traffic against both real demo servers, and the demo config file."""

from __future__ import annotations

import socket
import tomllib
from typing import Any

import pytest

from wsshadow.replay.capture.model import Handshake
from wsshadow.replay.capture.redact import PLACEHOLDER_RE, Redactor
from wsshadow.replay.demo import (
    REPLAY_BROWSER_TOKEN,
    REPLAY_TOKEN,
    ROOM_USERS,
    SessionOutcome,
    TrafficSummary,
    demo_config_text,
    run_traffic,
)
from wsshadow.replay.demo.chat import AGENT_EVENTS
from wsshadow.replay.errors import Unreachable

ROUTES = {"/ws": 6, "/websocket": 3, "/ws/factory": 4, "/ws/isolated": 5}
ROOM = {name for name, _, _ in ROOM_USERS}


def room_of(summary: TrafficSummary) -> tuple[SessionOutcome, SessionOutcome]:
    """The shared room's (inviter, joiner) sessions."""
    inviter, joiner = (
        next(s for s in summary.sessions if s.user == name) for name, _, _ in ROOM_USERS
    )
    return inviter, joiner


def field(message: dict[str, Any], name: str) -> Any:
    """A field of a shared-thread message, flat (main) or in a payload/data envelope."""
    for node in (message, message.get("payload") or {}, message.get("data") or {}):
        if name in node:
            return node[name]
    raise KeyError(name)


def check_room(summary: TrafficSummary) -> None:
    """Invite, join with the issued code, one message each, each hears the other's."""
    inviter, joiner = room_of(summary)
    assert inviter.route != joiner.route and inviter.auth != joiner.auth
    assert (inviter.runs, joiner.runs) == (1, 1)
    (created,) = [m for m in inviter.received if m["type"] == "invite_created"]
    (joined,) = [m for m in joiner.received if m["type"] == "thread_joined"]
    thread = field(created, "thread_id")
    assert field(joined, "thread_id") == thread
    assert field(joined, "members") == [inviter.user, joiner.user]
    assert len(field(created, "code")) == 10
    heard = {
        s.user: [m for m in s.received if m["type"] == "thread_message"] for s in (inviter, joiner)
    }
    assert [field(m, "from") for m in heard[joiner.user]] == [inviter.user]
    assert [field(m, "from") for m in heard[inviter.user]] == [joiner.user]
    assert all(field(m, "thread_id") == thread for ms in heard.values() for m in ms)
    # Each hears the other's message, and only after its own run (the order is fixed).
    assert inviter.types[-1] == "thread_message"
    assert joiner.types.index("thread_message") < joiner.types.index("agent_started")
    others = [s for s in summary.sessions if s.user not in ROOM]
    assert not any({"thread_message", "thread_joined"} & set(s.types) for s in others)


def check_common(summary: TrafficSummary) -> None:
    assert len(summary.sessions) == 18
    assert summary.users == 14
    assert summary.by_route() == ROUTES
    users = [s for s in summary.sessions if s.user is not None]
    assert all(len(s.user or "") > 8 for s in users)
    assert {s.auth for s in users} == {"subprotocol", "header"}
    assert {s.route for s in users if s.auth == "subprotocol"} == set(ROUTES)
    assert all(s.close_code == 1000 for s in users)
    assert all(2 <= s.runs <= 4 for s in users if s.user not in ROOM)
    assert summary.runs == sum(s.runs for s in users)
    assert summary.messages_sent >= summary.runs + 12  # plus pings, unknown, bad JSON...
    for s in users:
        assert s.types.count("agent_completed") == s.runs
        assert s.types.count("pong") >= (0 if s.user in ROOM else 1)
    assert sum(s.types.count("error_message") for s in users) == 1  # the one bad-JSON message
    isolated = [s for s in users if s.route == "/ws/isolated"]
    assert sum(s.types.count("error") for s in isolated) == 2  # unknown type + USER_MISMATCH
    check_room(summary)


async def test_traffic_against_legacy(legacy: str) -> None:
    summary = await run_traffic(legacy, seed=3)
    check_common(summary)
    assert summary.unauthenticated == {
        "/ws": 1011,
        "/websocket": 1011,
        "/ws/factory": 4001,
        "/ws/isolated": 1008,
    }
    for s in summary.sessions:
        if s.user is None:
            continue
        assert s.types.count("agent_thinking") == s.runs
        expected = "jwt-auth" if s.auth == "subprotocol" and s.route != "/ws/factory" else None
        assert s.subprotocol == expected
        for m in s.received:
            if "user_context" in m:
                assert m["user_context"]["user_id"] == s.user
    bad = [m for s in summary.sessions for m in s.received if m.get("type") == "error_message"]
    assert {m["error_code"] for m in bad} == {"FORMAT_ERROR", "NO_TOKEN"}


async def test_traffic_against_consolidated(legacy: str, consolidated: str) -> None:
    baseline = await run_traffic(legacy, seed=3)
    summary = await run_traffic(consolidated, seed=3)
    check_common(summary)
    assert summary.runs == baseline.runs and summary.messages_sent == baseline.messages_sent
    assert summary.unauthenticated == {
        "/ws": 1008,  # regression 2
        "/websocket": 1011,
        "/ws/factory": 4001,
        "/ws/isolated": 1008,
    }
    for s in summary.sessions:
        if s.user is None:
            continue
        thinking = s.types.count("agent_thinking")
        assert thinking == (0 if s.route == "/ws/factory" else s.runs)  # regression 1
        if s.auth == "subprotocol" and s.route == "/ws":
            assert s.subprotocol == f"jwt.user-{s.user}"  # regression 4
        elif s.auth == "subprotocol" and s.route != "/ws/factory":
            assert s.subprotocol == "jwt-auth"
        for m in s.received:
            if "user_context" in m:
                assert m["user_context"]["user_id"] == (s.user or "")[:8] + "..."  # regression 5
    bad = [m for s in summary.sessions for m in s.received if m.get("type") == "error_message"]
    assert {m["error_code"] for m in bad} == {"JSON_PARSE_ERROR", "NO_TOKEN"}  # regression 3
    # Missing agent_thinking is the only change in message counts.
    factory_runs = sum(s.runs for s in summary.sessions if s.route == "/ws/factory")
    assert summary.messages_received == baseline.messages_received - factory_runs


async def test_traffic_is_scripted_by_seed(legacy: str) -> None:
    one, two = await run_traffic(legacy, seed=11), await run_traffic(legacy, seed=11)
    assert [(s.user, s.runs, s.sent) for s in one.sessions] == [
        (s.user, s.runs, s.sent) for s in two.sessions
    ]
    assert [s.types.count(AGENT_EVENTS[0]) for s in one.sessions] == [
        s.types.count(AGENT_EVENTS[0]) for s in two.sessions
    ]
    # The room's thread and texts too (its invite codes are the server's, fresh each time).
    shared = ("invite_created", "thread_joined", "thread_message")
    rooms = [
        [
            (m["type"], field(m, "thread_id"), m["type"] == "thread_message" and field(m, "text"))
            for s in room_of(t)
            for m in s.received
            if m["type"] in shared
        ]
        for t in (one, two)
    ]
    assert len(rooms[0]) == 4 and rooms[0] == rooms[1]


async def test_traffic_to_nowhere_is_unreachable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unreachable, match="cannot connect"):
        await run_traffic(f"ws://127.0.0.1:{port}")


def test_demo_config_follows_the_config_contract() -> None:
    config = tomllib.loads(demo_config_text())
    assert set(config) <= {"targets", "replay", "credentials", "carry_over", "diff", "routes"}
    maps = dict(rule.split("=", 1) for rule in config["replay"]["maps"])
    assert maps == {
        "/ws/factory": "/ws?mode=factory",
        "/ws/isolated": "/ws?mode=isolated",
        "/websocket": "/ws?mode=legacy",
        "/ws": "/ws?mode=main",
    }
    assert config["credentials"] == {
        "authorization": f"Bearer {REPLAY_TOKEN}",
        "jwt": REPLAY_BROWSER_TOKEN,
        "token": REPLAY_TOKEN,
    }
    for token in (REPLAY_TOKEN, REPLAY_BROWSER_TOKEN):
        assert len(token.removeprefix("user-")) > 8  # regression 5 stays visible on replay
    # The room's members present their tokens differently: two users on replay too.
    assert {auth for _, _, auth in ROOM_USERS} == {"subprotocol", "header"}
    assert REPLAY_TOKEN != REPLAY_BROWSER_TOKEN
    assert config["routes"]["/ws"]["event_keys"][0] == "data.event"
    assert config["diff"]["background"]["ping"] == ["unordered"]


def test_credentials_cover_every_placeholder_the_demo_traffic_leaves() -> None:
    """Recording redacts the demo's three token carriers into names the config fills."""
    redactor = Redactor()
    handshake = Handshake(
        route="/ws",
        query="token=user-alice-anderson",
        request_headers=(
            ("Authorization", "Bearer user-bob-brennan"),
            ("Sec-WebSocket-Protocol", "jwt-auth, jwt.user-carol-castillo"),
        ),
        subprotocols=("jwt-auth", "jwt.user-carol-castillo"),
        subprotocol="jwt.user-carol-castillo",  # what the consolidated main mode selects
        response_headers=(("Sec-WebSocket-Protocol", "jwt.user-carol-castillo"),),
    )
    redacted = repr(redactor.handshake(handshake))
    assert "user-" not in redacted  # no demo token survives
    names = {m.group(2) for m in PLACEHOLDER_RE.finditer(redacted)}
    assert names == {"authorization", "jwt", "token"}
    assert names == set(tomllib.loads(demo_config_text())["credentials"])


async def test_traffic_without_the_room_for_replays_that_take_sessions_alone(legacy: str) -> None:
    summary = await run_traffic(legacy, seed=3, shared_room=False)
    assert len(summary.sessions) == 16 and summary.users == 12
    assert not ROOM & {s.user for s in summary.sessions}
    assert not any("thread_message" in s.types for s in summary.sessions)
