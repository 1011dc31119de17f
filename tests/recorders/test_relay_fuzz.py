"""Arbitrary bytes after the handshake: the frame relay never fails, and the proxy keeps serving.

Each example sends frames (well-formed or not: any opcode, reserved bits,
masks or none, fragments, lengths that lie) and raw bytes through a real
``RecordingProxy`` to a real websockets echo server, split across writes
at random places, then a close frame. The relay must read them without an
exception of its own (no ``relay failed`` session), record how the session
ended, and serve the next client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests.timeouts import scaled
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore

from .conftest import raw_upgrade


def _frame(fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes, lie: int) -> bytes:
    length = len(payload) + lie
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | max(length, 0)])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if masked:
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


frames = st.builds(
    _frame,
    fin=st.booleans(),
    rsv=st.sampled_from([0, 0, 0, 4, 1, 7]),
    opcode=st.sampled_from([1, 2, 0, 9, 10, 8, 3, 11]),
    masked=st.sampled_from([True, True, True, False]),
    payload=st.binary(max_size=300),
    lie=st.sampled_from([0, 0, 0, 0, 1, -1, 200]),
)
streams = st.lists(frames | st.binary(min_size=1, max_size=40), min_size=1, max_size=8)


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _one(chunks: list[bytes], cuts: list[int], capture: Path) -> None:
    async with serve(_echo, "127.0.0.1", 0, compression=None) as server:
        upstream = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        async with RecordingProxy(
            upstream, capture, listen=("127.0.0.1", 0), close_timeout=1.0
        ) as proxy:
            reader, writer, head = await raw_upgrade(proxy.port, "/f")
            assert head.startswith(b"HTTP/1.1 101")
            data = b"".join(chunks) + _frame(True, 0, 8, True, b"\x03\xe8", 0)
            start = 0
            for cut in [*sorted({c % len(data) for c in cuts}), len(data)]:
                writer.write(data[start:cut])
                start = cut
                await asyncio.sleep(0)
            # The upstream ends most such sessions itself (1002); a frame left
            # incomplete waits for its rest, as it would directly: then the client goes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(), scaled(0.5))
            writer.close()
            async with connect(proxy.url + "/after") as ws:  # the proxy still serves
                await ws.send("still here")
                assert await ws.recv() == "still here"
    with CaptureStore.open(capture) as store:
        fuzzed = next(s for s in store.iter_sessions() if s.route == "/f")
    assert fuzzed.close is not None
    assert "relay failed" not in (fuzzed.close.error or ""), fuzzed.close


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.lists(st.integers(0, 10_000), max_size=3))
def test_any_bytes_after_the_handshake(chunks: list[bytes], cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_one(chunks, cuts, Path(tmp) / "c.db"))
