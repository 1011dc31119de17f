"""ASP.NET Core SignalR, JSON hub protocol.

Spec (https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md):
every message is a JSON record terminated by the record separator
``0x1E``; one WebSocket message may hold several records. The connection
starts with a handshake: the client sends ``{"protocol": "json",
"version": 1}``, the server answers ``{}`` (or ``{"error": ...}``).
Records carry ``type``: 1 Invocation (``target``, ``arguments``, optional
``invocationId`` when a result is expected), 2 StreamItem
(``invocationId``, ``item``), 3 Completion (``invocationId``, ``result``
or ``error``), 4 StreamInvocation, 5 CancelInvocation, 6 Ping, 7 Close
(``error``, ``allowReconnect``), 8 Ack and 9 Sequence (stateful reconnect).

Decoded: the handshake records are keyed ``handshake``; an invocation is
keyed by its target and correlated by ``invocationId``; stream items and
completions are replies named after the invocation (``SendMessage
completion``), valued by the item, the result or the error; pings, acks
and sequence records are control.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import Dialect, Event, first_data, loads

__all__ = ["SignalR"]

RS = "\x1e"
_CONTROL = {6: "ping", 8: "ack", 9: "sequence"}


def _record(doc: Any, record: str) -> Event:
    if not isinstance(doc, dict):
        return Event("<json>", doc, raw=record)
    kind = doc.get("type")
    if kind is None:
        return Event("handshake", doc, raw=record)
    if not isinstance(kind, int) or isinstance(kind, bool):
        return Event("<json>", doc, raw=record)
    if kind in _CONTROL:
        return Event(_CONTROL[kind], None, control=True, raw=record)
    inv = doc.get("invocationId")
    corr = str(inv) if inv is not None else None
    if kind in (1, 4):
        args = doc.get("arguments")
        if isinstance(args, list) and len(args) == 1:
            args = args[0]
        target = str(doc.get("target"))
        return Event(target if kind == 1 else f"stream {target}", args, corr, raw=record)
    if kind == 2:
        return Event("item", doc.get("item"), corr, reply=True, raw=record)
    if kind == 3:
        if "error" in doc:
            return Event("error", doc["error"], corr, reply=True, raw=record)
        return Event("completion", doc.get("result"), corr, reply=True, raw=record)
    if kind == 5:
        return Event("cancel", None, corr, raw=record)
    if kind == 7:
        return Event("close", {k: v for k, v in doc.items() if k != "type"}, raw=record)
    return Event(f"<type {kind}>", doc, corr, raw=record)


class SignalR(Dialect):
    """SignalR JSON hub protocol (see the module docstring for the spec)."""

    name = "signalr"
    title = "SignalR (JSON hub protocol)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        for m in first_data(first, 2):
            if isinstance(m.payload, str) and m.payload.endswith(RS):
                return 95 if '"protocol"' in m.payload else 80
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        if isinstance(payload, bytes):
            return [Event("<binary>", None)]  # MessagePack hub protocol: not decoded
        out = []
        for record in payload.split(RS):
            if not record.strip():
                continue
            try:
                doc = loads(record)
            except ValueError:
                out.append(Event("<text>", record, raw=record))
                continue
            out.append(_record(doc, record))
        return out
