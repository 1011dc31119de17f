"""GraphQL over WebSocket: ``graphql-transport-ws`` and the legacy ``subscriptions-transport-ws``.

Specs: https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
(``graphql-transport-ws``) and
https://github.com/apollographql/subscriptions-transport-ws/blob/master/PROTOCOL.md
(legacy; its subprotocol is ``graphql-ws``, a name servers of the new
protocol sometimes accept too, so the two are told apart by message types).

Every message is a JSON object ``{"type", "id"?, "payload"?}``.
New protocol: ``connection_init`` / ``connection_ack``, ``ping`` / ``pong``,
``subscribe`` (id, payload: query, operationName, variables), ``next``,
``error``, ``complete``. Legacy: ``connection_init`` / ``connection_ack`` /
``connection_error``, ``ka`` (keep-alive), ``start`` (like subscribe),
``data`` (like next), ``error``, ``complete``, ``stop``,
``connection_terminate``.

Decoded: ``subscribe`` and ``start`` are requests keyed ``subscribe
<operation>`` (the operation name, else the first field of the query),
correlated by id; ``next`` / ``data`` / ``error`` / ``complete`` are replies
with the same id, valued by their payload, so they are named after the
operation (``subscribe OnMessage next``); pings, pongs and keep-alives are
control. Each operation's messages keep their order; operations interleave
freely.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import Dialect, Event, first_data, loads

__all__ = ["GraphQLWs"]

_CONTROL = frozenset(("ping", "pong", "ka", "connection_keep_alive"))
_REPLIES = {"next": "next", "data": "next", "error": "error", "complete": "complete"}
_FIELD = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)")
_OPERATION = re.compile(r"\b(query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)")


def _operation(payload: Any) -> str:
    if not isinstance(payload, dict):
        return "<operation>"
    name = payload.get("operationName")
    if isinstance(name, str) and name:
        return name
    query = payload.get("query")
    if isinstance(query, str):
        m = _OPERATION.search(query) or _FIELD.search(query)
        if m:
            return m.group(m.lastindex or 1)
    return "<operation>"


class GraphQLWs(Dialect):
    """GraphQL over WebSocket, both protocols (see the module docstring for the specs)."""

    name = "graphql"
    title = "GraphQL over WebSocket (graphql-transport-ws, subscriptions-transport-ws)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if "graphql" in (handshake.subprotocol or "").lower():
            return 95
        for m in first_data(first, 4):
            if isinstance(m.payload, str) and '"type"' in m.payload:
                try:
                    doc = loads(m.payload)
                except ValueError:
                    return 0
                kind = doc.get("type") if isinstance(doc, dict) else None
                return 80 if kind == "connection_init" else 70 if kind == "connection_ack" else 0
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        try:
            doc = loads(payload)
        except ValueError:
            return [Event("<text>", payload if isinstance(payload, str) else None)]
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return [Event("<json>", doc)]
        kind: str = doc["type"]
        payload_value = doc.get("payload")
        if kind in _CONTROL:
            return [Event(kind, payload_value, control=True)]
        op_id = doc.get("id")
        corr = str(op_id) if op_id is not None else None
        if kind in ("subscribe", "start"):
            return [Event(f"subscribe {_operation(payload_value)}", payload_value, corr)]
        if kind in _REPLIES and corr is not None:
            return [Event(_REPLIES[kind], payload_value, corr, reply=True)]
        if kind == "stop":
            return [Event("complete", None, corr)]
        return [Event(kind, payload_value, corr)]
