"""The replay benchmarks' shared parts: the workload, a loopback echo server, both clients.

``bench/replay.py`` and ``bench/replay_concurrency.py`` measure the same
workload (sessions of 20 exchanges of 100-byte JSON against an echo server)
with wsshadow's ``replay_capture`` and with a minimal hand-written client.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing.connection
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.engine.run import ReplayOptions, replay_capture

__all__ = ["minimal_client", "payload", "recorded", "serve_echo", "wsshadow_replay"]


def payload(session: int, n: int) -> str:
    text = json.dumps({"type": "user_message", "session": session, "n": n, "text": ""})
    return text[:-2] + "x" * (100 - len(text)) + '"}'


def recorded(i: int, exchanges: int) -> Session:
    messages = []
    for n in range(exchanges):
        text = payload(i, n)
        messages.append(Message(2 * n, 0.01 * (2 * n + 1), Direction.CLIENT, Opcode.TEXT, text))
        messages.append(Message(2 * n + 1, 0.01 * (2 * n + 2), Direction.SERVER, Opcode.TEXT, text))
    t = 0.01 * (2 * exchanges + 1)
    return Session(
        f"s{i:05d}",
        1_700_000_000.0 + i * 0.001,
        Handshake("/ws"),
        tuple(messages),
        Close(1000, "", Closer.CLIENT, t=t),
    )


def serve_echo(port_out: multiprocessing.connection.Connection) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0, max_queue=None, backlog=4096) as server:
            port_out.send(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


async def minimal_client(url: str, sessions: int, exchanges: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots, connect(url, proxy=None, ping_interval=None, open_timeout=60) as ws:
            for n in range(exchanges):
                await ws.send(payload(i, n))
                await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(sessions)))
    return time.perf_counter() - start


async def wsshadow_replay(
    store: CaptureStore, url: str, concurrency: int, run: str, *, links: bool = True
) -> float:
    options = ReplayOptions(url, concurrency=concurrency, open_timeout=60.0, links=links)
    start = time.perf_counter()
    result = await replay_capture(store, options, run=run)
    took = time.perf_counter() - start
    if result.completed != result.sessions:
        raise SystemExit(f"replay failed at concurrency {concurrency}: {result.first_error()}")
    return took
