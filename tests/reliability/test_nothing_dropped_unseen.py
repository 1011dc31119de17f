"""Issue 19, items 2 and 10: the live mirror never costs the recording a message, every
message the mirror loses is counted, and so is every message the ASGI recorder loses.

Real proxy, upstream and candidate on 127.0.0.1. The flooding candidate sends
16 KiB messages as fast as it can for as long as it is connected; the proxy's
queue for the disk is made small (4 MiB) so that the flood outruns the writer
within the test's time, as a flood on a production machine outruns 256 MiB.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.recorders.apps import make_app
from tests.reliability.breaking_candidate import breaking_candidate
from tests.reliability.kit import ws_server
from tests.timeouts import scaled
from wsshadow.recorders.asgi import RecorderStats, WsShadowRecorder
from wsshadow.recorders.mirror import MIRROR_RUN
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.recorders.serve import serve_asgi
from wsshadow.replay.capture.model import Closer, Direction
from wsshadow.replay.capture.store import RECORDED_ONLY, CaptureStore

MESSAGES = 300


def _flood(ws: Any) -> None:
    chunk = b"\x00" * 16384
    try:
        while True:
            ws.send(chunk)
    except ConnectionClosed:
        return


async def test_a_flooding_mirror_candidate_costs_the_recording_nothing(tmp_path: Path) -> None:
    cap = tmp_path / "cap.db"
    with ws_server() as upstream, ws_server(_flood) as candidate:
        async with RecordingProxy(
            upstream, cap, listen=("127.0.0.1", 0), mirror=candidate, queue_bytes=4 * 2**20
        ) as proxy:
            async with connect(proxy.url + "/ws", max_size=None) as ws:
                for i in range(MESSAGES):
                    text = f"message {i} " + "y" * 4000
                    await ws.send(text)
                    assert await asyncio.wait_for(ws.recv(), scaled(30)) == text
        stats = proxy.stats
    with CaptureStore.open(cap) as store:
        (primary,) = list(store.iter_sessions(RECORDED_ONLY))
        (mirrored,) = list(store.iter_sessions(MIRROR_RUN))
    data = [m for m in primary.messages if m.opcode.is_data]
    assert len(data) == 2 * MESSAGES  # every message the client saw acknowledged, both ways
    assert stats.dropped == 0
    # the flood went over the mirror's own budget: dropped there and counted there
    assert stats.mirror_dropped > 0, stats
    flood = [m for m in mirrored.messages if m.direction is Direction.SERVER]
    assert len(flood) > 0
    assert mirrored.close is not None


async def test_every_message_a_closed_candidate_never_got_is_counted(tmp_path: Path) -> None:
    """A candidate that hangs up at once: each client message is either in the mirror's
    session or counted dropped (before, messages sent after the hang-up vanished)."""

    def hang_up(ws: Any) -> None:
        ws.close(1001, "going away")

    cap = tmp_path / "cap.db"
    with ws_server() as upstream, ws_server(hang_up) as candidate:
        async with RecordingProxy(
            upstream, cap, listen=("127.0.0.1", 0), mirror=candidate
        ) as proxy:
            async with connect(proxy.url + "/ws") as ws:
                await asyncio.sleep(scaled(0.3))  # the candidate has hung up by now
                for i in range(20):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
        stats = proxy.stats
    with CaptureStore.open(cap) as store:
        (mirrored,) = list(store.iter_sessions(MIRROR_RUN))
    reached = [m for m in mirrored.messages if m.direction is Direction.CLIENT and m.opcode.is_data]
    assert len(reached) + stats.mirror_dropped == 20, (len(reached), stats)
    assert stats.mirror_dropped > 0
    assert mirrored.close is not None


@pytest.mark.parametrize("how", ["reset", "malformed", "close-then-reset"])
async def test_a_mirror_receiver_that_breaks_mid_session_is_closed_and_counted(
    tmp_path: Path, how: str
) -> None:
    """A candidate that accepts, takes 5 messages, then resets its TCP connection or sends
    a malformed frame: its mirrored session still gets a close row naming what happened,
    every client message it did not get is counted as the mirror's, and the recording
    keeps every message (before, messages after the break vanished uncounted)."""
    sent = 30
    cap = tmp_path / "cap.db"
    with ws_server() as upstream, breaking_candidate(how, after=5) as candidate:
        async with RecordingProxy(
            upstream, cap, listen=("127.0.0.1", 0), mirror=candidate
        ) as proxy:
            async with connect(proxy.url + "/ws") as ws:
                for i in range(sent):
                    await ws.send(f"m{i}")
                    assert await asyncio.wait_for(ws.recv(), scaled(10)) == f"m{i}"
                    if i == 10:  # the candidate has broken by now
                        await asyncio.sleep(scaled(0.3))
        stats = proxy.stats
    with CaptureStore.open(cap) as store:
        (primary,) = list(store.iter_sessions(RECORDED_ONLY))
        (mirrored,) = list(store.iter_sessions(MIRROR_RUN))
    assert [m.payload for m in primary.messages if m.opcode.is_data] == [
        f"m{i}" for i in range(sent) for _ in "cs"
    ]
    assert stats.dropped == 0
    reached = [m for m in mirrored.messages if m.direction is Direction.CLIENT]
    assert len(reached) + stats.mirror_dropped == sent, (len(reached), stats)
    assert stats.mirror_dropped >= sent - 11, stats  # at least the ones after the break
    close = mirrored.close
    assert close is not None, "the mirrored session has no close row"
    if how == "close-then-reset":
        assert close.by in (Closer.SERVER, Closer.ERROR), close
    else:
        assert close.by is Closer.ERROR, close
        assert close.error and "candidate" in close.error, close


async def _echo_session(base: str, texts: list[str]) -> int:
    """One session of the test app: hello, each text echoed, then ``bye`` (the app closes).
    Returns the messages that passed through the app, both ways."""
    async with connect(f"{base}/ws/echo", max_size=None) as ws:
        await asyncio.wait_for(ws.recv(), scaled(10))  # hello
        for text in texts:
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), scaled(10)) == "echo:" + text
        await ws.send("bye")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), scaled(10))
    assert ws.close_code == 4000  # the app's own close: its traffic went on unchanged
    return 1 + 2 * len(texts) + 1


async def test_asgi_recorder_counts_and_reports_messages_a_failing_store_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real write failure under uvicorn (the process's file-size limit lowered below the
    capture's write-ahead log, as a full disk): the app's traffic goes on, and every message
    the capture lacks is counted in ``stats.frames_lost_to_store`` and reported at warning
    level, when it happens and in the summary line when the recorder closes (before: counted
    only in a ``frames_dropped`` lumped with queue drops, and nothing said at close)."""
    caplog.set_level(logging.INFO, logger="wsshadow.recorder")
    capture = tmp_path / "asgi.db"
    recorder = WsShadowRecorder(make_app(), capture=capture, flush_interval=0.05)
    passed = 0

    async def settled(total: int) -> RecorderStats:
        deadline = time.monotonic() + scaled(20)
        while True:
            st = recorder.stats
            if st.frames_written + st.frames_dropped >= total:
                return st
            assert time.monotonic() < deadline, (total, st)
            await asyncio.sleep(0.02)

    with serve_asgi(recorder) as served:
        passed += await _echo_session(served.ws_url, ["before"])
        await settled(passed)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        try:
            small = [f"small {i}" for i in range(20)]
            passed += await _echo_session(served.ws_url, [*small, "y" * 300_000, *small])
            passed += await _echo_session(served.ws_url, small)
            failing = await settled(passed)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old)
        passed += await _echo_session(served.ws_url, ["after"])  # room again
        await settled(passed)
    recorder.close()
    stats = recorder.stats
    with CaptureStore.open(capture) as store:
        kept = sum(len(s.messages) for s in store.iter_sessions())
    print(f"\nASGI store failure: {passed} messages passed, {kept} in the capture, {stats}")
    assert failing.frames_lost_to_store > 0, failing
    assert stats.frames_lost_to_store == passed - kept, (passed, kept, stats)
    assert stats.frames_lost_to_queue == 0
    assert stats.frames_dropped == stats.frames_lost_to_store
    assert stats.store_error is not None and "cannot write" in stats.store_error
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("cannot write" in w and "frames_lost_to_store" in w for w in warnings), warnings
    summary = [w for w in warnings if f"{passed - kept} messages dropped" in w]
    assert summary, warnings
    assert f"{stats.frames_written} messages written" in summary[0]
    assert f"{stats.frames_lost_to_store} lost to the store" in summary[0]
