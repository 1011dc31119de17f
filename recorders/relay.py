"""One proxied WebSocket connection: frames relayed as they came, read for the capture.

After both handshakes the relay owns the bytes of both TCP connections:
aiohttp's protocols hand every chunk they read to a ``_Pipe`` (as a
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
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType

from wsshadow.recorders.frames import (
    OP_CLOSE,
    Deflate,
    Inflater,
    MessageTooBig,
    close_frame,
    parse_close,
)
from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.replay.capture.model import Close, Closer, Direction, Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

__all__ = ["BAD_GATEWAY", "Relay"]

log = logging.getLogger("wsshadow.record")

_CLIENT = Direction.CLIENT
_SERVER = Direction.SERVER
_OPCODES = {1: Opcode.TEXT, 2: Opcode.BINARY, 9: Opcode.PING, 10: Opcode.PONG}
_KINDS = {1: WSMsgType.TEXT, 2: WSMsgType.BINARY}
_NAME = {_CLIENT: "client", _SERVER: "upstream"}
_CLOSER = {_CLIENT: Closer.CLIENT, _SERVER: Closer.SERVER}
_NOT_EOF = (False, b"")

BAD_GATEWAY = 1014
"""The close code a client gets when its upstream vanished (RFC 6455 section 7.4.1)."""


class _Pipe:
    """What one side sends: split into frames, relayed to the other side, read for the capture.

    ``transport``/``protocol`` are this side's connection: the pipe reads
    from it, and the other pipe writes to it.
    """

    __slots__ = (
        "broken",
        "closed_by_us",
        "compressed",
        "data_messages",
        "eof",
        "feed",
        "got_close",
        "inflater",
        "limit",
        "loose_limit",
        "masked",
        "msg_op",
        "need",
        "parts",
        "paused_since",
        "peer",
        "pending",
        "protocol",
        "reading_paused",
        "relay",
        "sent_close",
        "side",
        "size",
        "transport",
        "unsent",
    )

    def __init__(
        self,
        relay: Relay,
        side: Direction,
        transport: Any,
        protocol: Any,
        inflater: Inflater | None,
        limit: int,
        feed: Callable[[WSMsgType, bytes], None] | None,
    ) -> None:
        self.relay = relay
        self.side = side
        self.transport = transport
        self.protocol = protocol
        self.inflater = inflater
        self.limit = limit
        # Compressed data can be a little larger than what it carries.
        self.loose_limit = limit + limit // 64 + 1024
        self.feed = feed
        self.masked = side is _CLIENT  # client frames must be masked, server frames not
        self.peer: _Pipe = self
        self.pending: bytearray | None = None  # the start of an incomplete frame
        self.need = 0  # bytes ``pending`` must reach before parsing again
        self.msg_op = 0  # opcode of a fragmented message in progress (0: none)
        self.compressed = False
        self.parts: list[bytes] = []
        self.size = 0
        self.broken = False  # broke the protocol: still relayed, no longer read
        self.data_messages = 0
        self.got_close = False  # this side sent a close frame
        self.sent_close = False  # a close frame went to this side
        self.eof = False  # this side's connection ended
        self.closed_by_us = False
        self.reading_paused = False
        self.paused_since = 0.0  # when writes to this side stopped fitting in its buffer
        self.unsent = 0

    # ---- aiohttp's payload-parser interface ----------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        try:
            self._relay(data)
        except Exception as e:  # never let a bug here leave the connections hanging
            self.relay._failed(e)
        return _NOT_EOF

    def feed_eof(self) -> None:
        self.relay._on_eof(self)

    def set_exception(self, exc: BaseException, cause: object = None) -> None:
        pass  # the connection's end reaches us through feed_eof

    # ---- relaying ------------------------------------------------------------

    def _relay(self, data: bytes) -> None:
        pending = self.pending
        if pending is not None:
            pending += data
            if len(pending) < self.need:
                return
            data = bytes(pending)
            self.pending = None
        relay = self.relay
        n = len(data)
        pos = start = 0  # frames in data[start:pos] are still to be written
        need = 0
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length > 125:
                if length == 126:
                    if n - pos < 4:
                        break
                    length = (data[head] << 8) | data[head + 1]
                    head += 2
                else:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(data[head : head + 8], "big")
                    head += 8
            mask = head if b1 & 0x80 else 0
            if mask:
                head += 4
            end = head + length
            opcode = b0 & 0x0F
            if end > n:
                if opcode < 3 and length + self.size > self._cap(b0, opcode):
                    # A message over the limit: refuse it before buffering it.
                    self._write(data, start, pos)
                    start = pos = n
                    relay._too_big(self)
                    break
                need = end - pos
                break
            payload = data[head:end]
            if mask:
                payload = apply_mask(payload, data[mask : mask + 4])
            if not self._frame(b0, opcode, payload, bool(mask)):
                self._write(data, start, pos)
                start = end
            pos = end
        self._write(data, start, pos)
        if pos < n and not relay.done:
            self.pending = bytearray(data[pos:])
            self.need = need
        if relay.settling:
            relay._settle()

    def _write(self, data: bytes, start: int, end: int) -> None:
        """Send ``data[start:end]`` (whole frames) to the other side; no copy for all of it."""
        if end > start and not self.peer.eof:
            self.peer.transport.write(data if end - start == len(data) else data[start:end])
            self._backpressure()

    def _backpressure(self) -> None:
        """Pause reading this side while the other side's socket buffer is full."""
        peer = self.peer
        if peer.protocol.writing_paused and not self.reading_paused:
            self.reading_paused = True
            peer.paused_since = time.monotonic()
            self.transport.pause_reading()
            self.relay._spawn(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        peer = self.peer
        try:
            await peer.protocol._drain_helper()  # aiohttp's wait for resume_writing()
        except (ConnectionError, RuntimeError):
            return
        peer.paused_since = 0.0
        self.reading_paused = False
        if not self.eof and not self.closed_by_us:
            self.transport.resume_reading()

    def _cap(self, b0: int, opcode: int) -> int:
        """The most payload a message may take on the wire so far (compressed: a bit more)."""
        compressed = self.compressed if opcode == 0 else bool(b0 & 0x40 and self.inflater)
        return self.loose_limit if compressed else self.limit

    def _frame(self, b0: int, opcode: int, payload: bytes, masked: bool) -> bool:
        """Read one whole frame for the capture; False: it must not be relayed."""
        relay = self.relay
        if relay.proxy_closing:
            # The proxy closed this side itself: only its close reply matters now.
            if opcode == OP_CLOSE:
                relay._close_reply(self, payload)
            return False
        if masked is not self.masked and not self.broken:
            what = "an unmasked frame" if self.masked else "a masked frame"
            self._violation(f"{_NAME[self.side]} sent {what}")
        if opcode < 3:
            if self.broken:
                return True
            rsv = b0 & 0x70
            if opcode:  # the first frame of a message
                if self.msg_op:
                    return self._violation("a new message began inside a fragmented one")
                compressed = rsv == 0x40 and self.inflater is not None
                if rsv and not compressed:
                    return self._violation("reserved bits set")
                if b0 & 0x80:  # a whole message in one frame: the common case
                    return self._message(opcode, payload, compressed)
                self.msg_op = opcode
                self.compressed = compressed
                self.parts = [payload]
                self.size = len(payload)
            else:
                if not self.msg_op:
                    return self._violation("a continuation frame with nothing to continue")
                if rsv:
                    return self._violation("reserved bits set")
                self.parts.append(payload)
                self.size += len(payload)
                if b0 & 0x80:
                    op, self.msg_op = self.msg_op, 0
                    whole = b"".join(self.parts)
                    self.parts = []
                    self.size = 0
                    return self._message(op, whole, self.compressed)
            if self.size > self._cap(b0, opcode):
                return relay._too_big(self)
            return True
        if opcode > 10 or opcode < 8:
            return self._violation(f"reserved opcode {opcode:#x}")
        if b0 & 0x70 or not b0 & 0x80 or len(payload) > 125:
            self._violation("a malformed control frame")
        if opcode == OP_CLOSE:
            relay._close_frame(self, payload)
        else:
            relay._record(self.side, _OPCODES[opcode], payload)
        return True

    def _message(self, opcode: int, payload: bytes, compressed: bool) -> bool:
        relay = self.relay
        if compressed:
            try:
                payload = self.inflater.inflate(payload)  # type: ignore[union-attr]
            except MessageTooBig:
                return relay._too_big(self)
            except zlib.error:
                return self._violation("a compressed message that does not inflate")
        elif len(payload) > self.limit:
            return relay._too_big(self)
        relay._record(self.side, _OPCODES[opcode], payload)
        self.data_messages += 1
        if self.feed is not None:
            self.feed(_KINDS[opcode], payload)
        return True

    def _violation(self, what: str) -> bool:
        """This side broke the protocol: relay on (the receiver answers it), stop reading."""
        self.broken = True
        self.msg_op = 0
        self.parts = []
        relay = self.relay
        if relay.violation is None:
            relay.violation = f"{_NAME[self.side]} broke the protocol: {what}"
        return True

    def close_transport(self, abort: bool = False) -> None:
        """End this side's connection (what was written is sent first, unless ``abort``)."""
        if self.closed_by_us or self.eof:
            return
        self.closed_by_us = True
        if abort:
            self.transport.abort()
        else:
            self.transport.close()


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

        self.client = _Pipe(
            self,
            _CLIENT,
            client[0],
            client[1],
            inflater(bool(deflate and deflate.client_no_context_takeover)),
            max_message_size,
            feed,
        )
        self.upstream = _Pipe(
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

    def _close_frame(self, pipe: _Pipe, payload: bytes) -> None:
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

    def _close_reply(self, pipe: _Pipe, payload: bytes) -> None:
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

    def _too_big(self, pipe: _Pipe) -> bool:
        self._set_error(
            f"{_NAME[pipe.side]} sent a message over the size limit ({pipe.limit:,} bytes)", 1009
        )
        self._proxy_close(1009)
        return False

    def _on_eof(self, pipe: _Pipe) -> None:
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
