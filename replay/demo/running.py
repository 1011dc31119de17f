"""Run the demo servers on ephemeral loopback ports, inside a program or a test.

``python -m wsshadow.replay.demo.servers`` does the same from a shell.
::

    async with demo_servers() as servers:
        await run_traffic(servers.legacy)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from wsshadow.replay.demo.consolidated import create_consolidated_app
from wsshadow.replay.demo.legacy import create_legacy_app

__all__ = ["DemoServers", "demo_servers", "serve_app"]


@dataclass(frozen=True)
class DemoServers:
    """Base URLs (``ws://127.0.0.1:PORT``) of the two running demo servers."""

    legacy: str
    consolidated: str


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = ephemeral) and yield its ``ws://`` base URL."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield f"ws://{bound[0]}:{bound[1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def demo_servers(*, seed: int | None = None) -> AsyncIterator[DemoServers]:
    """Start the legacy and the consolidated servers on 127.0.0.1, ephemeral ports."""
    legacy_seed = None if seed is None else seed
    consolidated_seed = None if seed is None else seed + 1
    async with (
        serve_app(create_legacy_app(seed=legacy_seed)) as legacy,
        serve_app(create_consolidated_app(seed=consolidated_seed)) as consolidated,
    ):
        yield DemoServers(legacy=legacy, consolidated=consolidated)
