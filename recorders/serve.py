"""Serve an ASGI app on loopback in a background thread (for tests and demos).

``serve_asgi(app)`` runs uvicorn on 127.0.0.1 with an ephemeral port and
yields a ``ServedApp`` whose ``ws_url`` a client or ``wsshadow replay`` can
use; leaving the ``with`` block shuts the server down (lifespan shutdown
included). uvicorn is needed (``pip install "wsshadow[asgi]"``; the ``dev`` extra has it too),
imported lazily.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from wsshadow.replay.errors import BadInput

__all__ = ["ServedApp", "serve_asgi"]


@dataclass(frozen=True, slots=True)
class ServedApp:
    """A running app: ``ws_url`` is ``ws://127.0.0.1:PORT``, ``http_url`` likewise."""

    host: str
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: str = "auto",
    ws: str = "websockets-sansio",
    startup_timeout: float = 10.0,
) -> Iterator[ServedApp]:
    """Run ``app`` under uvicorn in a thread while the block runs; yields its address.

    Raises BadInput when uvicorn is missing or the server does not start.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the dev extra has uvicorn
        raise BadInput('serving an ASGI app needs uvicorn: pip install "wsshadow[asgi]"') from None

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,  # type: ignore[arg-type]
        ws=ws,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as e:  # reported to the caller below
            errors.append(e)

    thread = threading.Thread(target=run, name="wsshadow-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if errors or not thread.is_alive():
            raise BadInput(f"the ASGI app did not start: {errors[0] if errors else 'exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise BadInput(f"the ASGI app did not start within {startup_timeout}s")
        time.sleep(0.01)
    sockets = [s for srv in server.servers for s in (srv.sockets or ())]
    bound_port = sockets[0].getsockname()[1] if sockets else port
    try:
        yield ServedApp(host, int(bound_port))
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
