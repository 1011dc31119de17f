"""HAR export: sessions written as a HAR document in Chrome DevTools' WebSocket shape.

``_resourceType: "websocket"`` entries with ``_webSocketMessages`` (``type``
send / receive, ``time`` in epoch seconds, ``opcode``, ``data``, binary data
in base64): what ``har.py`` reads back, and what DevTools and HAR viewers
open. Close codes are not part of that shape.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from wsshadow.replay.capture.model import Direction, Headers, Message, Opcode, Session

__all__ = ["write_har"]


def _has(headers: Headers, name: str) -> bool:
    lowered = name.lower()
    return any(k.lower() == lowered for k, _ in headers)


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _pairs(headers: Headers) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def _har_message(m: Message, started_at: float) -> dict[str, Any]:
    opcode = {Opcode.TEXT: 1, Opcode.BINARY: 2, Opcode.PING: 9, Opcode.PONG: 10, Opcode.CLOSE: 8}
    data = m.payload if isinstance(m.payload, str) else base64.b64encode(m.payload).decode()
    return {
        "type": "send" if m.direction is Direction.CLIENT else "receive",
        "time": started_at + m.t,
        "opcode": opcode[m.opcode],
        "data": data,
    }


def _har_entry(s: Session, host: str) -> dict[str, Any]:
    h = s.handshake
    request_headers = list(h.request_headers)
    if h.subprotocols and not _has(h.request_headers, "sec-websocket-protocol"):
        request_headers.append(("Sec-WebSocket-Protocol", ", ".join(h.subprotocols)))
    response_headers = list(h.response_headers)
    if h.subprotocol and not _has(h.response_headers, "sec-websocket-protocol"):
        response_headers.append(("Sec-WebSocket-Protocol", h.subprotocol))
    url = f"ws://{host}{h.route}" + (f"?{h.query}" if h.query else "")
    return {
        "startedDateTime": _iso(s.started_at),
        "time": 0,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": _pairs(tuple(request_headers)),
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": h.status or 0,
            "statusText": "Switching Protocols" if h.status == 101 else "",
            "httpVersion": "HTTP/1.1",
            "headers": _pairs(tuple(response_headers)),
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_resourceType": "websocket",
        "_webSocketMessages": [_har_message(m, s.started_at) for m in s.messages],
    }


def write_har(sessions: Iterable[Session], out: IO[str], host: str = "localhost") -> int:
    """Write sessions as a HAR document in Chrome DevTools' WebSocket shape.

    Close codes are not part of that shape and are not written. Returns how
    many sessions were written.
    """
    entries = [_har_entry(s, host) for s in sessions]
    doc = {
        "log": {
            "version": "1.2",
            "creator": {"name": "wsshadow", "version": "1"},
            "pages": [],
            "entries": entries,
        }
    }
    json.dump(doc, out, ensure_ascii=False, indent=1)
    out.write("\n")
    return len(entries)
