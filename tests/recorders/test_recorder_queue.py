"""The recorder's queue is bounded in events and in bytes; past either, messages are dropped and counted."""

from __future__ import annotations

import asyncio
import time

from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.replay.capture.model import Direction, Handshake, Opcode, Provenance, Source
from wsshadow.replay.capture.store import CaptureStore


async def test_queued_bytes_are_bounded_and_drops_counted_exactly(capture_path):
    big = b"x" * 100_000
    with CaptureStore.open(capture_path, create=True) as store:
        rec = CaptureRecorder(store, max_queue_bytes=1_000_000)
        rec.start()
        rec.open_session("s1", time.time(), Handshake("/big"), Provenance(Source.PROXY))
        # No await in between: the writer cannot take anything yet.
        for seq in range(30):
            rec.message("s1", seq, 0.0, Direction.SERVER, Opcode.BINARY, big)
        assert rec.stats.dropped == 20  # ten fit in 1,000,000 bytes
        for _ in range(100):  # once the writer took them, there is room again
            await asyncio.sleep(0.02)
            if rec.stats.written == 10:
                break
        rec.message("s1", 30, 0.0, Direction.SERVER, Opcode.BINARY, big)
        await rec.aclose()
        assert (rec.stats.messages, rec.stats.dropped, rec.stats.written) == (31, 20, 11)
        [s] = list(store.iter_sessions())
    assert [m.seq for m in s.messages] == [*range(10), 30]
    assert all(m.payload == big for m in s.messages)
