"""The demo's consolidated chat backend: one route, mode-selected, five regressions.

One handler serves every path. The mode comes from ``?mode=main|factory|
isolated|legacy``, else from the path (``/ws/factory``, ``/ws/isolated``,
``/websocket`` -> legacy), else ``main``. Each mode keeps its legacy
route's shapes except for the planted regressions (:data:`MODE_QUIRKS`):

1. ``factory`` drops ``agent_thinking``;
2. ``main`` closes an unauthenticated connection with 1008, not 1011;
3. ``main`` answers bad JSON with ``JSON_PARSE_ERROR``, not ``FORMAT_ERROR``;
4. ``main`` selects the token-bearing subprotocol ``jwt.<token>``, not ``jwt-auth``;
5. ``isolated`` truncates ``user_context.user_id`` to eight characters and ``...``.

``legacy`` mode (the ``/websocket`` shim's new home) is the old main
behaviour, without regressions 2-4, so that each regression shows exactly
once, on its own route.
"""

from __future__ import annotations

import random

from aiohttp import web

from wsshadow.replay.demo.chat import serve
from wsshadow.replay.demo.dialects import Dialect, FactoryDialect, IsolatedDialect, MainDialect
from wsshadow.replay.demo.protocol import LEGACY_QUIRKS, Mode, Quirks, ServerState

__all__ = ["MODE_QUIRKS", "create_consolidated_app", "select_mode"]

MODE_QUIRKS: dict[Mode, Quirks] = {
    Mode.MAIN: Quirks(
        unauthenticated_close=1008,
        parse_error_code="JSON_PARSE_ERROR",
        echo_token_subprotocol=True,
    ),
    Mode.FACTORY: Quirks(drop_thinking=True),
    Mode.ISOLATED: Quirks(truncate_user_context=True),
    Mode.LEGACY: LEGACY_QUIRKS,
}
"""The regressions each mode carries."""

_PATH_MODES = {
    "/ws/factory": Mode.FACTORY,
    "/ws/isolated": Mode.ISOLATED,
    "/websocket": Mode.LEGACY,
}


def select_mode(path: str, mode: str | None) -> Mode:
    """The mode for a request: ``?mode=`` first, then the path, else main.

    Raises ``ValueError`` for an unknown ``mode`` value.
    """
    if mode:
        return Mode(mode)
    return _PATH_MODES.get(path.rstrip("/") or "/", Mode.MAIN)


def _dialects() -> dict[Mode, Dialect]:
    return {
        Mode.MAIN: MainDialect(MODE_QUIRKS[Mode.MAIN]),
        Mode.LEGACY: MainDialect(MODE_QUIRKS[Mode.LEGACY]),
        Mode.FACTORY: FactoryDialect(MODE_QUIRKS[Mode.FACTORY]),
        Mode.ISOLATED: IsolatedDialect(MODE_QUIRKS[Mode.ISOLATED]),
    }


def create_consolidated_app(
    *, seed: int | None = None, step_delay: tuple[float, float] = (0.002, 0.006)
) -> web.Application:
    """The consolidated backend as an aiohttp app (serve it with ``web.AppRunner``).

    Same parameters as :func:`replay.demo.legacy.create_legacy_app`. An
    unknown ``?mode=`` gets HTTP 400 before the upgrade.
    """
    app = web.Application()
    ServerState(rng=random.Random(seed), step_delay=step_delay).install(app)
    dialects = _dialects()

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            mode = select_mode(request.path, request.query.get("mode"))
        except ValueError:
            raise web.HTTPBadRequest(
                text=f"unknown mode {request.query.get('mode')!r}; expected one of "
                + ", ".join(m.value for m in Mode)
            ) from None
        return await serve(request, dialects[mode])

    for path in ("/ws", "/ws/factory", "/ws/isolated", "/websocket"):
        app.router.add_get(path, handle)
    return app
