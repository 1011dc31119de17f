"""The WebSocket side of the recording proxy: one client's upgrade, from its request
to the relay.

``UpgradeSide`` is the part of ``RecordingProxy`` that handles one upgrade:
it builds the upstream's upgrade request from the client's (its key,
subprotocols and permessage-deflate offer, so that frames pass through as
they came), passes the upstream's answer on, records the session's
handshake, starts its live-mirror link and runs its ``Relay``. A refused or
unreachable upstream is recorded too. ``proxy.py`` keeps the lifecycle
(listening, stopping, counting) and the dispatch of requests.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from wsshadow.recorders.frames import close_frame, deflate_offer, negotiated_deflate
from wsshadow.recorders.hops import (
    WS_OWN,
    Switched,
    forward_headers,
    raw_headers,
    request_target,
)
from wsshadow.recorders.mirror import MirrorLink, MirrorStats
from wsshadow.recorders.recorder import CaptureRecorder
from wsshadow.recorders.relay import Relay
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Provenance,
    Source,
)

__all__ = ["UpgradeSide"]

log = logging.getLogger("wsshadow.record")

_PROXIED = Provenance(source=Source.PROXY)


class UpgradeSide:
    """One WebSocket upgrade through the proxy; ``RecordingProxy`` sets the attributes."""

    upstream: URL
    mirror: URL | None
    routes: dict[str, str]
    max_message_size: int
    close_timeout: float
    handshake_timeout: float
    client_ssl: Any
    _recorder: CaptureRecorder | None
    _http: aiohttp.ClientSession | None
    _relays: set[Relay]
    _mirror_tasks: set[asyncio.Task[None]]
    _mirror_stats: MirrorStats
    _stopping: bool

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
