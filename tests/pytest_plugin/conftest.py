"""Fixtures for the plugin tests: the demo servers in a background thread, and a capture.

The servers run on their own event loop in a thread so that an inner pytest
run (``pytester``), which blocks the test's thread, can still reach them.
The capture is the demo's scripted traffic against the legacy server,
recorded by a small relay (``relay.py``) without redaction, so that a replay
presents the recorded users' own tokens. It leaves out the demo's shared
room: the plugin replays each session alone, and the room's two sessions
replay only together (``docs/scenarios.md``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pytest_plugin.relay import recording_relay
from tests.timeouts import scaled
from wsshadow.replay.capture.model import Session
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.demo import demo_servers, run_traffic


@dataclass(frozen=True)
class RecordedDemo:
    """The running demo servers and a capture of the legacy server's traffic."""

    legacy: str
    consolidated: str
    capture: Path
    sessions: tuple[Session, ...]

    def session(
        self, route: str, *, authenticated: bool = True, subprotocol: bool = False
    ) -> Session:
        """The first recorded session on ``route`` matching the description."""
        for s in self.sessions:
            has_auth = bool(s.handshake.request_header("Authorization") or s.handshake.subprotocols)
            if (
                s.route == route
                and has_auth == authenticated
                and (not authenticated or bool(s.handshake.subprotocols) == subprotocol)
            ):
                return s
        raise LookupError(route)


@pytest.fixture(scope="package")
def recorded_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedDemo]:
    started: Future[RecordedDemo] = Future()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    capture = tmp_path_factory.mktemp("plugin") / "legacy.db"

    async def main() -> None:
        nonlocal stop, loop
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with demo_servers() as servers:
                async with recording_relay(servers.legacy) as relay:
                    await run_traffic(relay.url, seed=7, shared_room=False)
                with CaptureStore.open(
                    capture, create=True, redactor=Redactor(enabled=False)
                ) as st:
                    st.put_sessions(relay.sessions)
                started.set_result(RecordedDemo(servers.legacy, servers.consolidated, capture,
                                                tuple(relay.sessions)))  # fmt: skip
                await stop.wait()
        except BaseException as e:
            if not started.done():
                started.set_exception(e)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield started.result(timeout=scaled(60))
    finally:
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@pytest.fixture(autouse=True)
def _inner_ini(request: pytest.FixtureRequest) -> None:
    """Inner pytest runs get the project's asyncio settings (and no rewrite warnings:
    the plugin module is imported by the outer run already)."""
    if "pytester" in request.fixturenames:
        pytester: pytest.Pytester = request.getfixturevalue("pytester")
        pytester.makeini(
            "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
            "filterwarnings =\n    ignore::pytest.PytestAssertRewriteWarning\n"
        )
