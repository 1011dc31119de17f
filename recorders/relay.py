"""One proxied WebSocket connection: frames relayed as they came, read for the capture.

After both handshakes the relay owns the bytes of both TCP connections:
aiohttp's protocols hand every chunk they read to a ``Pipe`` (as a
WebSocket "payload parser", the hook aiohttp's own WebSocket support
uses). A pipe splits the chunk into whole frames and writes them to the
other side in one write, byte-exact: masks, fragmentation, compression
and control frames as the sender made them, so each peer sees what it
would see directly, close codes and protocol errors included. Reading
them for the capture costs a header parse per frame, an unmask of client
frames and an inflate of compressed messages; nothing is re-encoded.

The proxy speaks only when a peer cannot: a message over the size limit
(1009 to both sides), an upstream gone without a close frame (1014 to
the client), a shutdown (1001 to both). Backpressure: while one side's
socket buffer is full, reads from the other side pause, so memory stays
bounded; ``cut_if_stalled`` ends a session whose peer stopped reading.

aiohttp parts used beyond its documented API (hence the pin to 3.14.x) are
listed, and checked by a test, in ``aiohttp_private.py``: ``set_parser`` on
the server's ``RequestHandler`` and the client's ``ResponseHandler`` (how
aiohttp's own WebSocket support takes over a connection), their
``writing_paused`` and ``_drain_helper()``, and the transport and protocol
of the client response's ``connection``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType

from wsshadow.recorders.frames import (
    Deflate,
    Inflater,
    close_frame,
    parse_close,
)
from wsshadow.recorders.pipe import (
    _CLIENT,
    _CLOSER,
    _NAME,
    _SERVER,
    BAD_GATEWAY,
    Pipe,
)
from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.replay.capture.model import Close, Closer, Direction, Opcode

__all__ = ["BAD_GATEWAY", "Relay"]

log = logging.getLogger("wsshadow.record")


class Relay:
    """Relays one client connection to its upstream connection and records it.

    Built after both handshakes, with each side's aiohttp transport and
    protocol; ``attach()`` hands the connections over, ``run()`` waits for
    the end and returns how the session closed. ``deflate`` is what the
    upstream negotiated (None: no compression). ``feed`` (optional) receives
    a copy of each client data message for the live mirror; it must never block.
    """

    def __init__(
        self,
        session_id: str,
        client: tuple[Any, Any],
        upstream: tuple[Any, Any],
        recorder: CaptureRecorder,
        t0: float,
        *,
        max_message_size: int,
        deflate: Deflate | None = None,
        close_timeout: float = 5.0,
        feed: Callable[[WSMsgType, bytes], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.recorder = recorder
        self.t0 = t0
        self.close_timeout = close_timeout
        self.seq = 0
        self.close: Close | None = None
        self.violation: str | None = None
        self.proxy_closing = False  # the proxy sent close frames of its own
        self.settling = False  # a close frame passed: see _settle()
        self.done = False
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

        def inflater(no_takeover: bool) -> Inflater | None:
            if deflate is None:
                return None
            return Inflater(max_message_size, no_context_takeover=no_takeover)

        self.client = Pipe(
            self,
            _CLIENT,
            client[0],
            client[1],
            inflater(bool(deflate and deflate.client_no_context_takeover)),
            max_message_size,
            feed,
        )
        self.upstream = Pipe(
            self,
            _SERVER,
            upstream[0],
            upstream[1],
            inflater(bool(deflate and deflate.server_no_context_takeover)),
            max_message_size,
            None,
        )
        self.client.peer, self.upstream.peer = self.upstream, self.client

    @property
    def data_messages(self) -> dict[Direction, int]:
        """Data messages relayed each way so far."""
        return {_CLIENT: self.client.data_messages, _SERVER: self.upstream.data_messages}

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _record(self, direction: Direction, opcode: Opcode, payload: bytes) -> None:
        seq = self.seq
        self.seq = seq + 1
        self.recorder.message(
            self.session_id, seq, time.monotonic() - self.t0, direction, opcode, payload
        )

    def _set_close(self, close: Close) -> None:
        if self.close is None:
            self.close = close

    def _set_error(self, error: str, code: int | None = None) -> None:
        """The session ended by error (unless it had ended already)."""
        self._set_close(Close(code, by=Closer.ERROR, error=error, t=self._now()))

    def _abort_both(self) -> None:
        """Cut both connections at once and end the session."""
        self.client.close_transport(abort=True)
        self.upstream.close_transport(abort=True)
        self._finish()

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- running -------------------------------------------------------------

    def attach(self, upstream_protocol: Any, client_protocol: Any) -> None:
        """Take over both connections' bytes (what arrived early is relayed at once)."""
        client_protocol.set_parser(self.client)
        upstream_protocol.set_parser(self.upstream, self.upstream)

    async def run(self) -> Close:
        """Relay until both connections ended; returns how the session closed."""
        try:
            await self._ended
        finally:
            if self._timer is not None:
                self._timer.cancel()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if not self.done:  # cancelled
                self._set_error("relay cancelled")
                self._abort_both()
        self._set_error("connection lost")
        assert self.close is not None
        return self.close

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            if not self._ended.done():
                self._ended.set_result(None)

    def _arm_close_timer(self) -> None:
        if self._timer is None and not self.done:
            self._timer = self._loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if not self.done:
            self._set_error("close handshake timed out")
            self._abort_both()

    # ---- closing -------------------------------------------------------------

    def _close_frame(self, pipe: Pipe, payload: bytes) -> None:
        """``pipe``'s side sent a close frame (relayed to the other side)."""
        code, reason = parse_close(payload)
        self._record(pipe.side, Opcode.CLOSE, payload)
        pipe.got_close = True
        pipe.peer.sent_close = True
        if self.violation is not None:
            self._set_close(
                Close(code, reason, by=Closer.ERROR, error=self.violation, t=self._now())
            )
        else:
            self._set_close(Close(code, reason, by=_CLOSER[pipe.side], t=self._now()))
        self.settling = True
        self._arm_close_timer()

    def _close_reply(self, pipe: Pipe, payload: bytes) -> None:
        """A reply to a close frame of the proxy's own (not relayed)."""
        if not pipe.got_close:
            self._record(pipe.side, Opcode.CLOSE, payload)
            pipe.got_close = True
            self.settling = True

    def _settle(self) -> None:
        """End each connection whose close handshake is complete (both frames went by)."""
        self.settling = False
        for pipe in (self.client, self.upstream):
            if pipe.got_close and pipe.sent_close:
                pipe.close_transport()

    def _proxy_close(self, code: int, reason: str = "") -> None:
        """Close both sides with a close frame of the proxy's own."""
        self.proxy_closing = True
        for pipe in (self.client, self.upstream):
            if not pipe.sent_close and not pipe.eof and not pipe.closed_by_us:
                pipe.transport.write(close_frame(code, reason, masked=pipe.side is _SERVER))
                pipe.sent_close = True
        self._settle()
        self._arm_close_timer()

    def _too_big(self, pipe: Pipe) -> bool:
        self._set_error(
            f"{_NAME[pipe.side]} sent a message over the size limit ({pipe.limit:,} bytes)", 1009
        )
        self._proxy_close(1009)
        return False

    def _on_eof(self, pipe: Pipe) -> None:
        """``pipe``'s connection ended (closed by its peer, or by us)."""
        if pipe.eof:
            return
        pipe.eof = True
        pipe.pending = None
        peer = pipe.peer
        if (
            not self.done
            and not pipe.closed_by_us
            and not pipe.got_close
            and not self.proxy_closing
        ):
            if pipe.side is _SERVER:
                self._set_error("upstream vanished without a close frame")
                # A gateway's answer: the client can tell this from its own network failing.
                self._proxy_close(BAD_GATEWAY, "upstream connection lost")
            else:
                self._set_error("client vanished without a close frame")
                # The upstream sees what a direct peer would: the connection dropping.
                peer.close_transport()
        elif not peer.eof and not (self.proxy_closing and not peer.got_close and peer.sent_close):
            peer.close_transport()
        if pipe.eof and peer.eof:
            self._finish()

    def _failed(self, e: Exception) -> None:
        log.exception("session %s: relay failed", self.session_id)
        self._set_error(f"relay failed: {e!r}")
        self._abort_both()

    async def shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        """Close both sides with ``code`` (the proxy is stopping); ``run()`` sees the end."""
        if self.done:
            return
        self._set_close(
            Close(code, reason, by=Closer.ERROR, error="recording proxy shut down", t=self._now())
        )
        self._proxy_close(code, reason)

    def cut_if_stalled(self, limit: float, now: float | None = None) -> bool:
        """End the session if one side has taken none of the data waiting for it for ``limit`` s.

        That side stopped reading (its buffers are full): its connection is
        aborted, the other side's dropped as for a vanished peer, and the
        session is recorded as closed by error. A slow reader that drains
        anything between two checks is not cut. Returns True if it cut.
        """
        now = time.monotonic() if now is None else now
        for pipe in (self.client, self.upstream):
            since = pipe.paused_since
            if not since or pipe.eof:
                pipe.unsent = 0
                continue
            unsent = pipe.transport.get_write_buffer_size()
            drained = unsent < pipe.unsent
            pipe.unsent = unsent
            if drained:
                pipe.paused_since = now  # it took some: slow, not stalled
                continue
            if now - since <= limit:
                continue
            self._set_error(f"{_NAME[pipe.side]} stopped reading: took nothing for {limit:g} s")
            pipe.close_transport(abort=True)
            pipe.peer.close_transport()
            return True
        return False
