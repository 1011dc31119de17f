"""The demo's shared room, shadowed: two replay users keep a broadcast's sender honest.

Replay runs every recorded user as a demo user. Were both room members one
user, a candidate that put the *recipient* in a broadcast's ``from`` would
look exactly like the baseline. The demo config replays browser-style
clients (the ``jwt`` subprotocol) as a second user, and the room's members
authenticate differently, so that such a candidate is caught.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import load_config
from wsshadow.replay.demo import (
    REPLAY_TOKEN,
    create_legacy_app,
    demo_config_path,
    run_traffic,
    select_mode,
    serve_app,
)
from wsshadow.replay.demo.chat import Connection, Mode, ServerState, serve
from wsshadow.replay.demo.dialects import Dialect, FactoryDialect, IsolatedDialect, MainDialect
from wsshadow.replay.engine.options import build_replay_options
from wsshadow.replay.options import ReplayOverrides
from wsshadow.replay.shadow import shadow_capture


class RecipientAsSender(MainDialect):
    """The main route with a bug: a broadcast names its recipient as the sender."""

    def shared(self, conn: Connection, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        if kind == "thread_message":
            fields = {**fields, "from": conn.user_id}
        return super().shared(conn, kind, fields)


def wrong_sender_app() -> web.Application:
    """The consolidated routing, every mode as on legacy, except that one bug on main."""
    app = web.Application()
    ServerState(rng=random.Random()).install(app)
    dialects: dict[Mode, Dialect] = {
        Mode.MAIN: RecipientAsSender(),
        Mode.LEGACY: MainDialect(),
        Mode.FACTORY: FactoryDialect(),
        Mode.ISOLATED: IsolatedDialect(),
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, dialects[select_mode(request.path, request.query.get("mode"))])

    for path in ("/ws", "/ws/factory", "/ws/isolated", "/websocket"):
        app.router.add_get(path, handle)
    return app


Shadow = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


@pytest.fixture
async def shadow_the_room(tmp_path: Path) -> Shadow:
    """Record the demo traffic against legacy; shadow it against the wrong-sender server."""
    capture = tmp_path / "demo.db"
    async with serve_app(create_legacy_app()) as legacy:
        with CaptureStore.open(capture, create=True) as store:
            async with RecordingProxy(legacy, store, listen=("127.0.0.1", 0)) as proxy:
                await run_traffic(proxy.url)
    config = load_config(demo_config_path())
    runs = iter(range(10))

    async def shadow(credentials: dict[str, str]) -> dict[str, Any]:
        async with (
            serve_app(create_legacy_app()) as baseline,
            serve_app(wrong_sender_app()) as candidate,
        ):
            options = build_replay_options(config, candidate, ReplayOverrides.of(), os.environ)
            options = replace(options, credentials={**options.credentials, **credentials})
            with CaptureStore.open(capture) as store:
                result = await shadow_capture(
                    store,
                    baseline=baseline,
                    candidate=candidate,
                    options=options,
                    config=config.diff,
                    prefix=f"room{next(runs)}",
                    verdict=config.verdict,
                )
        return result.report

    return shadow


async def test_a_broadcast_naming_the_wrong_sender_is_found(shadow_the_room: Shadow) -> None:
    report = await shadow_the_room({})  # the demo config: two replay users
    assert report["verdict"] == "divergent"
    (found,) = report["differences"]
    assert found["signature"] == "changed_value /ws thread_message from"
    example = found["examples"][0]
    assert (example["expected"], example["actual"]) == ("shadow-replayer", "shadow-browser")
    assert report["fidelity"]["sessions"]["unreproduced"] == 0


async def test_with_one_replay_user_the_same_bug_would_hide(shadow_the_room: Shadow) -> None:
    """Why the demo has two replay users: with one, sender and recipient look alike."""
    report = await shadow_the_room({"jwt": REPLAY_TOKEN})
    assert report["differences"] == []
    assert report["verdict"] == "equivalent"
