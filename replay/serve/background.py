"""A mock server on its own event loop in a thread, for sync and async callers alike
(the pytest fixture, the benchmark): ``start()`` returns once it listens, ``stop()``
ends it and closes its run."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import discover_config
from wsshadow.replay.errors import BadInput
from wsshadow.replay.serve.plan import Mismatch, ServeOptions, select_sessions
from wsshadow.replay.serve.server import MockServer, running_server

__all__ = ["ServerThread"]


class ServerThread:
    """Serves ``capture`` (its recorded sessions, filtered) on 127.0.0.1, ephemeral port.

    ``url`` is the ``ws://`` base URL once started; ``mismatches`` the
    mismatches so far; ``lines`` every line the server logged. With ``run``,
    served connections are stored in the capture as that run.
    """

    def __init__(
        self,
        capture: str | Path,
        options: ServeOptions | None = None,
        *,
        sessions: Sequence[str] = (),
        routes: Sequence[str] = (),
        config: str | Path | None = None,
        run: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.capture = Path(capture)
        self.options = options if options is not None else ServeOptions()
        self.session_ids, self.routes = tuple(sessions), tuple(routes)
        self.config_path = config
        self.run = run
        self.host, self.port = host, port
        self.url = ""
        self.expect_mismatches = False
        """Set by the pytest fixture: mismatches are what the test wants to see."""
        self.lines: list[str] = []
        self.server: MockServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def mismatches(self) -> list[Mismatch]:
        """The mismatches so far (empty before start)."""
        return self.server.mismatches if self.server is not None else []

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; returns the URL. Raises BadInput (no such capture, no session)."""
        if not self.capture.exists():
            raise BadInput(f"{self.capture}: no such capture file")
        config = discover_config(self.config_path).diff
        started: Future[str] = Future()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                with CaptureStore.open(self.capture, readonly=not self.run) as store:
                    chosen = select_sessions(store.iter_sessions(), self.session_ids, self.routes)
                    if not chosen:
                        raise BadInput(f"{self.capture}: no recorded session matches the filters")
                    self.server = MockServer(
                        chosen, config=config, options=self.options,
                        store=store if self.run else None, run=self.run, log=self.lines.append,
                    )  # fmt: skip
                    async with running_server(self.server, self.host, self.port) as url:
                        started.set_result(url)
                        await self._stop.wait()
            except BaseException as e:
                if not started.done():
                    started.set_exception(e)
                else:
                    raise

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True,
                                        name="wsshadow-serve")  # fmt: skip
        self._thread.start()
        self.url = started.result(timeout)
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (idempotent); waits for the thread."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
