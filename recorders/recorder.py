"""The recording side of the proxy: one writer task feeding a CaptureWriter.

Relays hand events to ``CaptureRecorder`` with non-blocking calls that only
append to a bounded in-memory queue; a single writer task drains the queue
in batches and runs redaction and SQLite on one dedicated thread, so the
event loop never waits on the disk (and, at a lower priority, never waits
for the CPU the writer uses). The store fails open: when a write
fails, traffic keeps flowing, one warning is logged, and the lost frames
are counted in ``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from wsshadow.replay.capture.model import Close, Direction, Handshake, Opcode, Provenance, Run
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.errors import WsShadowError

__all__ = ["CaptureRecorder", "RecorderStats"]

log = logging.getLogger("wsshadow.record")

_OPEN, _MSG, _CLOSE, _RUN, _MIRROR_MSG = 0, 1, 2, 3, 4

MIRROR_SHARE = 4
"""The live mirror's messages get a budget of their own, a quarter of the primary's
(events and bytes), on top of it: a flooding candidate fills its own budget and
loses its own messages, never the recording's."""

WRITER_NICE = 10
"""How much nicer than the relay the writer thread runs (Linux).

Relaying must never wait for recording: where the CPU is short (client,
server and proxy on two cores), the scheduler then gives the relay the
core first and the writer catches up in the gaps; its queue holds 200,000
events meanwhile. Where the CPU is not short, nothing changes. At this
level the writer still gets about a tenth of a contended core, which
writes about 20,000 frames/s.
"""


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority by WRITER_NICE (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)


@dataclass(slots=True)
class RecorderStats:
    """Counters of what the recorder saw, wrote and dropped."""

    sessions: int = 0
    messages: int = 0
    bytes: int = 0
    dropped: int = 0
    written: int = 0
    mirror_dropped: int = 0
    """Messages of the live mirror's sessions dropped (their own budget full, or the store)."""


class CaptureRecorder:
    """A bounded queue of capture events and the one task that writes them.

    Call ``start()`` inside a running loop, then ``open_session`` /
    ``message`` / ``close_session`` / ``put_run`` from any coroutine (they
    never block), and ``await aclose()`` to write everything queued.
    ``max_queue`` bounds the events waiting for the writer and
    ``max_queue_bytes`` their payload bytes; past either, messages are
    dropped and counted (the disk cannot keep up, traffic must not wait,
    and memory must stay bounded even when the messages are large). The
    live mirror's messages (``mirror_message``) have a separate budget of a
    ``MIRROR_SHARE``th of both, and are counted in ``mirror_dropped``.
    """

    def __init__(
        self,
        store: CaptureStore,
        *,
        max_queue: int = 200_000,
        max_queue_bytes: int = 256 * 2**20,
        batch: int = 5000,
        linger: float = 0.05,
    ):
        self.store = store
        self.linger = linger
        self._stats = RecorderStats()
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._queued_bytes = 0  # payload bytes of the recording's messages in the queue
        self._queued = 0  # the recording's events in the queue (not the mirror's)
        self.max_mirror_queue = max(1, max_queue // MIRROR_SHARE)
        self.max_mirror_bytes = max(1, max_queue_bytes // MIRROR_SHARE)
        self._mirror_queued = 0
        self._mirror_queued_bytes = 0
        self._mirror_dropped = 0
        self._mirror_dropped_on_write = 0  # only touched by the writer thread
        self._mirror_pending = 0  # mirror frames in the writer's unflushed batch
        self.batch = batch
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="wsshadow-writer", initializer=_lower_priority
        )
        self._writer = store.writer(batch_size=1 << 30)  # we decide when to flush
        self._failed = False
        self._lost_sessions: set[str] = set()
        self._dropped_on_write = 0  # only touched by the writer thread
        self._written = 0

    @property
    def stats(self) -> RecorderStats:
        """A snapshot of the counters."""
        s = self._stats
        return RecorderStats(
            s.sessions,
            s.messages,
            s.bytes,
            s.dropped + self._dropped_on_write,
            self._written,
            self._mirror_dropped + self._mirror_dropped_on_write,
        )

    # ---- producer side (event loop, never blocks) --------------------------

    def _put(self, item: tuple[Any, ...], frames: int = 0) -> bool:
        if item[0] == _CLOSE:
            # A close is one small event a session: always kept, so no session
            # (the mirror's included) is left without its end.
            self._queue.append(item)
        elif self._queued >= self.max_queue:
            self._stats.dropped += frames
            self._warn_once("recording queue full: the capture store cannot keep up")
            return False
        else:
            self._queued += 1
            self._queue.append(item)
        if not self._wake.is_set():
            self._wake.set()
        return True

    def open_session(
        self,
        session_id: str,
        started_at: float,
        handshake: Handshake,
        provenance: Provenance | None = None,
    ) -> None:
        """Record that a session opened (its handshake is redacted on write)."""
        self._stats.sessions += 1
        if not self._put((_OPEN, session_id, started_at, handshake, provenance)):
            self._lost_sessions.add(session_id)

    def message(
        self,
        session_id: str,
        seq: int,
        t: float,
        direction: Direction,
        opcode: Opcode,
        payload: bytes | str,
    ) -> None:
        """Record one message; a text payload may be UTF-8 bytes (decoded on the writer thread)."""
        size = len(payload)
        stats = self._stats
        stats.messages += 1
        stats.bytes += size
        # The hot path: _put() inlined, with the bound on queued bytes that only messages need.
        queue = self._queue
        if self._queued >= self.max_queue or self._queued_bytes + size > self.max_queue_bytes:
            stats.dropped += 1
            self._warn_once("recording queue full: the capture store cannot keep up")
            return
        self._queued_bytes += size
        self._queued += 1
        queue.append((_MSG, session_id, seq, t, direction, opcode, payload))
        if not self._wake.is_set():
            self._wake.set()

    def mirror_message(
        self,
        session_id: str,
        seq: int,
        t: float,
        direction: Direction,
        opcode: Opcode,
        payload: bytes | str,
    ) -> None:
        """``message`` for the live mirror's sessions, within the mirror's own budget:
        past it the message is dropped and counted in ``mirror_dropped``."""
        size = len(payload)
        self._stats.messages += 1
        self._stats.bytes += size
        if (
            self._mirror_queued >= self.max_mirror_queue
            or self._mirror_queued_bytes + size > self.max_mirror_bytes
        ):
            if self._mirror_dropped == 0:
                log.warning(
                    "mirror recording budget full (%d messages, %d bytes waiting): the "
                    "candidate's messages are dropped and counted, the recording's are not",
                    self._mirror_queued,
                    self._mirror_queued_bytes,
                )
            self._mirror_dropped += 1
            return
        self._mirror_queued += 1
        self._mirror_queued_bytes += size
        self._queue.append((_MIRROR_MSG, session_id, seq, t, direction, opcode, payload))
        if not self._wake.is_set():
            self._wake.set()

    def close_session(self, session_id: str, close: Close) -> None:
        """Record how a session ended."""
        self._put((_CLOSE, session_id, close))

    def put_run(self, run: Run) -> None:
        """Create or update a run's row (for the live mirror)."""
        self._put((_RUN, run))

    # ---- writer task -------------------------------------------------------

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="wsshadow-recorder"
            )

    async def aclose(self) -> None:
        """Write everything queued, stop the writer task and its thread."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._queue) < self.batch and not self._closing and self.linger:
                # Gather a batch: waking the writer thread per message costs more
                # (GIL hand-offs) than the writes themselves.
                await asyncio.sleep(self.linger)
            batch = []
            queue = self._queue
            taken = count = mirror_taken = mirror_count = 0
            for _ in range(min(len(queue), self.batch)):
                item = queue.popleft()
                kind = item[0]
                if kind == _MSG:
                    taken += len(item[6])
                    count += 1
                elif kind == _MIRROR_MSG:
                    mirror_taken += len(item[6])
                    mirror_count += 1
                elif kind != _CLOSE:
                    count += 1
                batch.append(item)
            self._queued_bytes -= taken
            self._queued -= count
            self._mirror_queued_bytes -= mirror_taken
            self._mirror_queued -= mirror_count
            try:
                await loop.run_in_executor(self._thread, self._write, batch)
            except Exception as e:  # fail open: never let recording stop traffic
                self._warn_once(f"capture store failed, traffic continues unrecorded: {e}")

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """On the writer thread: redact, queue rows into the CaptureWriter, flush once."""
        writer = self._writer
        lost = self._lost_sessions
        opened: list[str] = []
        frames: list[tuple[Any, ...]] = []
        for item in batch:
            kind = item[0]
            if kind == _MSG:
                if item[1] in lost:
                    self._dropped_on_write += 1
                else:
                    frames.append(item[1:])
            elif kind == _MIRROR_MSG:
                if item[1] in lost:
                    self._mirror_dropped_on_write += 1
                else:
                    frames.append(item[1:])
                    self._mirror_pending += 1
            elif kind == _OPEN:
                writer.open_session(item[1], item[2], item[3], item[4])
                opened.append(item[1])
            elif kind == _CLOSE:
                writer.close_session(item[1], item[2])
            else:
                writer.append_frames(frames)
                frames.clear()
                self._flush(opened)
                try:
                    self.store.put_run(item[1])
                except (WsShadowError, sqlite3.Error, OSError) as e:
                    self._warn_once(f"capture store failed, traffic continues unrecorded: {e}")
        writer.append_frames(frames)
        self._flush(opened)

    def _flush(self, opened: list[str]) -> None:
        try:
            self._written += self._writer.flush()
        except (WsShadowError, sqlite3.Error, OSError) as e:
            _, frames = self._writer.discard()
            mirror = min(frames, self._mirror_pending)
            self._dropped_on_write += frames - mirror
            self._mirror_dropped_on_write += mirror
            self._lost_sessions.update(opened)
            self._warn_once(f"capture store failed, traffic continues unrecorded: {e}")
        self._mirror_pending = 0
        opened.clear()

    def _warn_once(self, text: str) -> None:
        if not self._failed:
            self._failed = True
            log.warning("%s", text)
