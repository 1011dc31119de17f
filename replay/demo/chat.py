"""The demo chat backend's behaviour, shared by the legacy and consolidated servers.

Both servers in the embedded demo speak the protocol of
``/work/shared/DEMO-PROTOCOL.md`` (summarised in ``docs/demo.md``): three
dialects (``main``, ``factory``, ``isolated``) that differ in welcome,
envelope and error shapes. A :class:`Dialect` turns protocol facts into
messages; :class:`Quirks` switch on the consolidated server's planted
regressions, so each server is a routing table over the same handler.

This module is an I/O edge: it reads the clock and random numbers to make
realistic noise (timestamps, connection ids, run ids, the heartbeat race).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

__all__ = [
    "AGENT_EVENTS",
    "AGENT_NAME",
    "LEGACY_QUIRKS",
    "TOKEN_PREFIX",
    "Auth",
    "Connection",
    "Dialect",
    "FactoryDialect",
    "IsolatedDialect",
    "MainDialect",
    "Mode",
    "Quirks",
    "Run",
    "ServerState",
    "authenticate",
    "derive_content",
    "iso_now",
    "offered_subprotocols",
    "serve",
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
    """Per-server noise sources: a connection counter, randomness, open sockets."""

    rng: random.Random
    step_delay: tuple[float, float] = (0.002, 0.006)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    sockets: set[web.WebSocketResponse] = field(default_factory=set)

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


# ---- facts shared by every dialect ------------------------------------------


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


# ---- dialects ----------------------------------------------------------------


class Dialect(ABC):
    """How one legacy route speaks: its shapes, and the quirks it has in this server."""

    name = "main"
    agent_triggers: tuple[str, ...] = ("user_message",)

    def __init__(self, quirks: Quirks = LEGACY_QUIRKS) -> None:
        self.quirks = quirks

    # handshake
    def protocols(self, auth: Auth) -> tuple[str, ...]:
        """The subprotocols this route may select (the first the client offered wins)."""
        return ("jwt-auth",)

    @abstractmethod
    async def reject(self, ws: web.WebSocketResponse) -> None:
        """End an accepted connection that carries no valid token."""

    async def greet(self, conn: Connection, auth: Auth) -> None:  # noqa: B027 - optional hook
        """What the route sends on connect (nothing by default, as on ``/ws/factory``)."""

    # messages
    @abstractmethod
    def event(
        self, conn: Connection, run: Run, kind: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """One golden-path event of ``run`` in this route's envelope."""

    @abstractmethod
    def reply(self, kind: str) -> dict[str, Any]:
        """The answer to ``ping`` (``kind`` ``pong``) or ``heartbeat`` (``heartbeat_ack``)."""

    @abstractmethod
    def unknown(self, received_type: str) -> dict[str, Any]:
        """The answer to a message type the route does not know."""

    @abstractmethod
    def bad_json(self) -> dict[str, Any]:
        """The answer to text that is not a JSON object."""

    def check(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        """An error answering ``message`` before it is handled, or None."""
        return None

    def run_request(self, message: dict[str, Any]) -> tuple[str, str | None, str | None]:
        """(text, thread_id, request_id) of a message that starts a run."""
        payload = message.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        return (
            str(payload.get("text", "")),
            _str_or_none(payload.get("thread_id")),
            _str_or_none(payload.get("request_id")),
        )


class MainDialect(Dialect):
    """``/ws`` and the ``/websocket`` shim: welcome racing a heartbeat, flat events."""

    name = "main"

    def protocols(self, auth: Auth) -> tuple[str, ...]:
        if self.quirks.echo_token_subprotocol and auth.subprotocol_entry:
            return (auth.subprotocol_entry,)
        return ("jwt-auth",)

    async def reject(self, ws: web.WebSocketResponse) -> None:
        await ws.send_str(
            json.dumps(
                {
                    "type": "error_message",
                    "error_code": "NO_TOKEN",
                    "error_message": "Authentication required: no valid token",
                    "timestamp": time.time(),
                }
            )
        )
        await ws.close(
            code=self.quirks.unauthenticated_close or 1011, message=b"Authentication failed"
        )

    async def greet(self, conn: Connection, auth: Auth) -> None:
        heartbeat = {"type": "ping", "data": {"timestamp": time.time()}}
        n = next(conn.state.counter)
        welcome = {
            "type": "system_message",
            "data": {
                "event": "connection_established",
                "connection_id": f"ws_{int(time.time() * 1000)}_{n}",
                "user_id": conn.user_id,
                "server_time": iso_now(),
            },
        }
        # The heartbeat task and the welcome race in the real system: either may win.
        first, second = (
            (heartbeat, welcome) if conn.state.rng.random() < 0.5 else (welcome, heartbeat)
        )
        await conn.send(first)
        await conn.send(second)

    def event(
        self, conn: Connection, run: Run, kind: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "agent_name": AGENT_NAME,
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "timestamp": time.time(),
            **content,
        }

    def reply(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "timestamp": time.time()}

    def unknown(self, received_type: str) -> dict[str, Any]:
        return {"type": "ack", "received_type": received_type, "status": "acknowledged"}

    def bad_json(self) -> dict[str, Any]:
        return {
            "type": "error_message",
            "error_code": self.quirks.parse_error_code,
            "error_message": "Message is not valid JSON",
            "timestamp": time.time(),
        }


class FactoryDialect(Dialect):
    """``/ws/factory``: no subprotocol, no welcome, ``payload`` envelopes, ``agent_request``."""

    name = "factory"
    agent_triggers = ("user_message", "agent_request")

    def protocols(self, auth: Auth) -> tuple[str, ...]:
        return ()

    async def reject(self, ws: web.WebSocketResponse) -> None:
        await ws.send_str(
            json.dumps(
                {
                    "type": "authentication_error",
                    "error": "Missing or invalid token",
                    "timestamp": iso_now(),
                }
            )
        )
        await ws.close(code=4001, message=b"Authentication failed")

    def event(
        self, conn: Connection, run: Run, kind: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "run_id": run.run_id,
            "agent_name": AGENT_NAME,
            "timestamp": iso_now(),
            "payload": {"thread_id": run.thread_id, **content},
        }

    def reply(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "timestamp": iso_now()}

    def unknown(self, received_type: str) -> dict[str, Any]:
        return {"type": "error", "error": f"Unknown message type: {received_type}"}

    def bad_json(self) -> dict[str, Any]:
        return {"type": "error", "error": "Invalid JSON"}

    def run_request(self, message: dict[str, Any]) -> tuple[str, str | None, str | None]:
        if message.get("type") == "agent_request":
            data = message.get("data")
            data = data if isinstance(data, dict) else {}
            return str(data.get("message", "")), _str_or_none(data.get("thread_id")), None
        return super().run_request(message)


class IsolatedDialect(Dialect):
    """``/ws/isolated``: connection-scoped welcome, ``data`` envelopes with ``user_context``."""

    name = "isolated"

    async def reject(self, ws: web.WebSocketResponse) -> None:
        await ws.close(code=1008, message=b"Authentication required")

    async def greet(self, conn: Connection, auth: Auth) -> None:
        await conn.send(
            {
                "type": "connection_established",
                "isolation_mode": "connection_scoped",
                "connection_id": f"conn_{uuid.uuid4().hex}",
                "user_id": conn.user_id,
                "timestamp": iso_now(),
            }
        )

    def event(
        self, conn: Connection, run: Run, kind: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        user = conn.user_id
        if self.quirks.truncate_user_context and len(user) > 8:
            user = user[:8] + "..."
        return {
            "type": kind,
            "data": {
                **content,
                "run_id": run.run_id,
                "thread_id": run.thread_id,
                "request_id": run.request_id,
            },
            "timestamp": iso_now(),
            "critical": True,
            "user_context": {"user_id": user},
        }

    def reply(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "timestamp": iso_now()}

    def _error(self, code: str, message: str) -> dict[str, Any]:
        return {"type": "error", "data": {"code": code, "message": message}, "timestamp": iso_now()}

    def unknown(self, received_type: str) -> dict[str, Any]:
        return self._error("UNKNOWN_MESSAGE_TYPE", f"Unknown message type: {received_type}")

    def bad_json(self) -> dict[str, Any]:
        return self._error("INVALID_JSON", "Message is not valid JSON")

    def check(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        payload = message.get("payload")
        claimed = payload.get("user_id") if isinstance(payload, dict) else None
        claimed = claimed if claimed is not None else message.get("user_id")
        if claimed is not None and claimed != conn.user_id:
            return self._error("USER_MISMATCH", "Message user_id does not match the connection")
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---- the handler --------------------------------------------------------------


async def serve(request: web.Request, dialect: Dialect) -> web.WebSocketResponse:
    """Serve one WebSocket connection in ``dialect``: handshake, auth, then messages."""
    state = ServerState.of(request)
    auth = authenticate(request)
    protocols = dialect.protocols(auth)
    ws = web.WebSocketResponse(protocols=protocols, autoping=True)
    if not protocols and "Sec-WebSocket-Protocol" in request.headers:
        # A route that never selects a subprotocol: drop the offer before the
        # handshake so aiohttp does not log a warning for every browser client.
        request = request.clone(headers=_without(request, "Sec-WebSocket-Protocol"))
    await ws.prepare(request)
    state.sockets.add(ws)
    try:
        if auth.user_id is None:
            await dialect.reject(ws)
            return ws
        conn = Connection(ws=ws, user_id=auth.user_id, state=state)
        await dialect.greet(conn, auth)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await _handle(conn, dialect, msg.data)
            elif msg.type is WSMsgType.BINARY:
                await conn.send(dialect.bad_json())
            elif msg.type is WSMsgType.ERROR:
                break
        return ws
    finally:
        state.sockets.discard(ws)


def _without(request: web.Request, name: str) -> CIMultiDict[str]:
    headers = request.headers.copy()
    headers.popall(name, None)
    return headers


async def _handle(conn: Connection, dialect: Dialect, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        await conn.send(dialect.bad_json())
        return
    error = dialect.check(conn, message)
    if error is not None:
        await conn.send(error)
        return
    kind = message.get("type")
    if kind in dialect.agent_triggers:
        await _agent_run(conn, dialect, message)
    elif kind == "ping":
        await conn.send(dialect.reply("pong"))
    elif kind == "heartbeat":
        await conn.send(dialect.reply("heartbeat_ack"))
    else:
        await conn.send(dialect.unknown(str(kind)))


async def _agent_run(conn: Connection, dialect: Dialect, message: dict[str, Any]) -> None:
    text, thread_id, request_id = dialect.run_request(message)
    run = Run(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id or f"thread_{uuid.uuid4().hex[:12]}",
        text=text,
        request_id=request_id or f"req_{uuid.uuid4().hex[:12]}",
    )
    content = derive_content(text)
    low, high = conn.state.step_delay
    for i, kind in enumerate(AGENT_EVENTS):
        if kind == "agent_thinking" and dialect.quirks.drop_thinking:
            continue
        if i and high > 0:
            await asyncio.sleep(conn.state.rng.uniform(low, high))
        await conn.send(dialect.event(conn, run, kind, content[kind]))
