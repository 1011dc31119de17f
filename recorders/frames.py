"""WebSocket wire details the recording proxy needs (RFC 6455, RFC 7692), pure.

The proxy relays frames as they came, without decoding and re-encoding
them; it only reads them for the capture. This module holds what that
reading needs and nothing that touches a socket: close payloads, the
proxy's own close frames, the permessage-deflate offer it passes upstream
and the parameters the upstream chose, and ``Inflater``, which turns a
compressed message back into what the application sent.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Deflate",
    "Inflater",
    "MessageTooBig",
    "close_frame",
    "close_payload",
    "deflate_offer",
    "negotiated_deflate",
    "parse_close",
]

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_DEFLATE = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # removed by the sender after each compressed message (RFC 7692 7.2.1)


class MessageTooBig(Exception):
    """A message, once inflated, is larger than the limit."""


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The application data of a close frame (empty when there is no code)."""
    if not code:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """A close frame's code and reason; ``(None, "")`` for an empty (or one-byte) payload."""
    if len(payload) < 2:
        return None, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")


def close_frame(code: int | None, reason: str = "", *, masked: bool) -> bytes:
    """A whole close frame of the proxy's own; ``masked`` for one sent to the upstream."""
    payload = close_payload(code, reason)[:125]
    if not masked:
        return bytes((0x80 | OP_CLOSE, len(payload))) + payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | OP_CLOSE, 0x80 | len(payload))) + mask + body


def _extensions(values: Iterable[str]) -> list[tuple[str, dict[str, str | None]]]:
    """``Sec-WebSocket-Extensions`` header values as (name, parameters), in order."""
    out: list[tuple[str, dict[str, str | None]]] = []
    for value in values:
        for item in value.split(","):
            name, *params = (p.strip() for p in item.split(";"))
            if not name:
                continue
            parsed: dict[str, str | None] = {}
            for param in params:
                key, eq, val = param.partition("=")
                parsed[key.strip().lower()] = val.strip().strip('"') if eq else None
            out.append((name.lower(), parsed))
    return out


def deflate_offer(values: Iterable[str]) -> str | None:
    """The part of a client's extension offer the proxy passes upstream.

    Only permessage-deflate offers go on, as the client wrote them: the
    proxy can read those messages for the capture; an extension it does not
    know could make the relayed frames unreadable to it.
    """
    kept = [
        item.strip()
        for value in values
        for item in value.split(",")
        if item.split(";", 1)[0].strip().lower() == _DEFLATE
    ]
    return ", ".join(kept) or None


@dataclass(frozen=True, slots=True)
class Deflate:
    """permessage-deflate as the upstream accepted it: which side resets its window
    after each message."""

    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False


def negotiated_deflate(values: Iterable[str]) -> tuple[Deflate | None, str | None]:
    """The upstream's ``Sec-WebSocket-Extensions`` answer: (deflate or None, problem).

    ``problem`` names an extension the proxy cannot read (one the client
    did not offer through it, since it passes on only permessage-deflate).
    """
    deflate: Deflate | None = None
    for name, params in _extensions(values):
        if name != _DEFLATE or deflate is not None:
            return deflate, f"the upstream chose an extension the proxy cannot read: {name}"
        deflate = Deflate(
            client_no_context_takeover="client_no_context_takeover" in params,
            server_no_context_takeover="server_no_context_takeover" in params,
        )
    return deflate, None


class Inflater:
    """Inflates one direction's compressed messages (RFC 7692), at most ``limit`` bytes each.

    ``no_context_takeover``: the sender resets its window after each message,
    so the inflater starts afresh too.
    """

    __slots__ = ("_inflate", "limit", "no_context_takeover")

    def __init__(self, limit: int, *, no_context_takeover: bool = False) -> None:
        self.limit = limit
        self.no_context_takeover = no_context_takeover
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)

    def inflate(self, data: bytes) -> bytes:
        """The message ``data`` (the payload of its frames, joined) carried.

        Raises MessageTooBig past ``limit``, zlib.error for data that is not deflate.
        """
        inflate = self._inflate
        out = inflate.decompress(data + _TAIL, self.limit + 1)
        if len(out) > self.limit or inflate.unconsumed_tail:
            raise MessageTooBig(len(out))
        if self.no_context_takeover:
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        return out
