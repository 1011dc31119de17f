"""A minimal recording relay for the plugin tests (the recording proxy lives elsewhere).

Clients connect to the relay on 127.0.0.1; it opens the same path on the
upstream server with the client's offered subprotocols and Authorization
header, accepts the client with the subprotocol upstream selected, passes
messages both ways and records each connection as a ``Session``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
)

__all__ = ["RecordingRelay", "recording_relay"]


@dataclass
class RecordingRelay:
    """The relay's address and the sessions it recorded so far."""

    url: str = ""
    sessions: list[Session] = field(default_factory=list)
    upstreams: dict[int, tuple[ClientConnection, float, float]] = field(default_factory=dict)


def _offered(request: Request) -> list[str]:
    raw = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
    return [p.strip() for p in raw.split(",") if p.strip()]


@contextlib.asynccontextmanager
async def recording_relay(upstream: str) -> AsyncIterator[RecordingRelay]:
    """Serve a recording relay in front of ``upstream`` (``ws://host:port``)."""
    relay = RecordingRelay()

    async def process_request(conn: ServerConnection, request: Request) -> Response | None:
        headers = [(k, v) for k, v in request.headers.raw_items() if k.lower() == "authorization"]
        offered = _offered(request)
        opened, wall = time.monotonic(), time.time()
        up = await connect(
            upstream + request.path,
            subprotocols=[Subprotocol(p) for p in offered] or None,
            additional_headers=headers,
            ping_interval=None,
            max_size=None,
        )
        relay.upstreams[id(conn)] = (up, opened, wall)
        return None

    def select(conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return relay.upstreams[id(conn)][0].subprotocol

    async def handler(conn: ServerConnection) -> None:
        up, opened, wall = relay.upstreams.pop(id(conn))
        messages: list[Message] = []
        request = conn.request
        assert request is not None
        route, _, query = request.path.partition("?")

        def note(direction: Direction, data: str | bytes) -> None:
            opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
            messages.append(
                Message(len(messages), time.monotonic() - opened, direction, opcode, data)
            )

        async def pump(
            src: ServerConnection | ClientConnection,
            dst: ServerConnection | ClientConnection,
            direction: Direction,
        ) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for data in src:
                    note(direction, data)
                    await dst.send(data)

        to_up = asyncio.create_task(pump(conn, up, Direction.CLIENT))
        to_client = asyncio.create_task(pump(up, conn, Direction.SERVER))
        done, _ = await asyncio.wait({to_up, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_client in done:  # upstream closed first: pass its close on
            rcvd = up.protocol.close_rcvd
            code, reason = (rcvd.code, rcvd.reason) if rcvd else (1006, "")
            await conn.close(code if code not in (1005, 1006) else 1000, reason)
            close = Close(code, reason, Closer.SERVER, t=time.monotonic() - opened)
        else:
            rcvd = conn.protocol.close_rcvd
            code, reason = (rcvd.code, rcvd.reason) if rcvd else (1000, "")
            await up.close(code if code not in (1005, 1006) else 1000, reason)
            close = Close(code, reason, Closer.CLIENT, t=time.monotonic() - opened)
        for task in (to_up, to_client):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        handshake = Handshake(
            route=route,
            query=query,
            request_headers=tuple(Headers(request.headers).raw_items()),
            subprotocols=tuple(_offered(request)),
            status=101,
            subprotocol=up.subprotocol,
        )
        relay.sessions.append(
            Session(uuid.uuid4().hex[:12], wall, handshake, tuple(messages), close, Provenance())
        )

    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        select_subprotocol=select,
        ping_interval=None,
        max_size=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        relay.url = f"ws://127.0.0.1:{port}"
        yield relay
