"""One direction of a proxied WebSocket connection: the bytes one side sends, split into
frames, written to the other side as they came, and read for the capture.

A ``Pipe`` is handed every chunk its side's aiohttp protocol reads (as a
WebSocket "payload parser"); it parses frame headers, unmasks client frames
and inflates compressed messages only to record them, and writes the
frames on byte-exact. It pauses its side's reading while the other side's
socket buffer is full (backpressure). The ``Relay`` (relay.py) owns two
pipes and decides how the session ends.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType

from wsshadow.recorders.frames import (
    OP_CLOSE,
    Inflater,
    MessageTooBig,
)
from wsshadow.replay.capture.model import Closer, Direction, Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from wsshadow.recorders.relay import Relay

__all__ = ["BAD_GATEWAY", "Pipe"]

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


class Pipe:
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
        self.peer: Pipe = self
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
