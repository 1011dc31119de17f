"""The demo chat backend's dialects: how each legacy route speaks.

Three dialects (``main``, ``factory``, ``isolated``) differ in welcome,
envelope and error shapes (``docs/demo.md``). A :class:`Dialect` turns
protocol facts into messages; its :class:`~replay.demo.protocol.Quirks`
switch on the consolidated server's planted regressions.

An I/O edge like :mod:`~replay.demo.protocol`: it stamps messages with the clock.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any

from aiohttp import web

from wsshadow.replay.demo.protocol import (
    AGENT_NAME,
    LEGACY_QUIRKS,
    Auth,
    Connection,
    Quirks,
    Run,
    iso_now,
)

__all__ = ["Dialect", "FactoryDialect", "IsolatedDialect", "MainDialect"]


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

    @abstractmethod
    def shared(self, conn: Connection, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A shared-thread message (``invite_created``, ``thread_joined``,
        ``thread_message``: :mod:`~replay.demo.rooms`) in this route's envelope."""

    @abstractmethod
    def refused(self, code: str, text: str) -> dict[str, Any]:
        """The error answering a request the route knows but cannot grant (an unknown
        invite code: ``code`` ``INVITE_NOT_FOUND``)."""

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

    def shared(self, conn: Connection, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, **fields, "timestamp": time.time()}

    def refused(self, code: str, text: str) -> dict[str, Any]:
        return {
            "type": "error_message",
            "error_code": code,
            "error_message": text,
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

    def shared(self, conn: Connection, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "timestamp": iso_now(), "payload": fields}

    def refused(self, code: str, text: str) -> dict[str, Any]:
        return {"type": "error", "error": text, "code": code}

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

    def shared(self, conn: Connection, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        # A data envelope like the route's errors: user_context (and critical) mark the
        # agent's events for the connection's user, not what other users share.
        return {"type": kind, "data": fields, "timestamp": iso_now()}

    def refused(self, code: str, text: str) -> dict[str, Any]:
        return self._error(code, text)

    def check(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        payload = message.get("payload")
        claimed = payload.get("user_id") if isinstance(payload, dict) else None
        claimed = claimed if claimed is not None else message.get("user_id")
        if claimed is not None and claimed != conn.user_id:
            return self._error("USER_MISMATCH", "Message user_id does not match the connection")
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
