"""The HTTP side of the recording proxy: command-line values, headers per hop, TLS, the 101.

Pure helpers and small aiohttp pieces that ``recorders.proxy`` puts
together; kept apart so that the proxy module holds the proxy.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from wsshadow.replay.errors import BadInput

log = logging.getLogger("wsshadow.record")

__all__ = [
    "HOP_BY_HOP",
    "WS_OWN",
    "Switched",
    "client_ssl",
    "forward_headers",
    "parse_listen",
    "parse_routes",
    "pass_through",
    "raw_headers",
    "request_target",
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


def raw_headers(message: Any) -> tuple[tuple[str, str], ...]:
    """A request's or response's headers as received (names as sent, in order)."""
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.raw_headers)


def request_target(raw: str) -> tuple[str, str] | None:
    """(path, query) of a request target in origin form (``/x?y``) or absolute form
    (``http://host/x?y``, which RFC 9112 3.2.2 says a server must accept, as sent by
    clients that think they talk to a forward proxy); None for anything else."""
    if raw.startswith("/"):
        path, _, query = raw.partition("?")
        return path, query
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https", "ws", "wss"):
        return None
    _authority, slash, tail = rest.partition("/")
    target = slash + tail if slash else "/"
    target = target.partition("#")[0]
    path, _, query = target.partition("?")
    return path, query


async def pass_through(
    http: aiohttp.ClientSession, request: web.BaseRequest, target: URL, path: str
) -> web.StreamResponse:
    """Plain HTTP to ``target`` unrecorded, streamed both ways.

    Neither body is held whole: an upload goes upstream as it arrives (no
    size limit but the upstream's), and the answer reaches the client chunk
    by chunk as the upstream sends it, so server-sent events arrive as they
    are sent and a download costs the proxy one chunk of memory, not its size.
    """
    headers = forward_headers(request.headers, WS_OWN)
    data: Any = None
    if request.body_exists:
        data = request.content
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
    try:
        resp = await http.request(
            request.method, target, headers=headers, data=data, allow_redirects=False
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return web.Response(status=502, text=f"wsshadow: upstream unreachable: {e}\n")
    out = web.StreamResponse(
        status=resp.status,
        reason=resp.reason,
        headers=forward_headers(resp.headers, frozenset()),
    )
    try:
        await out.prepare(request)
        async for chunk in resp.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
    except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as e:
        # Mid-stream: the status went out already, so the client learns of the
        # failure as HTTP lets it, from a connection cut before the body's end.
        log.warning("HTTP pass-through %s %s cut: %s", request.method, path, e)
        if request.transport is not None:
            request.transport.abort()
    finally:
        resp.close()
    return out
