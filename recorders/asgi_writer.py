"""The ASGI recorder's background writer: the one thread that owns the capture store.

``WsShadowRecorder`` (asgi.py) puts small tuples on a queue from the event
loop; ``CaptureThread`` takes them, writes them in batches through a
``CaptureWriter`` every ``flush_interval`` seconds or ``batch_size``
frames, and fails open: a store that cannot be opened or written is logged
once, what it lost is counted (``frames_dropped``, reported by the
recorder as ``frames_lost_to_store``), and a summary line is logged when
the thread stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsshadow.replay.capture.model import Message, Provenance, Source
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore, CaptureWriter

__all__ = ["STOP", "CaptureThread", "stop_writer"]

log = logging.getLogger("wsshadow.recorder")

STOP = object()
"""Put on the queue to make the thread drain what is queued, flush and close."""


class CaptureThread(threading.Thread):
    """The background thread that owns the capture store and writes batches."""

    def __init__(
        self,
        path: Path,
        redactor: Redactor,
        q: queue.SimpleQueue[Any],
        batch_size: int,
        flush_interval: float,
        queue_dropped: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(name="wsshadow-recorder", daemon=True)
        self.queue_dropped = queue_dropped
        self.path = path
        self.redactor = redactor
        self.q = q
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.store: CaptureStore | None = None
        self.writer: CaptureWriter | None = None
        self.error: str | None = None
        self.sessions_written = 0
        self.frames_written = 0
        self.sessions_dropped = 0
        self.frames_dropped = 0
        # Sessions whose row was lost: their later frames are dropped too, so a
        # capture never holds frames of a session it does not have.
        self._lost: set[str] = set()
        self._unflushed: set[str] = set()

    # ---- failure handling ----------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> None:
        if self.error is None:
            self.error = f"{what}: {exc}"
            log.warning(
                "wsshadow recorder: %s (%s); the app is unaffected, what cannot be written is "
                "dropped and counted (recorder.stats.frames_lost_to_store)",
                what,
                exc,
            )

    def _summary(self, queue_dropped: Callable[[], int]) -> None:
        """One line on how the recording went, when the writer stops: a warning if
        anything was dropped, so that no loss goes unreported."""
        lost = self.frames_dropped + queue_dropped()
        line = (
            f"wsshadow recorder: {self.path}: {self.sessions_written} sessions and "
            f"{self.frames_written} messages written"
        )
        if not lost and not self.sessions_dropped:
            log.info("%s, none dropped", line)
            return
        log.warning(
            "%s; %d messages dropped (%d lost to the store%s, %d to a full queue) "
            "and %d sessions",
            line,
            lost,
            self.frames_dropped,
            f": {self.error}" if self.error else "",
            lost - self.frames_dropped,
            self.sessions_dropped,
        )

    def _open(self) -> bool:
        if self.writer is not None:
            return True
        try:
            self.store = CaptureStore.open(self.path, create=True, redactor=self.redactor)
            self.writer = self.store.writer(batch_size=self.batch_size)
        except Exception as e:  # fail open: whatever the store raises, the app goes on
            self._fail(f"cannot open capture {self.path}", e)
            return False
        return True

    def _flush(self) -> None:
        if self.writer is None:
            return
        try:
            self.writer.flush()
        except Exception as e:
            self._drop_batch(e)
        else:
            self._written()
        self._unflushed.clear()

    def _drop_batch(self, exc: BaseException) -> None:
        """After a failed write: count what was queued as dropped and carry on."""
        assert self.writer is not None
        sessions, frames = self.writer.discard()
        self._lost |= self._unflushed
        self._unflushed.clear()
        self.sessions_dropped += sessions
        self.frames_dropped += frames
        self._fail(f"cannot write capture {self.path}", exc)

    def _written(self) -> None:
        assert self.writer is not None
        self.sessions_written = self.writer.written_sessions
        self.frames_written = self.writer.written_frames

    # ---- events --------------------------------------------------------------

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, sid = item[0], item[1]
        if not self._open() or sid in self._lost:
            if kind == "open":
                self.sessions_dropped += 1
                self._lost.add(sid)
            elif kind == "msg":
                self.frames_dropped += 1
            return
        assert self.writer is not None
        if kind == "open":
            _, _, started_at, handshake = item
            self.writer.open_session(sid, started_at, handshake, Provenance(source=Source.ASGI))
            self._unflushed.add(sid)
        elif kind == "msg":
            self._append(sid, item[2])
        elif kind == "close":
            self.writer.close_session(sid, item[2])

    def _append(self, sid: str, message: Message) -> None:
        assert self.writer is not None
        try:
            self.writer.append(sid, message)  # flushes itself every batch_size frames
        except Exception as e:
            self._drop_batch(e)
        else:
            if self.writer.pending == 0:  # that append flushed the batch
                self._unflushed.clear()
                self._written()

    def run(self) -> None:
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self.q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is STOP:
                break
            if item is not None:
                try:
                    self._handle(item)
                except Exception as e:  # a recording bug must not kill the thread
                    self._fail("recording error", e)
                if deadline is None:
                    deadline = time.monotonic() + self.flush_interval
            if deadline is not None and time.monotonic() >= deadline:
                self._flush()
                deadline = None
        # Drain what was queued before the stop, then flush and close.
        while True:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                break
            if item is not STOP:
                try:
                    self._handle(item)
                except Exception as e:
                    self._fail("recording error", e)
        self._flush()
        if self.store is not None:
            try:
                self.store.close()
            except Exception as e:
                self._fail(f"cannot close capture {self.path}", e)
        self._summary(self.queue_dropped)


def stop_writer(q: queue.SimpleQueue[Any], thread: CaptureThread, timeout: float) -> None:
    if thread.is_alive():
        q.put(STOP)
        thread.join(timeout)
