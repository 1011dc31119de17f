"""Socket.IO sessions that upgraded from long-polling: a fresh Engine.IO handshake.

A Socket.IO client usually opens with HTTP long-polling and upgrades to a
WebSocket, whose URL carries the ``sid`` the polling handshake issued
(``/socket.io/?EIO=4&transport=websocket&sid=...``). Replayed as recorded,
that ``sid`` is unknown to the target. ``fresh_engineio_url`` performs the
handshake the client did over polling (open, then CONNECT for each
namespace the session uses and did not CONNECT on the WebSocket, then one poll to
collect the answers) and
returns the WebSocket URL with the new ``sid``; the recorded frames then
carry on with the upgrade (``2probe``, ``3probe``, ``5``) as they were.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

__all__ = [
    "fresh_engineio_url",
    "needs_engineio_handshake",
    "polling_connects",
    "socketio_namespaces",
]

_NAMESPACE = re.compile(r"4[0-6](?:\d+-)?(/[^,]*),")
# A client's Socket.IO CONNECT: ``40``, ``40{auth}``, ``40/chat,``, ``40/chat,{auth}``.
_CONNECT = re.compile(r"40(?:(/[^,{]*),)?(?:\{.*)?\Z", re.DOTALL)


def needs_engineio_handshake(url: str) -> bool:
    """True for an Engine.IO WebSocket URL that carries a polling session's ``sid``."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return "EIO" in query and "sid" in query and query.get("transport") == "websocket"


def socketio_namespaces(payloads: Iterable[str | bytes]) -> list[str]:
    """The namespaces a session's Socket.IO packets use: ``/`` first, then the others."""
    found = {"/": None}
    for p in payloads:
        if isinstance(p, str):
            m = _NAMESPACE.match(p)
            if m:
                found[m.group(1)] = None
    return list(found)


def polling_connects(directions: Iterable[str], payloads: Iterable[str | bytes]) -> list[str]:
    """The namespaces the recorded client connected over polling, before the upgrade: those
    the session uses whose CONNECT is not among its recorded WebSocket client frames.

    A client that upgrades early connects over the WebSocket (its ``40`` is recorded and
    replayed as it is); CONNECTing it over polling as well is a second CONNECT, which
    python-socketio answers with ``44"Unable to connect"``.
    """
    texts = list(zip(directions, payloads, strict=True))
    on_websocket = set()
    for direction, p in texts:
        if direction == "client" and isinstance(p, str):
            m = _CONNECT.match(p)
            if m:
                on_websocket.add(m.group(1) or "/")
    return [ns for ns in socketio_namespaces(p for _, p in texts) if ns not in on_websocket]


async def fresh_engineio_url(
    url: str,
    namespaces: Iterable[str],
    *,
    headers: Iterable[tuple[str, str]] = (),
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> str:
    """``url`` with the ``sid`` of a new Engine.IO session opened over polling.

    Returns ``url`` unchanged when the target's polling handshake fails: the
    WebSocket connection then fails (or not) on its own, with its own error.
    """
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("sid", "transport", "t")]  # fmt: skip
    polling = urlunsplit(
        (scheme, parts.netloc, parts.path, urlencode([*query, ("transport", "polling")]), "")
    )
    wanted = {k: v for k, v in headers if k.lower() in ("cookie", "authorization")}
    try:
        async with aiohttp.ClientSession(
            headers=wanted, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as http:
            async with http.get(polling, ssl=ssl_context if ssl_context is not None else True) as r:
                body = await r.text()
            opened = json.loads(body.split("\x1e", 1)[0][1:])
            sid = str(opened["sid"])
            with_sid = f"{polling}&sid={sid}"
            packets = "\x1e".join("40" if ns == "/" else f"40{ns}," for ns in namespaces)
            if packets:  # else nothing to answer: a poll would wait for the server's ping
                async with http.post(with_sid, data=packets.encode(), ssl=ssl_context or True) as r:
                    await r.read()
                async with http.get(with_sid, ssl=ssl_context or True) as r:
                    await r.read()  # the CONNECT answers, as the client had them over polling
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError):
        return url
    fresh = [*query, ("transport", "websocket"), ("sid", sid)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(fresh), ""))
