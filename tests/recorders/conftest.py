"""Fixtures shared by the recorder tests.

``serve_app`` serves any ASGI app on 127.0.0.1 (ephemeral port) under
uvicorn while a test runs and returns its ``ws://`` URL, e.g. to record
through ``WsShadowRecorder`` and then replay against the same app unwrapped.
``upstream`` and ``candidate`` are websockets servers for the recording proxy.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from wsshadow.recorders.serve import ServedApp, serve_asgi


@pytest.fixture
def serve_app() -> Iterator[Callable[..., ServedApp]]:
    """A factory: ``serve_app(app)`` starts ``app`` and returns its address; stopped after the test."""
    with ExitStack() as stack:

        def start(app: Any, **options: Any) -> ServedApp:
            return stack.enter_context(serve_asgi(app, **options))

        yield start


PROTOCOLS = ("chat.v2", "chat.v1")


@dataclass
class Upstream:
    """An upstream server and what it saw."""

    url: str
    seen_paths: list[str] = field(default_factory=list)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    offered: list[list[str]] = field(default_factory=list)
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    received: list[str | bytes] = field(default_factory=list)


def _select(connection: ServerConnection, offered: list[str]) -> Any:
    for p in PROTOCOLS:
        if p in offered:
            return p
    return None


async def _handler(up: Upstream, ws: ServerConnection) -> None:
    assert ws.request is not None
    path = ws.request.path
    up.seen_paths.append(path)
    up.seen_headers.append(dict(ws.request.headers.raw_items()))
    try:
        async for message in ws:
            up.received.append(message)
            if path.startswith("/close4001") and message == "bye":
                await ws.close(4001, "custom reason ✓")
                break
            if path.startswith("/quiet"):
                continue
            if message == "die":
                ws.transport.abort()  # vanish without a close frame
                return
            await ws.send(message)
    finally:
        rcvd = ws.protocol.close_rcvd
        up.closes.append((rcvd.code, rcvd.reason) if rcvd else (None, ""))


def _process_request(connection: ServerConnection, request: Request) -> Any:
    if request.path.startswith("/denied"):
        response = connection.respond(403, "no entry for you\n")
        response.headers["X-Why"] = "test"
        return response
    if request.path.startswith("/moved"):
        response = connection.respond(302, "see /echo\n")
        response.headers["Location"] = "/echo"
        return response
    if request.path.startswith("/health"):
        return connection.respond(200, "healthy\n")
    return None


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """An echo server: /close4001 closes with 4001 on 'bye', /denied refuses 403,
    /quiet never answers, /health answers plain HTTP; subprotocols chat.v2, chat.v1."""
    up = Upstream(url="")
    async with serve(
        lambda ws: _handler(up, ws),
        "127.0.0.1",
        0,
        select_subprotocol=_select,
        process_request=_process_request,
        max_size=64 * 2**20,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        up.url = f"ws://127.0.0.1:{port}"
        yield up


@pytest.fixture
async def candidate() -> AsyncIterator[str]:
    """A candidate server that upper-cases what it echoes; yields its URL."""

    async def shout(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message.upper())

    async with serve(shout, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


# ---- raw WebSocket bytes, for what a library client will not send -------------------


def masked_frame(first: int, payload: bytes) -> bytes:
    """One masked client frame of at most 125 bytes; ``first`` is its first byte (FIN, RSV, opcode)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + mask + body


async def raw_upgrade(
    port: int, path: str = "/echo", extensions: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Upgrade by hand on 127.0.0.1:``port``; returns the streams and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"{extra}\r\n"
        ).encode()
    )
    return reader, writer, await reader.readuntil(b"\r\n\r\n")
