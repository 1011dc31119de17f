"""Helpers for the proxy fault tests: ``wsshadow record`` and an echo upstream as real
subprocesses, raw WebSocket frames over a plain socket, a process's resident memory."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.timeouts import scaled

__all__ = [
    "ROOT",
    "RawClient",
    "RecordProcess",
    "frame",
    "rss_mib",
    "start_echo_process",
    "start_record",
]

ROOT = Path(__file__).resolve().parents[2]
FINAL = re.compile(r"recorded (\d+) sessions, (\d+) messages, (\d+) bytes, (\d+) dropped")


def rss_mib(pid: int) -> float:
    """The resident memory of process ``pid`` (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class RecordProcess:
    """A running ``wsshadow record``: its URL and every stderr line so far."""

    proc: asyncio.subprocess.Process
    url: str
    lines: list[str] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit code (stderr fully read)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._drain is not None:
            await asyncio.wait_for(self._drain, timeout)
        return code

    def final(self) -> tuple[int, int, int, int]:
        """(sessions, messages, bytes, dropped) from the closing line."""
        for line in reversed(self.lines):
            if m := FINAL.search(line):
                return int(m[1]), int(m[2]), int(m[3]), int(m[4])
        raise AssertionError("no closing line in:\n" + "".join(self.lines))


async def start_record(capture: Path, upstream: str, *args: str) -> RecordProcess:
    """Start ``wsshadow record`` on a free port; returns once it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "replay",
        "record",
        "--upstream",
        upstream,
        "--listen",
        "127.0.0.1:0",
        *args,
        str(capture),
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), scaled(30))).decode()
    match = re.search(r"recording (ws://\S+)", line)
    assert match, line
    rec = RecordProcess(proc, match.group(1), [line])

    async def drain() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            rec.lines.append(raw.decode(errors="replace"))

    rec._drain = asyncio.get_running_loop().create_task(drain())
    return rec


async def start_echo_process() -> tuple[asyncio.subprocess.Process, str]:
    """An echo upstream in its own process (so that it can be SIGKILLed); returns (proc, url)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.echo_server",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    port = int((await asyncio.wait_for(proc.stdout.readline(), scaled(30))).decode())
    return proc, f"ws://127.0.0.1:{port}"


def frame(opcode: int, payload: bytes = b"", *, mask: bool = True, fin: bool = True) -> bytes:
    """One WebSocket frame (masked, as a client must send it, unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A WebSocket client on a bare TCP stream, for faults a library would not commit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, path: str = "/echo", **kw: object) -> RawClient:
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), **kw)  # type: ignore[arg-type]
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), scaled(30))
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame from the server (unmasked)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.transport.abort()
