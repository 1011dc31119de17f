"""Builders for diff tests: sessions from short lists of messages."""

from __future__ import annotations

import json
from typing import Any

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
    Source,
)

__all__ = ["C", "S", "session"]


def C(payload: Any, t: float = 0.0) -> tuple[str, Any, float]:
    """A client message (JSON-encoded unless str/bytes)."""
    return ("client", payload, t)


def S(payload: Any, t: float = 0.0) -> tuple[str, Any, float]:
    """A server message (JSON-encoded unless str/bytes)."""
    return ("server", payload, t)


def session(
    sid: str,
    items: list[tuple[str, Any, float]],
    *,
    route: str = "/ws",
    status: int | None = 101,
    subprotocol: str | None = None,
    close: Close | None = None,
    run: str | None = None,
    origin: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Session:
    """A session; ``t`` defaults to increasing by 1 ms per message."""
    messages = []
    for seq, (direction, payload, t) in enumerate(items):
        if isinstance(payload, bytes):
            op, data = Opcode.BINARY, payload
        elif isinstance(payload, str):
            op, data = Opcode.TEXT, payload
        else:
            op, data = Opcode.TEXT, json.dumps(payload)
        messages.append(
            Message(seq, t or (seq + 1) / 1000, Direction(direction), op, data)  # type: ignore[arg-type]
        )
    return Session(
        id=sid,
        started_at=1764150000.0,
        handshake=Handshake(
            route=route, status=status, subprotocol=subprotocol, response_headers=headers
        ),
        messages=tuple(messages),
        close=close if close is not None else Close(1000, "", Closer.CLIENT),
        provenance=Provenance(
            source=Source.REPLAY if run else Source.PROXY, run=run, origin=origin
        ),
    )
