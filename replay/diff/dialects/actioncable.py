"""ActionCable (Rails), subprotocol ``actioncable-v1-json``.

Spec (actioncable's ``ActionCable::Connection`` and the JS consumer): the
server sends ``{"type": "welcome"}`` on connect, ``{"type": "ping",
"message": <epoch>}`` every few seconds, ``{"type": "disconnect", "reason",
"reconnect"}``, and per subscription ``{"identifier": "<json>", "type":
"confirm_subscription" | "reject_subscription"}`` and broadcasts
``{"identifier": "<json>", "message": {...}}``. The client sends
``{"command": "subscribe" | "unsubscribe" | "message", "identifier":
"<json>", "data": "<json>"}``. ``identifier`` and ``data`` are JSON
documents encoded as strings.

Decoded: ``identifier`` and ``data`` are decoded; a subscription is
correlated by its identifier, so its confirmation and broadcasts are
aligned per channel and channels interleave freely. The event key is the
channel (the identifier's ``channel``) followed by the command, the type or
the ``data``'s ``action``; ``welcome`` and pings are control.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import (
    SERVER,
    Dialect,
    Event,
    decode_nested,
    first_data,
    loads,
)

__all__ = ["ActionCable"]

_CONTROL = frozenset(("welcome", "ping"))


def _channel(identifier: Any) -> str:
    if isinstance(identifier, dict) and isinstance(identifier.get("channel"), str):
        return str(identifier["channel"])
    return "<channel>"


class ActionCable(Dialect):
    """ActionCable (see the module docstring for the spec)."""

    name = "actioncable"
    title = "ActionCable (actioncable-v1-json)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if (handshake.subprotocol or "").startswith("actioncable"):
            return 95
        if any(p.startswith("actioncable") for p in handshake.subprotocols):
            return 90
        for m in first_data(first, 3):
            if m.direction is SERVER and isinstance(m.payload, str) and '"type"' in m.payload:
                try:
                    doc = loads(m.payload)
                except ValueError:
                    return 0
                # Exactly ActionCable's welcome (AnyCable adds a sid): a chat's own "welcome"
                # event carries data of its own.
                welcome = isinstance(doc, dict) and doc.get("type") == "welcome"
                return 80 if welcome and set(doc) <= {"type", "sid"} else 0
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        try:
            doc = loads(payload)
        except ValueError:
            return [Event("<text>", payload if isinstance(payload, str) else None)]
        if not isinstance(doc, dict):
            return [Event("<json>", doc)]
        kind = doc.get("type")
        if isinstance(kind, str) and kind in _CONTROL:
            return [Event(str(kind), None, control=True)]
        raw_identifier = doc.get("identifier")
        identifier = decode_nested(raw_identifier)
        corr = raw_identifier if isinstance(raw_identifier, str) else None
        channel = _channel(identifier)
        if "command" in doc:
            command = str(doc["command"])
            data = decode_nested(doc.get("data"))
            action = data.get("action") if isinstance(data, dict) else None
            key = f"{channel} {action}" if command == "message" and isinstance(action, str) \
                else f"{channel} {command}"  # fmt: skip
            return [Event(key, {"identifier": identifier, "data": data}, corr)]
        if kind in ("confirm_subscription", "reject_subscription"):
            return [Event(f"{channel} {kind}", {"identifier": identifier}, corr)]
        if "message" in doc and corr is not None:
            message = decode_nested(doc["message"])
            return [Event(f"{channel} message", message, corr)]
        if isinstance(kind, str):
            return [Event(kind, decode_nested({k: v for k, v in doc.items() if k != "type"}))]
        return [Event("<json>", decode_nested(doc))]
