"""One proxied WebSocket connection: two pumps, an exact close handshake, recording.

The relay reads whole messages from each side with aiohttp (``autoping`` and
``autoclose`` off, text left as UTF-8 bytes) and writes them to the other
side as they came: text and binary byte-exact, pings and pongs forwarded
rather than answered, and close frames forwarded with their exact payload
so that each side sees the other's close code and reason. aiohttp answers
protocol errors itself (1002, 1007, 1009 for a message over the size
limit); the relay passes that code on to the other side. An upstream that
vanishes (no close frame) gets the client a 1014 (bad gateway) close; a
client that vanishes gets the upstream's connection dropped, as a direct
peer would see it. A side that stops reading blocks the pump writing to it
(aiohttp waits for the socket to drain), which stops the other side's reads
too, so memory stays bounded; ``cut_if_stalled`` ends such a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from recorders.recorder import CaptureRecorder
from replay.model import Close, Closer, Direction, Opcode

__all__ = [
    "BAD_GATEWAY",
    "ClientSideWebSocket",
    "Relay",
    "abort_connection",
    "close_payload",
    "coalesce_writes",
    "drop_connection",
]

_CLIENT = Direction.CLIENT
_SERVER = Direction.SERVER
_OPCODES = {
    WSMsgType.TEXT: Opcode.TEXT,
    WSMsgType.BINARY: Opcode.BINARY,
    WSMsgType.PING: Opcode.PING,
    WSMsgType.PONG: Opcode.PONG,
}
_SIDE_NAME = {_CLIENT: "client", _SERVER: "upstream"}
_FAIR_BURST = 256  # messages relayed from one connection before yielding to the others

AnyWS = web.WebSocketResponse | ClientWebSocketResponse[Any]

BAD_GATEWAY = 1014
"""The close code a client gets when its upstream vanished (RFC 6455 section 7.4.1)."""


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The application data of a close frame (empty when there is no code)."""
    if not code:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


class _Coalescer:
    """Stands in for a transport so that a burst of relayed messages goes out in one write.

    Pipelined traffic arrives many messages per read; relaying each with its
    own ``send()`` made system calls most of the proxy's cost. While ``hold``
    is set (the pump knows more messages are already waiting) frames are
    gathered; otherwise, and always for close frames, they go out at once, so
    a lone message (ping-pong) is not delayed at all.
    """

    __slots__ = ("_buffer", "hold", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._buffer: list[bytes] = []
        self.hold = False

    def write(self, data: bytes) -> None:
        if self.hold and not (data and data[0] & 0x0F == 0x8):
            self._buffer.append(data)
            return
        if self._buffer:
            self._buffer.append(data)
            self.flush()
        elif not self.transport.is_closing():
            self.transport.write(data)

    def flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def release(self) -> None:
        """End of a burst: send what was gathered."""
        self.hold = False
        if self._buffer:
            self.flush()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def coalesce_writes(ws: AnyWS) -> _Coalescer | None:
    """Route ``ws``'s frame writes through a ``_Coalescer`` (private aiohttp API)."""
    writer = ws._writer
    if writer is None:
        return None
    if not isinstance(writer.transport, _Coalescer):
        writer.transport = _Coalescer(writer.transport)  # type: ignore[assignment]
    return writer.transport  # type: ignore[return-value]


def _waiting_messages(ws: AnyWS) -> Any:
    """The deque of messages already parsed and not yet received (private aiohttp API)."""
    return getattr(getattr(ws, "_reader", None), "_buffer", None)


def _flush(ws: AnyWS) -> None:
    writer = ws._writer
    if writer is not None and isinstance(writer.transport, _Coalescer):
        writer.transport.release()


def abort_connection(ws: AnyWS) -> None:
    """Abort the TCP connection under ``ws`` at once, dropping unsent data (private API).

    For a peer that stopped reading: closing would wait for a drain that never comes.
    """
    ws._set_closed()
    writer = ws._writer
    transport = writer.transport if writer is not None else None
    if isinstance(transport, _Coalescer):
        transport._buffer.clear()
        transport = transport.transport
    if transport is not None:
        transport.abort()


def _buffered(ws: AnyWS) -> int:
    """Bytes written to ``ws`` and not yet taken by the kernel (private aiohttp API)."""
    writer = ws._writer
    transport = writer.transport if writer is not None else None
    if transport is None or transport.is_closing():
        return 0
    return int(transport.get_write_buffer_size())


def drop_connection(ws: AnyWS) -> None:
    """Close the TCP connection under ``ws`` without sending another close frame.

    aiohttp's ``close()`` always sends a close frame of its own; a relay that
    already forwarded both close frames must not send a third, so this marks
    the socket closed and drops the transport (private aiohttp API, kept here).
    """
    _flush(ws)
    ws._set_closed()
    if isinstance(ws, web.WebSocketResponse):
        ws._close_transport()
    else:
        ws._response.close()


class ClientSideWebSocket(web.WebSocketResponse):
    """The proxy's server side of a client connection.

    aiohttp answers a protocol error (1002, 1007, 1009) by closing at once.
    A server the client talked to directly would first have answered the
    valid messages that came before the bad frame, so this defers that close:
    the relay passes on the replies the upstream still owes, then calls
    ``close_deferred()``.
    """

    deferred_close: int | None = None
    _in_receive = False

    async def receive(self, timeout: float | None = None) -> Any:
        self._in_receive = True
        try:
            return await super().receive(timeout)
        finally:
            self._in_receive = False

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if self._in_receive and code != 1000 and not self.closed:
            self.deferred_close = code
            return True
        return await super().close(code=code, message=message, drain=drain)

    async def close_deferred(self) -> None:
        """Send the close a protocol error called for (see the class docstring)."""
        code, self.deferred_close = self.deferred_close, None
        if code:
            await super().close(code=code)


class Relay:
    """Relays one client connection to its upstream connection and records it.

    ``feed`` (optional) receives a copy of each client data message for the
    live mirror; it must never block.
    """

    def __init__(
        self,
        session_id: str,
        client: web.WebSocketResponse,
        upstream: ClientWebSocketResponse[Any],
        recorder: CaptureRecorder,
        t0: float,
        *,
        close_timeout: float = 5.0,
        feed: Callable[[WSMsgType, bytes], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.client = client
        self.upstream = upstream
        self.recorder = recorder
        self.t0 = t0
        self.close_timeout = close_timeout
        self.feed = feed
        self.seq = 0
        self.data_messages = {_CLIENT: 0, _SERVER: 0}
        self._last_at = {_CLIENT: 0.0, _SERVER: 0.0}
        self.close: Close | None = None
        self._sent_close = {_CLIENT: False, _SERVER: False}
        self._got_close = {_CLIENT: False, _SERVER: False}
        self._tasks: set[asyncio.Task[Any]] = set()
        # When a write to each side started waiting (0.0: not waiting); see cut_if_stalled.
        self._writing_since = {_CLIENT: 0.0, _SERVER: 0.0}
        self._unsent = {_CLIENT: 0, _SERVER: 0}  # bytes buffered at the last check
        self._coalescers = {_CLIENT: coalesce_writes(client), _SERVER: coalesce_writes(upstream)}

    def _ws(self, side: Direction) -> AnyWS:
        return self.client if side is _CLIENT else self.upstream

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _record(self, direction: Direction, opcode: Opcode, payload: bytes) -> None:
        seq = self.seq
        self.seq = seq + 1
        now = time.monotonic()
        self._last_at[direction] = now
        self.recorder.message(self.session_id, seq, now - self.t0, direction, opcode, payload)

    def _set_close(self, close: Close) -> None:
        if self.close is None:
            self.close = close

    # ---- running -----------------------------------------------------------

    async def run(self) -> Close:
        """Relay until both sides are closed; returns how the session ended."""
        loop = asyncio.get_running_loop()
        pumps = {loop.create_task(self._pump(_CLIENT)), loop.create_task(self._pump(_SERVER))}
        self._tasks = pumps
        try:
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                # One side is closed; the other gets close_timeout to answer, then is cut.
                _, pending = await asyncio.wait(pending, timeout=self.close_timeout)
            if pending:
                self._set_close(
                    Close(None, by=Closer.ERROR, error="close handshake timed out", t=self._now())
                )
                drop_connection(self.client)
                drop_connection(self.upstream)
                _, pending = await asyncio.wait(pending, timeout=1.0)
                for task in pending:
                    task.cancel()
        finally:
            for task in pumps:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        for task in pumps:
            if not task.cancelled() and task.exception() is not None:
                self._set_close(
                    Close(
                        None,
                        by=Closer.ERROR,
                        error=f"relay failed: {task.exception()!r}",
                        t=self._now(),
                    )
                )
                drop_connection(self.client)
                drop_connection(self.upstream)
        close = self.close or Close(None, by=Closer.ERROR, error="connection lost", t=self._now())
        self.close = close
        return close

    async def _pump(self, side: Direction) -> None:
        """Read ``side`` until it closes, writing each message to the other side."""
        src = self._ws(side)
        other = _SERVER if side is _CLIENT else _CLIENT
        send = self._ws(other).send_frame
        record = self._record
        feed = self.feed if side is _CLIENT else None
        sent_close = self._sent_close
        counts = self.data_messages
        text, binary = WSMsgType.TEXT, WSMsgType.BINARY
        co = self._coalescers[other]
        writing_since = self._writing_since
        monotonic = time.monotonic
        # Messages already parsed from ``src``: while there are some, writes to the
        # other side are gathered and go out together after the last one.
        waiting = _waiting_messages(src) if co is not None else None
        burst = 0
        try:
            while True:
                if waiting:
                    # receive() returns parsed messages without yielding: let the
                    # other connections run now and then during a long burst (a flood).
                    burst += 1
                    if burst >= _FAIR_BURST:
                        burst = 0
                        if co is not None:
                            co.release()
                        await asyncio.sleep(0)
                msg = await src.receive()
                kind = msg.type
                if (
                    kind is text
                    or kind is binary
                    or kind is WSMsgType.PING
                    or kind is WSMsgType.PONG
                ):
                    if sent_close[other]:
                        continue  # the other side is closing: nothing more may go to it
                    data = msg.data
                    if waiting is not None:
                        co.hold = bool(waiting)  # type: ignore[union-attr]
                    writing_since[other] = monotonic()
                    try:
                        await send(data, kind)
                    except ConnectionError:
                        continue  # the other side's pump sees it go and ends the session
                    finally:
                        writing_since[other] = 0.0
                        if co is not None and not waiting:
                            co.release()
                    record(side, _OPCODES[kind], data)
                    if kind is text or kind is binary:
                        counts[side] += 1
                        if feed is not None:
                            feed(kind, data)
                elif kind is WSMsgType.CLOSE:
                    await self._on_close(side, other, msg.data or None, msg.extra or "")
                    return
                elif kind is WSMsgType.CLOSING:
                    return  # closed from our side (shutdown)
                else:  # CLOSED or ERROR: the connection broke
                    await self._on_broken(side, other, msg)
                    return
        finally:
            if co is not None:
                co.release()

    async def _on_close(
        self, side: Direction, other: Direction, code: int | None, reason: str
    ) -> None:
        payload = close_payload(code, reason)
        self._got_close[side] = True
        self._record(side, Opcode.CLOSE, payload)
        by = Closer.CLIENT if side is _CLIENT else Closer.SERVER
        self._set_close(Close(code, reason, by=by, t=self._now()))
        if not self._sent_close[other]:
            self._sent_close[other] = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws(other).send_frame(payload, WSMsgType.CLOSE)
        for s in (side, other):
            if self._sent_close[s] and self._got_close[s]:
                drop_connection(self._ws(s))

    async def _on_broken(self, side: Direction, other: Direction, msg: Any) -> None:
        # aiohttp closed ``side`` (or, for the client, deferred that close): with a
        # close frame for a protocol error (WebSocketError.code), or by losing the
        # connection.
        code = getattr(msg.data, "code", None) if msg.type is WSMsgType.ERROR else None
        src = self._ws(side)
        if isinstance(src, ClientSideWebSocket) and src.deferred_close:
            await self._await_upstream_quiet()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await src.close_deferred()
        self._sent_close[side] = self._got_close[side] = True
        name = _SIDE_NAME[side]
        if code:
            error = f"{name} broke the protocol ({code}): {msg.data}"
        elif msg.type is WSMsgType.ERROR:
            error = f"{name} connection failed: {msg.data}"
        else:
            error = f"{name} vanished without a close frame"
        self._set_close(Close(code, by=Closer.ERROR, error=error, t=self._now()))
        dst = self._ws(other)
        if code and not self._sent_close[other]:
            # Pass the code on (1009 message too big, 1002, 1007) and await the reply.
            self._sent_close[other] = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await dst.send_frame(close_payload(code), WSMsgType.CLOSE)
        elif not self._sent_close[other] and side is _SERVER:
            # A gateway's answer: the client can tell this from its own network failing.
            self._sent_close[other] = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await dst.send_frame(
                    close_payload(BAD_GATEWAY, "upstream connection lost"), WSMsgType.CLOSE
                )
        elif not self._sent_close[other]:
            # The upstream gets what a direct peer would see: the connection dropping.
            self._sent_close[other] = self._got_close[other] = True
            drop_connection(dst)

    def cut_if_stalled(self, limit: float, now: float | None = None) -> bool:
        """End the session if a write to one side has made no progress for ``limit`` seconds.

        That side stopped reading (its buffers are full): its connection is
        aborted, the other side is dropped as for a vanished peer, and the
        session is recorded as closed by error. A slow reader that drains
        anything between two checks is not cut. Returns True if it cut.
        """
        now = time.monotonic() if now is None else now
        for side in (_CLIENT, _SERVER):
            since = self._writing_since[side]
            if not since:
                self._unsent[side] = 0
                continue
            unsent = _buffered(self._ws(side))
            drained = unsent < self._unsent[side]
            self._unsent[side] = unsent
            if drained:
                self._writing_since[side] = now  # it took some: slow, not stalled
                continue
            if now - since <= limit:
                continue
            name = _SIDE_NAME[side]
            self._set_close(
                Close(
                    None,
                    by=Closer.ERROR,
                    error=f"{name} stopped reading: took nothing for {limit:g} s",
                    t=self._now(),
                )
            )
            self._sent_close[side] = self._got_close[side] = True
            abort_connection(self._ws(side))
            return True
        return False

    async def _await_upstream_quiet(self, quiet: float = 0.02, limit: float = 0.25) -> None:
        """Let the upstream's replies in flight reach the client: until nothing came
        from it for ``quiet`` seconds, at most ``limit`` seconds."""
        end = time.monotonic() + limit
        while time.monotonic() < end and not self._sent_close[_CLIENT]:
            await asyncio.sleep(quiet)
            if time.monotonic() - self._last_at[_SERVER] >= quiet:
                return

    async def shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        """Close both sides with ``code`` (proxy shutting down); the pumps see the replies."""
        self._set_close(
            Close(code, reason, by=Closer.ERROR, error="recording proxy shut down", t=self._now())
        )
        payload = close_payload(code, reason)
        for side in (_CLIENT, _SERVER):
            if not self._sent_close[side]:
                self._sent_close[side] = True
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._ws(side).send_frame(payload, WSMsgType.CLOSE)
            if self._got_close[side]:
                drop_connection(self._ws(side))
