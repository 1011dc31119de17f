"""Dev entry point: ``python -m wsshadow.replay.demo.servers`` runs both demo servers.

It starts the legacy and the consolidated servers on ephemeral loopback
ports, prints their URLs and serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib

from wsshadow.replay.demo.running import demo_servers

__all__ = ["main"]


async def _serve() -> None:
    async with demo_servers() as servers:
        print(f"legacy        {servers.legacy}  (routes /ws /websocket /ws/factory /ws/isolated)")
        print(
            f"consolidated  {servers.consolidated}  (route /ws?mode=main|factory|isolated|legacy)"
        )
        print("Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    """Serve both demo servers until interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
