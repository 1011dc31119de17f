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
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from wsshadow.recorders.guard import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    GuardedServer,
    default_max_connections,
)
from wsshadow.recorders.hops import (
    HOP_BY_HOP,
    client_ssl,
    parse_listen,
    parse_routes,
    pass_through,
    request_target,
    server_ssl,
)
from wsshadow.recorders.mirror import MIRROR_RUN, MirrorStats
from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.recorders.relay import Relay
from wsshadow.recorders.upgrade import UpgradeSide
from wsshadow.replay.capture.model import (
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


class RecordingProxy(UpgradeSide):
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
