"""A minimal aiohttp WebSocket relay that records nothing: the proxy benchmark's floor.

python bench/_relay.py UPSTREAM_URL   # prints its port on stdout, serves until SIGTERM
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import ClientSession, WSMsgType, web

__all__ = ["relay_app"]


def relay_app(upstream: str) -> web.Application:
    """An app relaying every WebSocket message both ways to ``upstream`` + the request path."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        down = web.WebSocketResponse(compress=True, max_msg_size=0)
        await down.prepare(request)
        session: ClientSession = request.app["client"]
        async with session.ws_connect(upstream + request.path, compress=15, max_msg_size=0) as up:

            async def pump(src, dst) -> None:  # type: ignore[no-untyped-def]
                async for msg in src:
                    if msg.type == WSMsgType.TEXT:
                        await dst.send_str(msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)
                await dst.close()

            tasks = [asyncio.create_task(pump(down, up)), asyncio.create_task(pump(up, down))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return down

    async def client(app: web.Application):  # type: ignore[no-untyped-def]
        async with ClientSession() as s:
            app["client"] = s
            yield

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_get("/{tail:.*}", handle)
    return app


async def _main(upstream: str) -> None:
    runner = web.AppRunner(relay_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(_main(sys.argv[1]))
