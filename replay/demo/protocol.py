"""The demo chat backend's protocol facts, shared by every route and both servers.

Tokens and users, the golden path's events and their content, the
consolidated server's regression switches (:class:`Quirks`), a server's
state and one connection: everything a :mod:`~replay.demo.dialects` dialect
and the handler (:mod:`~replay.demo.chat`) build on.

This module is an I/O edge: it reads the clock and random numbers to make
realistic noise (timestamps, connection ids, run ids, the heartbeat race).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiohttp import web

from wsshadow.replay.demo.rooms import Rooms

__all__ = [
    "AGENT_EVENTS",
    "AGENT_NAME",
    "LEGACY_QUIRKS",
    "TOKEN_PREFIX",
    "Auth",
    "Connection",
    "Mode",
    "Quirks",
    "Run",
    "ServerState",
    "authenticate",
    "derive_content",
    "iso_now",
    "offered_subprotocols",
]

TOKEN_PREFIX = "user-"
"""Demo tokens are ``user-<name>``; the user id is ``<name>``."""

AGENT_EVENTS = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)
"""The golden path: the events one agent run yields, in order."""

AGENT_NAME = "ChatAgent"
_TOOLS = ("web_search", "knowledge_base", "calculator", "calendar_lookup")
_STATE_KEY: web.AppKey[ServerState] = web.AppKey("demo_state")


class Mode(StrEnum):
    """The consolidated route's modes, one per legacy route."""

    MAIN = "main"
    FACTORY = "factory"
    ISOLATED = "isolated"
    LEGACY = "legacy"


@dataclass(frozen=True)
class Quirks:
    """Deviations from the legacy behaviour: the consolidated server's regressions.

    The defaults are the legacy behaviour (:data:`LEGACY_QUIRKS`).
    """

    drop_thinking: bool = False
    """Regression 1 (factory): no ``agent_thinking`` event."""
    unauthenticated_close: int | None = None
    """Regression 2 (main): close code for a connection without a token."""
    parse_error_code: str = "FORMAT_ERROR"
    """Regression 3 (main): ``error_code`` answering text that is not JSON."""
    echo_token_subprotocol: bool = False
    """Regression 4 (main): select ``jwt.<token>`` instead of ``jwt-auth``."""
    truncate_user_context: bool = False
    """Regression 5 (isolated): ``user_context.user_id`` cut to 8 chars + ``...``."""


LEGACY_QUIRKS = Quirks()


@dataclass
class ServerState:
    """Per-server state: noise sources (a connection counter, randomness), open sockets,
    and the shared threads (:class:`~replay.demo.rooms.Rooms`)."""

    rng: random.Random
    step_delay: tuple[float, float] = (0.002, 0.006)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    rooms: Rooms = field(default_factory=Rooms)

    def install(self, app: web.Application) -> None:
        """Attach to ``app``; open sockets are closed (1001) when it shuts down."""
        app[_STATE_KEY] = self
        app.on_shutdown.append(self._close_all)

    async def _close_all(self, _app: web.Application) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")

    @staticmethod
    def of(request: web.Request) -> ServerState:
        """The state of the app serving ``request``."""
        return request.app[_STATE_KEY]


@dataclass(frozen=True)
class Auth:
    """Who a connection is, and how it said so."""

    user_id: str | None
    token: str | None
    subprotocol_entry: str | None
    """The ``jwt.<token>`` entry the token came from, if it came from one."""


def offered_subprotocols(request: web.Request) -> list[str]:
    """The subprotocols the client offered, in its order."""
    raw = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in raw.split(",") if p.strip()]


def authenticate(request: web.Request) -> Auth:
    """Find a token: ``Authorization: Bearer``, then a ``jwt.<token>`` subprotocol, then ``?token=``."""
    token: str | None = None
    entry: str | None = None
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token = header[7:].strip() or None
    if token is None:
        for proto in offered_subprotocols(request):
            if proto.startswith("jwt.") and len(proto) > 4:
                token, entry = proto[4:], proto
                break
    if token is None:
        token = request.query.get("token") or None
    user = token[len(TOKEN_PREFIX) :] if token and token.startswith(TOKEN_PREFIX) else None
    return Auth(user_id=user or None, token=token, subprotocol_entry=entry)


def derive_content(text: str) -> dict[str, dict[str, Any]]:
    """Each golden-path event's content, derived only from the user's text."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    tool = _TOOLS[int(digest[:2], 16) % len(_TOOLS)]
    matches = int(digest[2:4], 16) % 7 + 1
    return {
        "agent_started": {"message": f"{AGENT_NAME} started", "input_chars": len(text)},
        "agent_thinking": {"thought": f"Deciding how to answer: {text}", "step": 1},
        "tool_executing": {"tool_name": tool, "tool_input": {"query": text}},
        "tool_completed": {
            "tool_name": tool,
            "result": {"matches": matches, "digest": digest[:12]},
        },
        "agent_completed": {
            "result": {
                "response": f"{tool} found {matches} result(s) for: {text}",
                "tokens_used": 40 + len(text.split()) * 3 + matches,
            }
        },
    }


def iso_now() -> str:
    """The server's wall clock as ISO-8601 (UTC)."""
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Run:
    """One agent run: ids, the text it answers, and the request fields it echoes."""

    run_id: str
    thread_id: str
    text: str
    request_id: str


@dataclass
class Connection:
    """One accepted WebSocket connection and what the handler knows about it."""

    ws: web.WebSocketResponse
    user_id: str
    state: ServerState

    async def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` as one JSON text frame."""
        await self.ws.send_str(json.dumps(message))
