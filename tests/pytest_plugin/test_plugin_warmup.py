"""``--wsshadow-warmup N``: the plugin replays the first N sessions once before the checked ones."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from websockets.asyncio.server import serve

from tests.shadow.test_timing import IDLE, SESSIONS, Counting, make_capture
from tests.timeouts import scaled


@pytest.fixture
def counting_server() -> Iterator[tuple[str, Counting]]:
    """A counting shop server on its own loop in a thread (pytester blocks this one)."""
    shop = Counting()
    url: Future[str] = Future()
    stop: Future[None] = Future()

    async def main() -> None:
        async with serve(shop.handler, "127.0.0.1", 0) as srv:
            url.set_result(f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}")
            await asyncio.wrap_future(stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    yield url.result(timeout=scaled(10)), shop
    stop.set_result(None)
    thread.join(timeout=scaled(10))


@pytest.mark.parametrize("warmup", [0, 2])
def test_plugin_warmup(
    pytester: pytest.Pytester, counting_server: tuple[str, Counting], tmp_path: Path, warmup: int
) -> None:
    target, shop = counting_server
    capture = make_capture(tmp_path / "shop.db")
    rec = pytester.inline_run(
        "-p", "no:cacheprovider", f"--wsshadow-capture={capture}", f"--wsshadow-target={target}",
        "--wsshadow-noise-runs=0", f"--wsshadow-idle-timeout={IDLE}", f"--wsshadow-warmup={warmup}",
    )  # fmt: skip
    passed, _, failed = rec.listoutcomes()
    assert failed == [] and len(passed) == SESSIONS
    assert shop.connections == SESSIONS + warmup
