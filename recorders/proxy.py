"""The recording proxy: a transparent WebSocket reverse proxy that records every session.

``RecordingProxy`` listens (127.0.0.1 by default), proxies every WebSocket
upgrade on any path to the upstream (path and query kept, or mapped by
``routes``), passes plain HTTP through unrecorded, and records each
connection into a capture through one writer (``CaptureRecorder``). It is
an async context manager usable inside any running event loop::

    async with RecordingProxy("ws://127.0.0.1:9001", "capture.db", listen=("127.0.0.1", 0)) as p:
        ...  # clients connect to p.url
    print(p.stats)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from wsshadow.recorders.frames import close_frame, deflate_offer, negotiated_deflate
from wsshadow.recorders.guard import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    GuardedServer,
    default_max_connections,
)
from wsshadow.recorders.hops import (
    HOP_BY_HOP,
    WS_OWN,
    Switched,
    client_ssl,
    forward_headers,
    parse_listen,
    parse_routes,
    pass_through,
    raw_headers,
    request_target,
    server_ssl,
)
from wsshadow.recorders.mirror import MIRROR_RUN, MirrorLink, MirrorStats
from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.recorders.relay import Relay
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Provenance,
    Run,
    Source,
)
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.errors import BadInput

__all__ = [
    "HOP_BY_HOP",
    "ProxyStats",
    "RecordingProxy",
    "parse_listen",
    "parse_routes",
    "serve_until_signalled",
]

log = logging.getLogger("wsshadow.record")

_PROXIED = Provenance(source=Source.PROXY)


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """What went through the proxy: sessions, messages and payload bytes recorded,
    messages dropped by recording, and the live mirror's counts."""

    sessions: int = 0
    messages: int = 0
    bytes: int = 0
    dropped: int = 0
    mirror_sessions: int = 0
    mirror_errors: int = 0
    mirror_dropped: int = 0
    handshake_timeouts: int = 0
    refused_connections: int = 0


class RecordingProxy:
    """A transparent WebSocket reverse proxy that records every session into a capture.

    ``upstream`` is the legacy server (``ws://`` or ``wss://``, optionally
    with a path prefix). ``store`` is an open ``CaptureStore`` (left open)
    or a path (created if missing, closed on exit, redacted by ``redactor``).
    ``routes`` maps client paths to upstream paths (exact match; the target
    may carry a query). ``mirror`` is a candidate URL for the live mirror.
    ``listen`` port 0 picks a free port (read it from ``.port``).
    ``tls_cert``/``tls_key`` serve TLS; ``upstream_ca`` verifies a private CA.
    ``stall_timeout`` ends a session whose client (or upstream) has taken
    none of the data waiting for it for that long (None: never);
    until then, backpressure holds one socket write buffer per connection.
    ``handshake_read_timeout`` (default 10 s) closes a connection that has not
    sent a whole request head by then (408); ``max_connections`` (default:
    what the file descriptor limit allows, see ``default_max_connections``)
    refuses connections past it (503). Both log a warning when they apply.
    ``queue_bytes`` bounds the payload bytes waiting for the disk (256 MiB);
    the live mirror's candidate gets a budget of its own on top, a quarter of
    it, dropped first and counted in ``stats.mirror_dropped``.

    Recording is batched: the writer commits what was queued every 50 ms
    (``CaptureRecorder.linger``), in transactions of at most 5,000 events.
    A graceful stop (SIGTERM) writes everything; a SIGKILL loses only the
    events not yet committed, those of the last flush interval (plus the
    backlog when the disk is behind), and leaves a capture that opens cleanly.

    Raises BadInput for a bad URL or TLS file, CaptureError for a bad capture,
    OSError when the listening address is taken.
    """

    def __init__(
        self,
        upstream: str,
        store: CaptureStore | str | os.PathLike[str],
        *,
        listen: tuple[str, int] = ("127.0.0.1", 8765),
        routes: Mapping[str, str] | None = None,
        mirror: str | None = None,
        max_message_size: int = 16 * 2**20,
        upstream_ca: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        redactor: Redactor | None = None,
        close_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        handshake_timeout: float = 30.0,
        stall_timeout: float | None = 60.0,
        handshake_read_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        max_connections: int | None = None,
        queue_bytes: int = 256 * 2**20,
    ) -> None:
        self.upstream = self._check_url(upstream, "--upstream")
        self.mirror = self._check_url(mirror, "--mirror") if mirror else None
        if (tls_cert is None) != (tls_key is None):
            raise BadInput("--tls-cert and --tls-key go together")
        if max_message_size <= 0:
            raise BadInput("--max-message-size must be a positive number of bytes")
        if stall_timeout is not None and stall_timeout <= 0:
            raise BadInput("--stall-timeout must be a positive number of seconds")
        if handshake_read_timeout is not None and not handshake_read_timeout > 0:
            raise BadInput("--handshake-read-timeout must be a positive number of seconds")
        if max_connections is not None and max_connections < 1:
            raise BadInput("--max-connections must be at least 1")
        self.handshake_read_timeout = handshake_read_timeout
        self.max_connections = (
            max_connections if max_connections is not None else default_max_connections()
        )
        self._server: GuardedServer | None = None
        self.queue_bytes = queue_bytes
        self.listen = listen
        self.routes = dict(routes or {})
        self.max_message_size = max_message_size
        self.close_timeout = close_timeout
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.stall_timeout = stall_timeout
        self._watchdog: asyncio.Task[None] | None = None
        need_client_tls = self.upstream.scheme == "wss" or (
            self.mirror is not None and self.mirror.scheme == "wss"
        )
        self.client_ssl = client_ssl(upstream_ca) if need_client_tls else None
        self.server_ssl = server_ssl(tls_cert, tls_key) if tls_cert and tls_key else None
        self._store_arg = store
        self._redactor = redactor
        self._store: CaptureStore | None = None
        self._owns_store = False
        self._recorder: CaptureRecorder | None = None
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self._relays: set[Relay] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._mirror_tasks: set[asyncio.Task[None]] = set()
        self._mirror_stats = MirrorStats()
        self._mirror_started: float | None = None
        self._stopping = False
        self.port = 0

    @staticmethod
    def _check_url(url: str, option: str) -> URL:
        parsed = URL(url)
        if parsed.scheme not in ("ws", "wss") or not parsed.host:
            raise BadInput(f"{option} {url!r}: expected a ws:// or wss:// URL with a host")
        return parsed

    # ---- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL clients connect to (``ws://host:port``)."""
        scheme = "wss" if self.server_ssl else "ws"
        return f"{scheme}://{self.listen[0]}:{self.port}"

    @property
    def stats(self) -> ProxyStats:
        """Counts so far (final after the proxy stopped)."""
        r = self._recorder.stats if self._recorder else None
        m = self._mirror_stats
        return ProxyStats(
            sessions=r.sessions - m.sessions if r else 0,
            messages=r.messages if r else 0,
            bytes=r.bytes if r else 0,
            dropped=(r.dropped if r else 0),
            mirror_sessions=m.sessions,
            mirror_errors=m.errors,
            mirror_dropped=m.dropped + (r.mirror_dropped if r else 0),
            handshake_timeouts=self._server.timed_out.count if self._server else 0,
            refused_connections=self._server.refused.count if self._server else 0,
        )

    async def start(self) -> None:
        """Open the capture, start the writer and listen."""
        if isinstance(self._store_arg, CaptureStore):
            self._store = self._store_arg
        else:
            self._store = CaptureStore.open(self._store_arg, create=True, redactor=self._redactor)
            self._owns_store = True
        self._recorder = CaptureRecorder(self._store, max_queue_bytes=self.queue_bytes)
        self._recorder.start()
        if self.mirror is not None:
            self._mirror_started = time.time()
            self._recorder.put_run(self._mirror_run())
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=self.client_ssl or True),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
        )
        server = GuardedServer(
            self._handle,
            access_log=None,
            handshake_timeout=self.handshake_read_timeout,
            max_connections=self.max_connections,
        )
        self._server = server
        self._runner = web.ServerRunner(server, shutdown_timeout=self.close_timeout + 1)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner, self.listen[0], self.listen[1], ssl_context=self.server_ssl
        )
        try:
            await self._site.start()
        except BaseException:
            await self._teardown(failed=True)
            raise
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.stall_timeout is not None:
            self._watchdog = asyncio.get_running_loop().create_task(
                self._cut_stalled(self.stall_timeout), name="wsshadow-stall-watchdog"
            )

    async def _cut_stalled(self, limit: float) -> None:
        """Every ``limit / 4`` seconds (at most 1 s), end sessions whose peer stopped reading."""
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = time.monotonic()
            for relay in list(self._relays):
                if relay.cut_if_stalled(limit, now):
                    log.warning(
                        "session %s: %s", relay.session_id, relay.close and relay.close.error
                    )

    async def stop(self) -> None:
        """Stop accepting, close every client with 1001, write everything, release all."""
        if self._stopping:
            return
        self._stopping = True
        if self._site is not None:
            await self._site.stop()
        relays = list(self._relays)
        if relays:
            await asyncio.gather(*(r.shutdown() for r in relays), return_exceptions=True)
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=self.close_timeout + 2)
        await self._teardown()

    async def _teardown(self, failed: bool = False) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._mirror_tasks:
            tasks = list(self._mirror_tasks)
            _, pending = await asyncio.wait(tasks, timeout=self.close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._recorder is not None:
            if self.mirror is not None:
                self._recorder.put_run(self._mirror_run(ended=True))
            await self._recorder.aclose()
        if self._owns_store and self._store is not None:
            if failed:
                self._store.discard_if_unused()  # a capture it created for nothing goes
            else:
                self._store.close()
            self._owns_store = False

    def _mirror_run(self, ended: bool = False) -> Run:
        return Run(
            name=MIRROR_RUN,
            target=str(self.mirror),
            source=Source.MIRROR,
            settings={"upstream": str(self.upstream), "routes": self.routes},
            started_at=self._mirror_started,
            ended_at=time.time() if ended else None,
            sessions=self._mirror_stats.sessions,
            errors=self._mirror_stats.errors,
        )

    async def __aenter__(self) -> RecordingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- requests ----------------------------------------------------------

    def _target(self, base: URL, path: str, query: str) -> URL:
        mapped = self.routes.get(path)
        if mapped is not None:
            path, _, extra = mapped.partition("?")
            query = f"{extra}&{query}" if extra and query else (extra or query)
        else:
            prefix = base.raw_path.rstrip("/")
            path = prefix + path
        authority = base.raw_authority
        return URL(
            f"{base.scheme}://{authority}{path}" + (f"?{query}" if query else ""), encoded=True
        )

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        if self._server is not None:
            self._server.request_started(request.protocol)
        self._handlers.add(task)
        try:
            if self._stopping:
                return web.Response(status=503, text="wsshadow: proxy shutting down\n")
            if request_target(request.raw_path) is None:
                log.warning(
                    "refused a request whose target is neither a path nor an absolute URL: %.200r",
                    request.raw_path,
                )
                return web.Response(
                    status=400, text="wsshadow: the request target must be a path or a URL\n"
                )
            upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
            if upgrade and request.method == "GET":
                return await self._websocket(request)
            return await self._http_pass(request)
        finally:
            self._handlers.discard(task)

    async def _http_pass(self, request: web.BaseRequest) -> web.StreamResponse:
        """Plain HTTP goes to the upstream unrecorded, streamed both ways (``pass_through``)."""
        assert self._http is not None
        path, query = request_target(request.raw_path) or ("/", "")
        base = self.upstream.with_scheme("https" if self.upstream.scheme == "wss" else "http")
        return await pass_through(self._http, request, self._target(base, path, query), path)

    async def _websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._http is not None and self._recorder is not None
        session_id = uuid.uuid4().hex[:12]
        started, t0 = time.time(), time.monotonic()
        path, query = request_target(request.raw_path) or ("/", "")
        offered = tuple(
            p.strip()
            for value in request.headers.getall("Sec-WebSocket-Protocol", ())
            for p in value.split(",")
            if p.strip()
        )
        headers = forward_headers(request.headers, WS_OWN)
        handshake = Handshake(
            route=path,
            query=query,
            request_headers=raw_headers(request),
            subprotocols=offered,
            status=None,
        )
        # The client's own handshake goes upstream: its key (so the upstream's
        # accept is valid for the client), its subprotocols, and its
        # permessage-deflate offer, which the upstream answers for both hops:
        # frames then pass through untouched, compressed as the sender made them.
        upgrade = CIMultiDict(headers)
        upgrade["Upgrade"] = "websocket"
        upgrade["Connection"] = "Upgrade"
        for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version"):
            if name in request.headers:
                upgrade[name] = request.headers[name]
        if offered:
            upgrade["Sec-WebSocket-Protocol"] = ", ".join(offered)
        offer = deflate_offer(request.headers.getall("Sec-WebSocket-Extensions", ()))
        if offer:
            upgrade["Sec-WebSocket-Extensions"] = offer
        fail = functools.partial(self._unreachable, session_id, started, t0, handshake, _PROXIED)
        try:
            async with asyncio.timeout(self.handshake_timeout):
                resp = await self._http.request(
                    "GET",
                    self._target(self.upstream, path, query),
                    headers=upgrade,
                    allow_redirects=False,
                )
        except TimeoutError:
            return fail(f"upstream did not answer the upgrade within {self.handshake_timeout:g} s")
        except (aiohttp.ClientError, OSError) as e:
            return fail(f"upstream unreachable: {e}")
        try:
            return await self._switch(
                request, resp, session_id, started, t0, handshake, headers, fail
            )
        finally:
            resp.close()

    async def _switch(
        self,
        request: web.BaseRequest,
        resp: aiohttp.ClientResponse,
        session_id: str,
        started: float,
        t0: float,
        handshake: Handshake,
        headers: CIMultiDict[str],
        fail: Callable[[str], web.Response],
    ) -> web.StreamResponse:
        """The upstream answered the upgrade: pass the answer on, then relay.

        ``headers`` are the client's, as forwarded (for the live mirror).
        """
        assert self._recorder is not None
        recorder = self._recorder
        if resp.status != 101:
            try:
                async with asyncio.timeout(5.0):
                    body = await resp.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                body = b""
            return self._refused(session_id, started, handshake, resp, body)
        conn = resp.connection
        deflate, problem = negotiated_deflate(resp.headers.getall("Sec-WebSocket-Extensions", ()))
        if conn is None or conn.transport is None or conn.protocol is None or problem:
            return fail(f"upstream sent a bad handshake: {problem or 'the connection closed'}")
        upstream = (conn.transport, conn.protocol)
        out = forward_headers(resp.headers, frozenset({"content-length"}))
        out["Upgrade"] = "websocket"
        out["Connection"] = "Upgrade"
        switched = Switched(out)
        try:
            await switched.prepare(request)
        except (ConnectionError, RuntimeError, OSError) as e:
            upstream[0].write(close_frame(1001, masked=True))
            fail(f"client vanished during the handshake: {e}")
            return switched
        subprotocol = resp.headers.get("Sec-WebSocket-Protocol")
        recorder.open_session(
            session_id,
            started,
            replace(
                handshake,
                status=101,
                subprotocol=subprotocol.strip() if subprotocol else None,
                response_headers=raw_headers(resp),
            ),
            _PROXIED,
        )
        mirror = self._start_mirror(
            session_id, started, handshake.route, handshake.query, headers, handshake
        )
        relay = Relay(
            session_id,
            (request.transport, request.protocol),
            upstream,
            recorder,
            t0,
            max_message_size=self.max_message_size,
            deflate=deflate,
            close_timeout=self.close_timeout,
            feed=mirror.feed if mirror is not None else None,
        )
        self._relays.add(relay)
        try:
            relay.attach(upstream[1], request.protocol)
            request.protocol.keep_alive(False)
            if self._stopping:
                await relay.shutdown()
            await relay.run()
        finally:
            self._relays.discard(relay)
            assert relay.close is not None
            recorder.close_session(session_id, relay.close)
            if mirror is not None:
                mirror.finish(relay.close, relay.data_messages[Direction.SERVER])
        return switched

    def _refused(
        self,
        session_id: str,
        started: float,
        handshake: Handshake,
        resp: aiohttp.ClientResponse,
        body: bytes,
    ) -> web.Response:
        assert self._recorder is not None
        self._recorder.open_session(
            session_id,
            started,
            replace(handshake, status=resp.status, response_headers=raw_headers(resp)),
            _PROXIED,
        )
        out = forward_headers(resp.headers, frozenset({"content-length", "content-encoding"}))
        return web.Response(status=resp.status, reason=resp.reason, body=body, headers=out)

    def _unreachable(
        self,
        session_id: str,
        started: float,
        t0: float,
        handshake: Handshake,
        provenance: Provenance,
        error: str,
    ) -> web.Response:
        assert self._recorder is not None
        self._recorder.open_session(session_id, started, handshake, provenance)
        self._recorder.close_session(
            session_id, Close(None, by=Closer.ERROR, error=error, t=time.monotonic() - t0)
        )
        log.warning("session %s: %s", session_id, error)
        return web.Response(status=502, text=f"wsshadow: {error}\n")

    def _start_mirror(
        self,
        origin: str,
        started: float,
        path: str,
        query: str,
        headers: CIMultiDict[str],
        handshake: Handshake,
    ) -> MirrorLink | None:
        if self.mirror is None or self._recorder is None or self._http is None:
            return None
        link = MirrorLink(
            str(self._target(self.mirror, path, query)),
            self._http,
            self._recorder,
            origin=origin,
            handshake=handshake,
            headers=list(headers.items()),
            stats=self._mirror_stats,
            ssl=self.client_ssl or True,
            max_message_size=self.max_message_size,
        )
        task = asyncio.get_running_loop().create_task(link.run())
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_tasks.discard)
        return link


async def serve_until_signalled(
    proxy: RecordingProxy,
    on_ready: Callable[[RecordingProxy], None] | None = None,
) -> ProxyStats:
    """Run ``proxy`` until SIGINT or SIGTERM, then shut it down gracefully.

    Graceful means: stop accepting, close every client with 1001, write
    everything recorded. Returns the final counts.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with proxy:
            if on_ready is not None:
                on_ready(proxy)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return proxy.stats
