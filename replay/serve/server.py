"""The mock server: a capture's server side played to real WebSocket clients (aiohttp).

``MockServer`` answers each upgrade on a recorded route with a recorded
session's handshake (status, selected subprotocol), then serves its server
messages in causal order as ``plan.Conversation`` decides, and ends with the
recorded close. A client message that does not match is logged as one line
and, by default, ends the connection with 1008. With a store, every served
connection is written as a session of one run (what the client actually
sent, what it was served), so ``wsshadow diff`` can compare it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.errors import BadInput
from wsshadow.replay.serve.plan import (
    Conversation,
    Matcher,
    Mismatch,
    OnMismatch,
    Pace,
    ServeOptions,
    SessionPool,
    due,
    matcher_for,
)

__all__ = ["DEFAULT_PORT", "MockServer", "ServedStats", "running_server"]

DEFAULT_PORT = 8766
"""The port ``serve`` listens on without ``--listen``."""

_log = logging.getLogger("wsshadow.serve")


@dataclass(slots=True)
class ServedStats:
    """Counts over the server's life."""

    connections: int = 0
    refused: int = 0
    messages_served: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


class MockServer:
    """Serves recorded sessions to WebSocket clients; see the module docstring."""

    def __init__(
        self,
        sessions: Iterable[Session],
        *,
        config: DiffConfig | None = None,
        options: ServeOptions | None = None,
        store: CaptureStore | None = None,
        run: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options if options is not None else ServeOptions()
        self.config = config if config is not None else DiffConfig()
        self.pool = SessionPool(sessions, reuse=self.options.reuse)
        self.store = store
        self.run = run
        self.stats = ServedStats()
        self.log = log if log is not None else _log.warning
        self._matchers: dict[str, Matcher] = {}
        self._run_started = time.time()
        self._errors = 0
        self._stored = 0
        self._store_lock = asyncio.Lock()
        self._open: set[web.WebSocketResponse] = set()
        self._stopping = False

    @property
    def mismatches(self) -> list[Mismatch]:
        """Every mismatch so far, in order."""
        return self.stats.mismatches

    def app(self) -> web.Application:
        """The aiohttp application (one catch-all route)."""
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        """Close open connections with 1001 (going away) when the server stops."""
        self._stopping = True
        for ws in list(self._open):
            await ws.close(code=1001, message=b"wsshadow serve stopped")

    def _matcher(self, session: Session) -> Matcher:
        found = self._matchers.get(session.id)
        if found is None:
            found = self._matchers[session.id] = matcher_for(
                self.options.match, self.config, session
            )
        return found

    # ---- the run in the capture ------------------------------------------------------

    def begin_run(self) -> None:
        """Create the run's row (no-op without a store)."""
        if self.store is not None and self.run is not None:
            self.store.put_run(self._run_row(None))

    def end_run(self) -> None:
        """Close the run's row with its counts (no-op without a store)."""
        if self.store is not None and self.run is not None:
            self.store.put_run(self._run_row(time.time()))

    def _run_row(self, ended: float | None) -> Run:
        return Run(
            name=self.run or "",
            target="serve",
            source=Source.REPLAY,
            settings=self.options.settings(),
            started_at=self._run_started,
            ended_at=ended,
            sessions=self._stored,
            errors=self._errors,
        )

    async def _record(self, session: Session, failed: bool) -> None:
        if self.store is None or self.run is None:
            return
        async with self._store_lock:
            self.store.put_session(session)
            self._stored += 1
            self._errors += int(failed)

    # ---- one connection ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = request.path
        header = request.headers.get("Sec-WebSocket-Protocol", "")
        offered = tuple(p.strip() for p in header.split(",") if p.strip())
        if not self.pool.recorded(route):
            self.stats.refused += 1
            self.log(f"no recorded session on {route} (recorded: {', '.join(self.pool.routes)})")
            return web.Response(
                status=404, text=f"wsshadow serve: no recorded session on {route}\n"
            )
        candidates = self.pool.candidates(route, offered)
        lead = next((s for s in candidates if self.pool.claim(s.id)), None)
        if lead is None:
            self.stats.refused += 1
            why = "every recorded session on it was served (--reuse serves them again)"
            if not self.pool.candidates(route, offered) and self.pool.remaining(route):
                why = f"none selected a subprotocol among those offered ({header or 'none'})"
            self.log(f"refused a client on {route}: {why}")
            return web.Response(status=503, text=f"wsshadow serve: {route}: {why}\n")
        candidates.remove(lead)
        candidates = [s for s in candidates if s.handshake.status == lead.handshake.status
                      and s.handshake.subprotocol == lead.handshake.subprotocol]  # fmt: skip
        conv = Conversation([lead, *candidates], self._matcher, self.options.on_mismatch)
        self.stats.connections += 1
        started = time.time()
        handshake = Handshake(
            route=route,
            query=request.query_string,
            request_headers=tuple(request.headers.items()),
            subprotocols=offered,
            status=lead.handshake.status,
            subprotocol=lead.handshake.subprotocol,
        )
        if lead.handshake.status != 101:
            status = lead.handshake.status or 502
            await self._record(self._served(conv, started, handshake, [], None), False)
            return web.Response(status=status)
        selected = lead.handshake.subprotocol
        ws = web.WebSocketResponse(protocols=(selected,) if selected else (), max_msg_size=0)
        await ws.prepare(request)
        self._open.add(ws)
        transcript: list[Message] = []
        close: Close | None = None
        failed = False
        try:
            close, failed = await self._converse(ws, conv, transcript)
        except (ConnectionError, asyncio.CancelledError) as e:
            close = Close(None, "", Closer.ERROR, error=f"connection lost: {e!r}")
            failed = True
            if isinstance(e, asyncio.CancelledError):
                await self._record(self._served(conv, started, handshake, transcript, close), True)
                raise
        finally:
            self._open.discard(ws)
        await self._record(self._served(conv, started, handshake, transcript, close), failed)
        return ws

    async def _converse(
        self, ws: web.WebSocketResponse, conv: Conversation, transcript: list[Message]
    ) -> tuple[Close, bool]:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        anchor_real, anchor_rec = opened, 0.0
        paced = self.options.pace is Pace.RECORDED
        seq = 0

        def note(direction: Direction, opcode: Opcode, payload: str | bytes) -> None:
            nonlocal seq
            transcript.append(
                Message(seq, round(loop.time() - opened, 6), direction, opcode, payload)
            )
            seq += 1

        while True:
            for m in conv.sends():
                if paced:
                    wait = due(anchor_real, anchor_rec, m.t, self.options.speed) - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if isinstance(m.payload, str):
                    await ws.send_str(m.payload)
                else:
                    await ws.send_bytes(m.payload)
                self.stats.messages_served += 1
                note(Direction.SERVER, m.opcode, m.payload)
                anchor_real, anchor_rec = loop.time(), m.t
            recorded_close = conv.lead.close
            if conv.done and (recorded_close is None or recorded_close.by is not Closer.CLIENT):
                return await self._close_as_recorded(
                    ws, recorded_close, loop.time() - opened
                ), False
            msg = await ws.receive()
            if self._stopping:
                return Close(1001, "wsshadow serve stopped", Closer.SERVER,
                             t=loop.time() - opened), not conv.done  # fmt: skip
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                code = ws.close_code
                return Close(code, str(msg.extra or ""), Closer.CLIENT, t=loop.time() - opened), (
                    not conv.done
                )
            if msg.type is WSMsgType.ERROR:
                return Close(None, "", Closer.ERROR, error=str(ws.exception()),
                             t=loop.time() - opened), True  # fmt: skip
            if msg.type is WSMsgType.TEXT:
                opcode, payload = Opcode.TEXT, msg.data
            elif msg.type is WSMsgType.BINARY:
                opcode, payload = Opcode.BINARY, msg.data
            else:  # pragma: no cover - aiohttp answers pings itself
                continue
            note(Direction.CLIENT, opcode, payload)
            expected = conv.expected()
            received = Message(len(conv.received), loop.time() - opened, Direction.CLIENT,
                               opcode, payload)  # fmt: skip
            outcome = conv.receive(received, lambda s: self.pool.claim(s.id))
            if outcome.switched_from is not None:
                self.pool.release(outcome.switched_from)
            if outcome.mismatch is not None:
                mismatch = outcome.mismatch
                self.stats.mismatches.append(mismatch)
                self.log(mismatch.line())
                if self.options.on_mismatch is OnMismatch.CLOSE:
                    await ws.close(code=1008, message=mismatch.reason().encode("utf-8"))
                    return Close(1008, mismatch.reason(), Closer.SERVER,
                                 t=loop.time() - opened), True  # fmt: skip
                continue
            if expected is not None:
                anchor_real, anchor_rec = loop.time(), expected.t

    async def _close_as_recorded(
        self, ws: web.WebSocketResponse, recorded: Close | None, t: float
    ) -> Close:
        if recorded is None or recorded.code is None:
            # No close frame was recorded (cut off, or an error): end the connection plainly.
            await ws.close()
            return Close(1000, "", Closer.SERVER, error=None, t=t)
        await ws.close(code=recorded.code, message=recorded.reason.encode("utf-8"))
        return Close(recorded.code, recorded.reason, Closer.SERVER, t=t)

    def _served(
        self,
        conv: Conversation,
        started: float,
        handshake: Handshake,
        transcript: list[Message],
        close: Close | None,
    ) -> Session:
        return Session(
            id=uuid.uuid4().hex[:16],
            started_at=started,
            handshake=handshake,
            messages=tuple(transcript),
            close=close,
            provenance=Provenance(Source.REPLAY, ("serve",), run=self.run, origin=conv.lead.id),
        )


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``HOST`` (default port); raises BadInput otherwise."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = listen, str(DEFAULT_PORT)
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise BadInput(f"--listen {listen!r}: expected HOST:PORT (a port number)") from None
    if not 0 <= number <= 65535:
        raise BadInput(f"--listen {listen!r}: port {number} out of range")
    return host, number


@contextlib.asynccontextmanager
async def running_server(
    server: MockServer, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Run ``server`` on ``host:port`` (0 = ephemeral) and yield its ``ws://`` base URL.

    Raises BadInput when the address cannot be bound (in use, not local)."""
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None,
                           shutdown_timeout=1.0)  # fmt: skip
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            raise BadInput(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
        server.begin_run()
        try:
            yield f"ws://{shown}:{bound[1]}"
        finally:
            await runner.cleanup()  # open connections end (1001) and are stored
            server.end_run()
    finally:
        await runner.cleanup()  # idempotent: a second call finds nothing left
