"""Admission control for the recording proxy: a handshake read timeout and a connection limit.

Without them one client could lock everyone out: connections that send
``GET`` and nothing more were held forever, each costing a file descriptor,
until the proxy could accept no one (1,100 of them did it, and nothing was
logged). ``GuardedServer`` is aiohttp's low-level ``web.Server`` with two
rules:

- a connection must finish its request head (the upgrade request, or any
  plain HTTP request) within ``handshake_timeout`` seconds of opening, or it
  gets ``408 Request Timeout`` and is closed;
- at most ``max_connections`` connections are open at once; one more gets
  ``503 Service Unavailable`` and is closed at once.

Each rule logs a warning when it first applies, then at most one summary
line every ``LOG_EVERY`` seconds while it keeps applying, with counts.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "LOG_EVERY", "GuardedServer", "default_max_connections"]

log = logging.getLogger("wsshadow.record")

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client has to send its whole request head."""

LOG_EVERY = 10.0
"""Seconds between two warnings about the same rule."""


def _response(status: str, body: str, *extra: str) -> bytes:
    data = body.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain", "Connection: close", *extra,
            f"Content-Length: {len(data)}"]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


_TIMEOUT_RESPONSE = _response(
    "408 Request Timeout", "wsshadow: request head not received in time\n"
)
_FULL_RESPONSE = _response(
    "503 Service Unavailable", "wsshadow: too many open connections\n", "Retry-After: 1"
)


def default_max_connections() -> int:
    """The connection limit when none is given: what the file descriptor limit
    allows with three descriptors a connection (client, upstream, mirror) and 64
    spare, and at least 16."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(16, (soft - 64) // 3)


class _Throttled:
    """A warning logged the first time, then at most once every LOG_EVERY seconds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0
        self._since_log = 0
        self._logged_at: float | None = None

    def hit(self, detail: str) -> None:
        self.count += 1
        self._since_log += 1
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            log.warning(
                "%s (%s; %d so far, %d since the last warning)",
                self.text,
                detail,
                self.count,
                self._since_log,
            )
            self._logged_at = now
            self._since_log = 0


class _OneLineHttpLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, with a malformed request (a client's fault) as one warning
    line instead of a traceback; anything else (a bug) keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            text = " ".join(str(exc.message or exc).split())[:300]
            self.logger.warning("%s: bad request (%s %s)", str(msg) % args, exc.code, text)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kw)


class GuardedServer(web.Server):
    """``web.Server`` with a handshake read timeout and a connection limit (see module)."""

    def __init__(
        self,
        handler: Any,
        *,
        handshake_timeout: float | None,
        max_connections: int | None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("logger", _OneLineHttpLog(logging.getLogger("wsshadow.record.http"), {}))
        super().__init__(handler, **kwargs)
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections
        self._timers: dict[Any, asyncio.TimerHandle] = {}
        self.timed_out = _Throttled(
            f"closed a connection that did not send its request head within "
            f"{handshake_timeout:g} s (408)"
            if handshake_timeout is not None
            else ""
        )
        self.refused = _Throttled(
            f"connection limit reached ({max_connections} open, --max-connections): "
            "refused a new connection (503)"
        )

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if self.max_connections is not None and len(self._connections) > self.max_connections:
            self.refused.hit(_peer(transport))
            transport.write(_FULL_RESPONSE)
            transport.close()
            return
        if self.handshake_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timers[handler] = loop.call_later(
                self.handshake_timeout, self._too_slow, handler, transport
            )

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        timer = self._timers.pop(handler, None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(handler, exc)

    def request_started(self, handler: Any) -> None:
        """A whole request head arrived on ``handler``'s connection: no timeout any more."""
        timer = self._timers.pop(handler, None)
        if timer is not None:
            timer.cancel()

    def _too_slow(self, handler: Any, transport: asyncio.Transport) -> None:
        self._timers.pop(handler, None)
        if transport.is_closing():
            return
        self.timed_out.hit(_peer(transport))
        transport.write(_TIMEOUT_RESPONSE)
        transport.close()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"from {peer[0]}:{peer[1]}"
    return "from an unknown peer"
