"""The HTTP side of the recording proxy: command-line values, headers per hop, TLS, the 101.

Pure helpers and small aiohttp pieces that ``recorders.proxy`` puts
together; kept apart so that the proxy module holds the proxy.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from wsshadow.replay.errors import BadInput

__all__ = [
    "HOP_BY_HOP",
    "WS_OWN",
    "Switched",
    "client_ssl",
    "forward_headers",
    "parse_listen",
    "parse_routes",
    "server_ssl",
]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that belong to one hop and are never forwarded (RFC 9110 section 7.6.1)."""

# Headers each hop's own WebSocket handshake generates, plus ones aiohttp sets itself.
WS_OWN = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
        "host",
        "content-length",
    }
)


class Switched(web.StreamResponse):
    """The 101 answer to the client, with the upstream's headers.

    After it the relay owns the connection's bytes, so nothing of aiohttp's
    (no body framing, no end-of-response) may follow it.
    """

    def __init__(self, headers: CIMultiDict[str]) -> None:
        super().__init__(status=101, reason="Switching Protocols", headers=headers)
        self._length_check = False  # as aiohttp's own WebSocketResponse does
        self.force_close()

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def parse_routes(items: Iterable[str]) -> dict[str, str]:
    """``PATH=UPSTREAM_PATH`` strings as a dict; raises BadInput for a malformed one."""
    routes: dict[str, str] = {}
    for item in items:
        path, sep, target = item.partition("=")
        if not sep or not path.startswith("/") or not target.startswith("/"):
            raise BadInput(f"--route {item!r}: expected PATH=UPSTREAM_PATH, both starting with /")
        routes[path] = target
    return routes


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``) as a tuple; raises BadInput when malformed."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadInput(f"--listen {value!r}: expected HOST:PORT, such as 127.0.0.1:8765")
    return host, int(port)


def forward_headers(headers: Any, drop: frozenset[str]) -> CIMultiDict[str]:
    named = {v.strip().lower() for v in headers.get("connection", "").split(",") if v.strip()}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        low = name.lower()
        if low in HOP_BY_HOP or low in drop or low in named:
            continue
        out.add(name, value)
    return out


def client_ssl(upstream_ca: str | os.PathLike[str] | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=os.fspath(upstream_ca) if upstream_ca else None)
    except (OSError, ssl.SSLError) as e:
        raise BadInput(f"--upstream-ca {upstream_ca}: cannot load ({e})") from None


def server_ssl(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key))
    except (OSError, ssl.SSLError) as e:
        raise BadInput(f"--tls-cert/--tls-key: cannot load ({e})") from None
    return ctx
