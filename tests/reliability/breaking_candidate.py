"""A mirror candidate that accepts the WebSocket and then breaks, on a bare TCP stream.

``breaking_candidate(how, after)`` serves on 127.0.0.1 with an ephemeral
port and yields its ws:// URL. Each connection gets a real 101, the candidate
reads ``after`` client frames (answering none), then breaks ``how``:

- ``"reset"``: the TCP connection is reset (SO_LINGER 0, then close: an RST);
- ``"malformed"``: a frame with a reserved opcode (0x3), which no peer may send;
- ``"close-then-reset"``: a close frame, then an RST before the answer can be read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["breaking_candidate"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _read_frame(reader: asyncio.StreamReader) -> int:
    """Read one masked client frame; returns its opcode."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    await reader.readexactly(n + (4 if b1 & 0x80 else 0))
    return b0 & 0x0F


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _serve_one(
    how: str, after: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        seen = 0
        while seen < after:
            if await _read_frame(reader) in (1, 2):
                seen += 1
        if how == "reset":
            _reset(writer)
        elif how == "malformed":
            writer.write(b"\x83\x03bad")  # FIN + reserved opcode 3
            await writer.drain()
            while True:  # keep reading until the mirror hangs up
                await _read_frame(reader)
        elif how == "close-then-reset":
            writer.write(b"\x88\x02\x03\xe8")  # close 1000
            await writer.drain()
            await asyncio.sleep(0.01)
            _reset(writer)
        else:
            raise ValueError(how)
    except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
        pass
    finally:
        writer.transport.abort()


@contextmanager
def breaking_candidate(how: str, after: int) -> Iterator[str]:
    """Serve the breaking candidate in a thread while the block runs; yields its URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.Server] = {}

    async def start() -> None:
        holder["server"] = await asyncio.start_server(
            lambda r, w: _serve_one(how, after, r, w), "127.0.0.1", 0
        )
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="breaking-candidate", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the breaking candidate did not start")
    server = holder["server"]
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:

        async def stop() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
