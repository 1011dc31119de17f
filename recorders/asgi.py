"""ASGI middleware that records an app's WebSocket sessions into a capture.

Wrap any ASGI app (FastAPI, Starlette, Quart, Django Channels)::

    app = WsShadowRecorder(app, capture="captures/prod.db", sample=0.1)

The middleware watches the ``websocket.*`` events that pass between the
server and the app and passes every one of them on unchanged: the app and
its clients see exactly what they would see unwrapped. HTTP and lifespan
traffic is not touched, except that a lifespan shutdown flushes the capture.

Recording never blocks the event loop on SQLite: the loop only puts small
tuples on a queue, and one background thread owns the store (opened in that
thread, ``CaptureThread`` in asgi_writer.py) and writes them in batches
through ``CaptureWriter``. Recording
fails open: a store that cannot be opened or written is logged once, what
could not be written is counted in ``stats``, and the app goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import random
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wsshadow.recorders.asgi_writer import CaptureThread, stop_writer
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
)
from wsshadow.replay.capture.redact import Redactor

__all__ = ["ASGIApp", "RecorderStats", "WsShadowRecorder"]

Scope = MutableMapping[str, Any]
Event = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""The ASGI 3 application signature."""

log = logging.getLogger("wsshadow.recorder")


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counters of one recorder, read with ``recorder.stats``.

    ``sessions_seen`` counts every WebSocket connection, ``sessions_sampled``
    those chosen for recording, ``sessions_written`` / ``frames_written``
    what reached the capture file, and ``sessions_dropped`` /
    ``frames_dropped`` what was lost, for any reason. Of those frames,
    ``frames_lost_to_store`` were taken but could not be written (the store
    could not be opened, or a write failed: a full disk, a broken file) and
    ``frames_lost_to_queue`` never reached the writer (its queue was full, or
    the event could not be read). ``store_error`` holds the first store
    failure, if any.
    """

    sessions_seen: int
    sessions_sampled: int
    sessions_written: int
    frames_written: int
    sessions_dropped: int
    frames_dropped: int
    store_error: str | None
    frames_lost_to_store: int = 0
    frames_lost_to_queue: int = 0


def _headers(raw: Any) -> tuple[tuple[str, str], ...]:
    """ASGI byte header pairs as (str, str) pairs (latin-1, as HTTP says)."""
    out = []
    for pair in raw or ():
        name, value = pair
        out.append(
            (
                name.decode("latin-1") if isinstance(name, bytes) else str(name),
                value.decode("latin-1") if isinstance(value, bytes) else str(value),
            )
        )
    return tuple(out)


def _code(value: Any) -> int | None:
    """A close code as an int (apps and servers are not always strict about types)."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _reason(value: Any) -> str:
    """A close reason as text: FastAPI, for one, closes with a list of validation errors."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class _Session:
    """What the middleware tracks about one live, sampled WebSocket session."""

    __slots__ = ("accepted", "closed", "handshake", "id", "seq", "started_at", "t0")

    def __init__(self, scope: Scope) -> None:
        self.id = uuid.uuid4().hex
        self.t0 = time.monotonic()
        self.started_at = time.time()
        raw_path = scope.get("raw_path")
        route = (
            raw_path.decode("latin-1")
            if isinstance(raw_path, bytes) and raw_path
            else str(scope.get("path") or "/")
        )
        query = scope.get("query_string") or b""
        self.handshake = Handshake(
            route=route,
            query=query.decode("latin-1") if isinstance(query, bytes) else str(query),
            request_headers=_headers(scope.get("headers")),
            subprotocols=tuple(scope.get("subprotocols") or ()),
            status=None,
        )
        self.seq = 0
        self.accepted = False
        self.closed = False

    def t(self) -> float:
        return time.monotonic() - self.t0


class WsShadowRecorder:
    """ASGI middleware recording the wrapped app's WebSocket sessions.

    ``capture`` is the SQLite capture file (created mode 0600 if missing).
    ``sample`` is the fraction of sessions recorded, decided per session
    (``seed`` makes the decisions reproducible). ``redact`` is True (default
    redaction), False (``--no-redact``) or a ``Redactor``. Writes are
    batched every ``flush_interval`` seconds or ``batch_size`` frames;
    at most ``max_queue`` events wait in memory, more are dropped and counted.

    Call ``close()`` (or ``await aclose()``) to flush on shutdown; a lifespan
    shutdown does it for you, and so does interpreter exit.
    """

    def __init__(
        self,
        app: ASGIApp,
        capture: str | os.PathLike[str] = "captures/prod.db",
        *,
        sample: float = 1.0,
        redact: bool | Redactor = True,
        seed: int | None = None,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_queue: int = 100_000,
        close_timeout: float = 10.0,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be between 0 and 1, got {sample}")
        self.app = app
        self.capture = Path(capture)
        self.sample = sample
        self.redactor = redact if isinstance(redact, Redactor) else Redactor(enabled=bool(redact))
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.close_timeout = close_timeout
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: CaptureThread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._pid = os.getpid()
        self._closed = False
        self._seen = 0
        self._sampled = 0
        self._queue_dropped = 0
        self._observe_failures = 0
        self._queue_dropped_sessions: set[str] = set()

    # ---- lifecycle -----------------------------------------------------------

    def _writer(self) -> CaptureThread | None:
        """The writer thread, started on first use (after any fork of workers)."""
        if self._closed:
            return None
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            return thread
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._queue = queue.SimpleQueue()
                self._thread = CaptureThread(
                    self.capture,
                    self.redactor,
                    self._queue,
                    self.batch_size,
                    self.flush_interval,
                    lambda: self._queue_dropped,
                )
                self._thread.start()
                self._finalizer = weakref.finalize(
                    self, stop_writer, self._queue, self._thread, self.close_timeout
                )
            return self._thread

    def close(self) -> None:
        """Flush everything recorded so far and stop the writer thread (idempotent).

        Blocks until the capture is written (at most ``close_timeout``
        seconds); sessions that start afterwards pass through unrecorded.
        """
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    @property
    def stats(self) -> RecorderStats:
        """A snapshot of the recorder's counters."""
        w = self._thread
        return RecorderStats(
            sessions_seen=self._seen,
            sessions_sampled=self._sampled,
            sessions_written=w.sessions_written if w else 0,
            frames_written=w.frames_written if w else 0,
            sessions_dropped=(w.sessions_dropped if w else 0),
            frames_dropped=(w.frames_dropped if w else 0) + self._queue_dropped,
            store_error=w.error if w else None,
            frames_lost_to_store=w.frames_dropped if w else 0,
            frames_lost_to_queue=self._queue_dropped,
        )

    # ---- ASGI ----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if kind != "websocket":
            await self.app(scope, receive, send)
            return
        session = self._start(scope)
        if session is None:
            await self.app(scope, receive, send)
            return
        await self._record(session, scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Event) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                await self.aclose()
            await send(message)

        return wrapped

    def _start(self, scope: Scope) -> _Session | None:
        """Decide whether to record this session; never raises."""
        try:
            self._seen += 1
            if self._closed or self.sample <= 0.0:
                return None
            if self.sample < 1.0 and self._rng.random() >= self.sample:
                return None
            if self._writer() is None:
                return None
            self._sampled += 1
            return _Session(scope)
        except Exception as e:
            log.warning("wsshadow recorder: cannot record a session (%s)", e)
            return None

    def _not_recorded(self, what: str, exc: BaseException) -> None:
        """An event the recorder failed to take: counted as a dropped frame, warned once."""
        self._queue_dropped += 1
        self._observe_failures += 1
        if self._observe_failures == 1:
            log.warning(
                "wsshadow recorder: a %s was not recorded (%s); counted as dropped", what, exc
            )

    def _put(self, item: tuple[Any, ...]) -> None:
        """Queue one event for the writer thread; drops (and counts) when full."""
        if item[0] == "msg" and self._queue.qsize() >= self.max_queue:
            self._queue_dropped += 1
            if self._queue_dropped == 1:
                log.warning("wsshadow recorder: queue full, dropping frames (store too slow)")
            return
        self._queue.put(item)

    def _message(self, session: _Session, direction: Direction, event: Event, t: float) -> None:
        text = event.get("text")
        if text is not None:
            message = Message(session.seq, t, direction, Opcode.TEXT, str(text))
        else:
            data = event.get("bytes")
            message = Message(session.seq, t, direction, Opcode.BINARY, bytes(data or b""))
        session.seq += 1
        self._put(("msg", session.id, message))

    def _open(
        self, session: _Session, status: int | None, subprotocol: str | None, headers: Any
    ) -> None:
        response = _headers(headers)
        if subprotocol and not any(k.lower() == "sec-websocket-protocol" for k, _ in response):
            response = (*response, ("sec-websocket-protocol", subprotocol))
        handshake = replace(
            session.handshake, status=status, subprotocol=subprotocol, response_headers=response
        )
        self._put(("open", session.id, session.started_at, handshake))

    def _close(self, session: _Session, close: Close) -> None:
        if not session.closed:
            session.closed = True
            self._put(("close", session.id, close))

    def _observe_send(self, session: _Session, event: Event, t: float) -> None:
        kind = event.get("type")
        if kind == "websocket.send":
            self._message(session, Direction.SERVER, event, t)
        elif kind == "websocket.accept":
            session.accepted = True
            self._open(session, 101, event.get("subprotocol"), event.get("headers"))
        elif kind == "websocket.close":
            code = _code(event.get("code", 1000))
            reason = _reason(event.get("reason"))
            if not session.accepted:
                # Closing before accepting denies the handshake: servers answer 403.
                session.accepted = True
                self._open(session, 403, None, ())
                self._close(session, Close(code=None, reason=reason, by=Closer.SERVER, t=t))
            else:
                self._close(session, Close(code=code, reason=reason, by=Closer.SERVER, t=t))
        elif kind == "websocket.http.response.start":
            session.accepted = True
            self._open(session, int(event.get("status", 403)), None, event.get("headers"))
            self._close(session, Close(code=None, by=Closer.SERVER, t=t))

    def _observe_receive(self, session: _Session, event: Event, t: float) -> None:
        kind = event.get("type")
        if kind == "websocket.receive":
            self._message(session, Direction.CLIENT, event, t)
        elif kind == "websocket.disconnect":
            if not session.accepted:
                session.accepted = True
                self._open(session, None, None, ())  # gone before any answer
            code = _code(event.get("code"))
            reason = _reason(event.get("reason"))
            if code == 1006:
                close = Close(1006, reason, Closer.ERROR, "connection lost (1006)", t)
            elif code == 1012:
                close = Close(1012, reason, Closer.SERVER, None, t)
            else:
                close = Close(code, reason, Closer.CLIENT, None, t)
            self._close(session, close)

    async def _record(self, session: _Session, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_receive() -> Event:
            event = await receive()
            try:
                self._observe_receive(session, event, session.t())
            except Exception as e:  # fail open: never let recording break the app
                self._not_recorded("receive", e)
            return event

        async def wrapped_send(event: Event) -> None:
            t = session.t()
            await send(event)
            try:
                self._observe_send(session, event, t)
            except Exception as e:
                self._not_recorded("send", e)

        try:
            await self.app(scope, wrapped_receive, wrapped_send)
        except BaseException as e:
            self._finish(session, f"application raised {type(e).__name__}")
            raise
        else:
            self._finish(session, None)

    def _finish(self, session: _Session, error: str | None) -> None:
        """Record how a session ended when no close event said so."""
        try:
            if session.closed:
                return
            t = session.t()
            if not session.accepted:
                session.accepted = True
                self._open(session, 500, None, ())
                self._close(session, Close(None, "", Closer.ERROR, error or "no handshake", t))
            elif error is not None:
                self._close(session, Close(None, "", Closer.ERROR, error, t))
            else:
                # The app returned without closing: the server drops the connection.
                self._close(session, Close(None, "", Closer.SERVER, None, t))
        except Exception as e:
            self._not_recorded("end", e)
