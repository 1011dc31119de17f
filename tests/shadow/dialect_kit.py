"""Record a real client through the proxy, then shadow-replay against real servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.diff.capture import diff_capture
from wsshadow.replay.engine.run import ReplayOptions, replay_capture
from wsshadow.replay.shadow import shadow_capture

__all__ = ["free_port", "record", "replay_one_by_one", "serving_aiohttp", "shadow", "signatures"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving_aiohttp(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp application on an ephemeral 127.0.0.1 port; yields its ws:// base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def record(upstream: str, capture: Path, client: Callable[[str], Awaitable[None]]) -> None:
    """Run ``client`` (given the proxy's URL) through a recording proxy into ``capture``."""
    async with RecordingProxy(upstream, capture, listen=("127.0.0.1", 0)) as proxy:
        await client(proxy.url)
        await asyncio.sleep(0.2)


async def shadow(
    capture: Path, baseline: str, candidate: str, config: DiffConfig | None = None, **kw: Any
) -> dict[str, Any]:
    """Replay ``capture`` to ``baseline`` (twice, for noise) and ``candidate``; the report."""
    with CaptureStore.open(capture) as store:
        result = await shadow_capture(
            store, baseline=baseline, candidate=candidate,
            options=ReplayOptions(target=baseline, idle_timeout=0.5, **kw),
            config=config or DiffConfig(), noise_runs=1,
        )  # fmt: skip
    return result.report


async def replay_one_by_one(capture: Path, baseline: str, candidate: str) -> dict[str, Any]:
    """Replay the baseline, a noise run and the candidate one after the other, then diff.

    For protocols where two replays of one session cannot share a server at once (an MQTT
    broker takes a client id's session over from the connection that had it)."""
    with CaptureStore.open(capture) as store:
        n = len(store.runs())
        names = [f"base{n}", f"noise{n}", f"cand{n}"]
        for name, target in zip(names, (baseline, baseline, candidate), strict=True):
            await replay_capture(store, ReplayOptions(target=target, idle_timeout=0.5), run=name)
        return diff_capture(store, names[0], names[2], [names[1]])


def signatures(report: dict[str, Any]) -> list[str]:
    """The signatures of the report's differences, sorted."""
    return sorted(d["signature"] for d in report["differences"])
