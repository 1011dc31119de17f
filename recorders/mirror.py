"""Live shadow mirror: a copy of each client connection sent to a candidate server.

Each proxied connection may get a ``MirrorLink``: a parallel connection to
the candidate with the same route, query, headers and subprotocols. Client
messages reach it through a bounded queue (full means dropped and counted),
and everything the candidate sends is recorded as a session of the run
``mirror`` whose ``origin`` is the primary session. Nothing here is ever
awaited by the primary path: a dead, slow or failing candidate cannot delay
or break the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Opcode,
    Provenance,
    Source,
)

__all__ = ["MIRROR_RUN", "MirrorLink", "MirrorStats"]


def drop_connection(ws: aiohttp.ClientWebSocketResponse[Any]) -> None:
    """Close the TCP connection under ``ws`` without another close frame (private aiohttp API).

    aiohttp's ``close()`` always sends a close frame of its own; once both
    close frames went by, a third must not follow.
    """
    ws._set_closed()
    ws._response.close()


MIRROR_RUN = "mirror"
"""The run that holds the candidate's sessions recorded by the live mirror."""

_OPCODES = {WSMsgType.TEXT: Opcode.TEXT, WSMsgType.BINARY: Opcode.BINARY}


@dataclass(slots=True)
class MirrorStats:
    """Counters shared by every mirror link of one proxy."""

    sessions: int = 0
    errors: int = 0
    dropped: int = 0


class MirrorLink:
    """Mirrors one client connection to the candidate at ``url``.

    Call ``feed()`` for each client data message and ``finish(close)`` when
    the primary session ends; ``run()`` is the task that does the rest.
    """

    def __init__(
        self,
        url: str,
        http: aiohttp.ClientSession,
        recorder: CaptureRecorder,
        *,
        origin: str,
        handshake: Handshake,
        headers: dict[str, str] | list[tuple[str, str]],
        stats: MirrorStats,
        ssl: Any = None,
        max_message_size: int = 16 * 2**20,
        max_queue: int = 1000,
        connect_timeout: float = 5.0,
        grace: float = 2.0,
        catch_up: float = 1.0,
    ) -> None:
        self.url = url
        self.http = http
        self.recorder = recorder
        self.origin = origin
        self.handshake = handshake
        self.headers = headers
        self.stats = stats
        self.ssl = ssl
        self.max_message_size = max_message_size
        self.connect_timeout = connect_timeout
        self.session_id = uuid.uuid4().hex[:12]
        self.queue: asyncio.Queue[tuple[WSMsgType, bytes] | Close] = asyncio.Queue(max_queue)
        self.grace = grace
        self.catch_up = catch_up
        self._ended = False
        self._expected = 0
        self._received = 0
        self._caught_up = asyncio.Event()
        self._ws: Any = None
        self._deadline: asyncio.TimerHandle | None = None
        self._closing = False  # the mirror itself began the close (or cut the candidate off)
        self._cut_off = False

    def feed(self, kind: WSMsgType, data: bytes) -> None:
        """Copy one client message to the candidate; never blocks (full queue drops it)."""
        try:
            self.queue.put_nowait((kind, data))
        except asyncio.QueueFull:
            self.stats.dropped += 1

    def finish(self, close: Close, server_messages: int = 0) -> None:
        """The primary session ended with ``close``: close the candidate alike.

        The candidate first gets up to ``catch_up`` seconds to send as many
        messages as the upstream did (``server_messages``), so replies to the
        last client messages are recorded; one that has not taken the queued
        messages ``grace`` seconds later is cut off, so a stalled candidate
        cannot hold the proxy up.
        """
        self._ended = True
        self._expected = server_messages
        while True:
            try:
                self.queue.put_nowait(close)
                break
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    self.stats.dropped += 1
        self._deadline = asyncio.get_running_loop().call_later(
            self.catch_up + self.grace, self._abort
        )

    def _abort(self) -> None:
        """Cut the candidate's connection at once (RST): a stalled peer never drains."""
        ws = self._ws
        if ws is None:
            return
        self._cut_off = True
        with contextlib.suppress(Exception):
            ws._response.connection.transport.abort()  # private aiohttp API
        if not ws.closed:
            drop_connection(ws)

    async def run(self) -> None:
        """Connect, relay the queued client messages, record the candidate's side."""
        self.stats.sessions += 1
        started, t0 = time.time(), time.monotonic()
        provenance = Provenance(source=Source.MIRROR, run=MIRROR_RUN, origin=self.origin)
        try:
            ws = await self.http.ws_connect(
                self.url,
                protocols=self.handshake.subprotocols,
                headers=self.headers,
                autoclose=False,
                autoping=True,
                compress=15,
                max_msg_size=self.max_message_size,
                decode_text=False,
                ssl=self.ssl,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.stats.errors += 1
            status = (
                getattr(e, "status", None)
                if isinstance(e, aiohttp.WSServerHandshakeError)
                else None
            )
            self.recorder.open_session(
                self.session_id, started, replace(self.handshake, status=status), provenance
            )
            error = (
                f"candidate refused the upgrade ({status})"
                if status
                else f"candidate unreachable: {e}"
            )
            if not status:
                self.recorder.close_session(
                    self.session_id,
                    Close(None, by=Closer.ERROR, error=error, t=time.monotonic() - t0),
                )
            await self._drain()
            return
        self._ws = ws
        self.recorder.open_session(
            self.session_id,
            started,
            replace(self.handshake, status=101, subprotocol=ws.protocol),
            provenance,
        )
        seq = [0]

        def record(direction: Direction, opcode: Opcode, payload: bytes) -> None:
            self.recorder.mirror_message(
                self.session_id, seq[0], time.monotonic() - t0, direction, opcode, payload
            )
            seq[0] += 1

        receiver = asyncio.get_running_loop().create_task(self._receive(ws, record, t0))
        failure: BaseException | None = None
        try:
            close = await self._send(ws, record)
            if close is not None and not ws.closed:
                self._closing = True
                code = close.code if close.code and close.by is not Closer.ERROR else 1000
                await ws.close(code=code, message=close.reason.encode())
        except Exception as e:  # the session still gets its close row, naming the failure
            failure = e
        finally:
            if not receiver.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(receiver), 5.0)
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
            if not ws.closed:
                drop_connection(ws)
            if self._deadline is not None:
                self._deadline.cancel()
            end: Close | None = None
            if receiver.done() and not receiver.cancelled():
                problem = receiver.exception()
                if problem is not None and failure is None:
                    failure = problem
                elif problem is None:
                    end = receiver.result()
            if failure is not None:
                self.stats.errors += 1
                end = Close(
                    None,
                    by=Closer.ERROR,
                    error=f"mirror failed: {type(failure).__name__}: {failure}",
                    t=time.monotonic() - t0,
                )
            self.recorder.close_session(
                self.session_id,
                end or Close(ws.close_code, by=Closer.CLIENT, t=time.monotonic() - t0),
            )

    async def _send(self, ws: Any, record: Any) -> Close | None:
        while True:
            item = await self.queue.get()
            if isinstance(item, Close):
                if self._received < self._expected:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._caught_up.wait(), self.catch_up)
                return item
            if ws.closed:
                self.stats.dropped += 1  # the candidate is gone: this one never reached it
                continue
            kind, data = item
            try:
                await ws.send_frame(data, kind)
            except (ConnectionError, RuntimeError):
                self.stats.dropped += 1
                continue
            record(Direction.CLIENT, _OPCODES[kind], data)

    async def _receive(self, ws: Any, record: Any, t0: float) -> Close | None:
        while True:
            msg = await ws.receive()
            if msg.type in _OPCODES:
                record(Direction.SERVER, _OPCODES[msg.type], msg.data)
                self._received += 1
                if self._ended and self._received >= self._expected:
                    self._caught_up.set()
            elif msg.type is WSMsgType.CLOSE:
                # The candidate closed first: answer it and note who closed.
                await ws.close(code=msg.data or 1000, message=(msg.extra or "").encode())
                return Close(
                    msg.data or None, msg.extra or "", by=Closer.SERVER, t=time.monotonic() - t0
                )
            elif msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING):
                if self._closing:
                    return None
                # Gone without a close frame (a reset, a dropped connection): an error,
                # not a close by the mirror.
                if self._cut_off:
                    error = (
                        "candidate cut off: it had not taken the mirrored messages "
                        f"{self.catch_up + self.grace:g} s after the client's session ended"
                    )
                else:
                    problem = ws.exception()
                    error = "candidate connection lost without a close frame" + (
                        f" ({type(problem).__name__}: {problem})" if problem else ""
                    )
                return Close(None, by=Closer.ERROR, error=error, t=time.monotonic() - t0)
            elif msg.type is WSMsgType.ERROR:
                return Close(
                    None, by=Closer.ERROR, error=f"candidate: {msg.data}", t=time.monotonic() - t0
                )

    async def _drain(self) -> None:
        """Consume the queue until the primary ends, so feeding stays cheap."""
        while not self._ended:
            item = await self.queue.get()
            if isinstance(item, Close):
                return
