"""Record a real client through the proxy, then shadow-replay against real servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.engine.run import ReplayOptions
from wsshadow.replay.shadow import shadow_capture

__all__ = [
    "free_port",
    "record",
    "recorded_capture",
    "serving_aiohttp",
    "serving_asgi",
    "shadow",
    "signatures",
]


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


@asynccontextmanager
async def serving_asgi(app: Any) -> AsyncIterator[str]:
    """An ASGI application under uvicorn on a free 127.0.0.1 port; yields its ws:// base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="error", lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await task


async def record(upstream: str, capture: Path, client: Callable[[str], Awaitable[None]]) -> None:
    """Run ``client`` (given the proxy's URL) through a recording proxy into ``capture``."""
    async with RecordingProxy(upstream, capture, listen=("127.0.0.1", 0)) as proxy:
        await client(proxy.url)
        await asyncio.sleep(0.2)


def recorded_capture(
    capture: Path,
    server: Callable[[], AbstractAsyncContextManager[str]],
    client: Callable[[str], Awaitable[None]],
) -> Path:
    """``capture`` holding ``client``'s sessions, recorded through the proxy in front of a
    ``server()`` started for it (for module-scoped fixtures, outside any event loop)."""

    async def go() -> None:
        async with server() as upstream:
            await record(upstream, capture, client)

    asyncio.run(go())
    return capture


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


def signatures(report: dict[str, Any]) -> list[str]:
    """The signatures of the report's differences, sorted."""
    return sorted(d["signature"] for d in report["differences"])
