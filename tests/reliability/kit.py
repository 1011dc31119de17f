"""Helpers for the reliability suite: captures with data, real servers in threads, CLI runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from websockets.sync.server import ServerConnection, serve

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

__all__ = [
    "assert_one_error",
    "cli",
    "digest",
    "http_server",
    "make_capture",
    "recorded",
    "ws_server",
]


def recorded(
    sid: str,
    payloads: list[tuple[str, str | bytes]],
    *,
    run: str | None = None,
    origin: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    query: str = "",
    subprotocols: tuple[str, ...] = (),
    route: str = "/ws",
) -> Session:
    """A session from (direction, payload) pairs, 1 ms apart."""
    messages = tuple(
        Message(
            i,
            (i + 1) / 1000,
            Direction(d),
            Opcode.TEXT if isinstance(p, str) else Opcode.BINARY,
            p,
        )
        for i, (d, p) in enumerate(payloads)
    )
    return Session(
        sid,
        1_764_150_000.0,
        Handshake(route, query, headers, subprotocols, status=101),
        messages,
        Close(1000, "", Closer.CLIENT, t=(len(payloads) + 1) / 1000),
        Provenance(source=Source.REPLAY if run else Source.JSONL, run=run, origin=origin),
    )


def _turns(i: int, n: int) -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = []
    for k in range(n):
        out.append(("client", json.dumps({"type": "ask", "n": k, "pad": "x" * 200})))
        out.append(("server", json.dumps({"type": "answer", "n": k, "session": i})))
    return out


def make_capture(path: Path, sessions: int = 20, turns: int = 10) -> Path:
    """A capture with recorded sessions s0.. and a replay run r1 of each (several pages)."""
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(recorded(f"s{i}", _turns(i, turns)) for i in range(sessions))
        store.put_run(Run("r1", "ws://127.0.0.1:1", Source.REPLAY, {}, 1.0, 2.0, sessions, 0))
        store.put_sessions(
            recorded(f"r1:s{i}", _turns(i, turns), run="r1", origin=f"s{i}")
            for i in range(sessions)
        )
    return path


def digest(path: Path) -> str:
    """The file's sha256 (to prove a command left it alone)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(capsys: Any, argv: list[str]) -> tuple[int, str, str]:
    """Run ``wsshadow ARGV`` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_error(result: tuple[int, str, str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr (an error line), no traceback; returns the line."""
    code, _out, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("wsshadow: error: "), lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@contextmanager
def ws_server(
    handler: Callable[[ServerConnection], None] | None = None, **options: Any
) -> Iterator[str]:
    """A threaded websockets server on 127.0.0.1 (echo by default); yields its ws:// URL."""

    def echo(ws: ServerConnection) -> None:
        for raw in ws:
            ws.send(raw)

    with serve(handler or echo, "127.0.0.1", 0, max_size=None, **options) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            server.shutdown()
            thread.join(5)


@contextmanager
def http_server(status: int) -> Iterator[str]:
    """A plain aiohttp HTTP server (no WebSocket) answering every request with ``status``."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, text="not a websocket server\n")

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"ws://127.0.0.1:{holder['port']}"
    finally:

        async def stop() -> None:
            await holder["runner"].cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
