"""JSON-RPC 2.0.

Spec (https://www.jsonrpc.org/specification): a request is an object with
``"jsonrpc": "2.0"``, a ``method``, optional ``params`` and an ``id``
(string, number or null); without an ``id`` it is a notification and gets
no response. A response has the request's ``id`` and either ``result`` or
``error`` (``code``, ``message``, optional ``data``). A batch is an array
of requests, answered by an array of responses in any order. Either side
may send requests (servers often push notifications).

Decoded: a request's event key is its method, correlated by id; a
notification is keyed by its method, uncorrelated; a response is a reply
keyed ``result`` or ``error`` whose value is the result or the error, so
it is named after the method it answers (``add result``). Each element of
a batch is its own event, so a batch answered in another order is no
difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import Dialect, Event, dumps, first_data, loads

__all__ = ["JsonRpc"]


def _is_rpc(doc: Any) -> bool:
    if isinstance(doc, list):
        return bool(doc) and all(isinstance(d, dict) and d.get("jsonrpc") == "2.0" for d in doc)
    return isinstance(doc, dict) and doc.get("jsonrpc") == "2.0"


def _id(value: Any) -> str:
    return value if isinstance(value, str) else f"#{value}"


def _one(doc: Any) -> Event:
    if not isinstance(doc, dict):
        return Event("<json>", doc)
    method = doc.get("method")
    if isinstance(method, str):
        params = doc.get("params")
        if "id" in doc:
            return Event(method, params, _id(doc["id"]))
        return Event(method, params)
    if "id" in doc:
        if "error" in doc:
            return Event("error", doc["error"], _id(doc["id"]), reply=True)
        return Event("result", doc.get("result"), _id(doc["id"]), reply=True)
    return Event("<json>", doc)


class JsonRpc(Dialect):
    """JSON-RPC 2.0 (see the module docstring for the spec)."""

    name = "jsonrpc"
    title = "JSON-RPC 2.0"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if "jsonrpc" in (handshake.subprotocol or "").lower():
            return 90
        for m in first_data(first, 4):
            if isinstance(m.payload, str) and '"jsonrpc"' in m.payload:
                try:
                    return 75 if _is_rpc(loads(m.payload)) else 0
                except ValueError:
                    return 0
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        try:
            doc = loads(payload)
        except ValueError:
            if isinstance(payload, bytes):
                return [Event("<binary>", None)]
            return [Event("<text>", payload)]
        if isinstance(doc, list) and doc:
            return [_one(d)._replace(raw=dumps(d)) for d in doc]
        return [_one(doc)]
