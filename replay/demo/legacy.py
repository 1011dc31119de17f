"""The demo's legacy chat backend: four competing WebSocket routes.

``/ws`` (main) and ``/websocket`` (a shim serving the same handler) send a
welcome racing a heartbeat and flat events; ``/ws/factory`` and
``/ws/isolated`` each have their own envelopes (see ``docs/demo.md``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from wsshadow.replay.demo.chat import serve
from wsshadow.replay.demo.dialects import Dialect, FactoryDialect, IsolatedDialect, MainDialect
from wsshadow.replay.demo.protocol import ServerState

__all__ = ["LEGACY_ROUTES", "create_legacy_app"]

LEGACY_ROUTES = ("/ws", "/websocket", "/ws/factory", "/ws/isolated")
"""The legacy server's WebSocket routes."""


def _handler(dialect: Dialect) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, dialect)

    return handle


def create_legacy_app(
    *, seed: int | None = None, step_delay: tuple[float, float] = (0.002, 0.006)
) -> web.Application:
    """The legacy backend as an aiohttp app (serve it with ``web.AppRunner``).

    ``seed`` fixes the heartbeat/welcome race and event spacing (random by
    default); ``step_delay`` is the (min, max) pause in seconds between the
    events of one agent run.
    """
    app = web.Application()
    ServerState(rng=random.Random(seed), step_delay=step_delay).install(app)
    main = _handler(MainDialect())
    app.router.add_get("/ws", main)
    app.router.add_get("/websocket", main)  # the shim: same handler, same behaviour
    app.router.add_get("/ws/factory", _handler(FactoryDialect()))
    app.router.add_get("/ws/isolated", _handler(IsolatedDialect()))
    return app
