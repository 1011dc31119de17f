"""WsShadowRecorder against a real Starlette app under uvicorn, driven by a real client."""

from __future__ import annotations

import random
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.timeouts import scaled
from wsshadow.recorders.asgi import WsShadowRecorder
from wsshadow.recorders.serve import serve_asgi
from wsshadow.replay.capture.model import Closer, Direction, Opcode, Session, Source
from wsshadow.replay.capture.redact import PLACEHOLDER_RE, Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.diff.normalize import unnumbered

from .apps import make_app

DOC = Path(__file__).parents[2] / "docs" / "recording.md"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"


async def chat(base: str, *, bye: bool = True) -> dict[str, Any]:
    """The scripted client: what it received and how the connection ended."""
    async with connect(
        f"{base}/ws/echo?room=7&token=s3cret",
        subprotocols=[f"jwt.{JWT}", "chat.v2"],  # type: ignore[list-item]
        additional_headers={"Authorization": "Bearer top-secret", "X-Trace": "t1"},
    ) as ws:
        got: list[Any] = [await ws.recv()]
        await ws.send("hi")
        got.append(await ws.recv())
        await ws.send(b"\x00\x01\x02")
        got.append(await ws.recv())
        if bye:
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        else:
            await ws.close(code=1000, reason="done")
        return {
            "received": got,
            "subprotocol": ws.subprotocol,
            "close": (ws.close_code, ws.close_reason),
        }


def recorded(path: Path) -> list[Session]:
    with CaptureStore.open(path) as store:
        return list(store.iter_sessions())


async def test_records_handshake_messages_and_server_close(tmp_path: Path) -> None:
    capture = tmp_path / "prod.db"
    recorder = WsShadowRecorder(make_app(), capture=capture)
    with serve_asgi(recorder, lifespan="on") as served:
        seen = await chat(served.ws_url)
    # No explicit close(): the lifespan shutdown flushed the capture.
    assert recorder.stats.sessions_written == 1
    (s,) = recorded(capture)

    assert seen["subprotocol"] == "chat.v2"
    assert seen["close"] == (4000, "bye now")
    h = s.handshake
    assert s.provenance.source is Source.ASGI
    assert h.route == "/ws/echo"
    assert unnumbered(h.query) == "room=7&token=${redacted:query:token}"
    assert unnumbered(h.request_header("authorization")) == "${redacted:header:authorization}"
    assert h.request_header("x-trace") == "t1"
    assert unnumbered(h.subprotocols) == ("jwt.${redacted:subprotocol:jwt}", "chat.v2")
    assert h.status == 101 and h.subprotocol == "chat.v2"
    assert h.response_header("sec-websocket-protocol") == "chat.v2"
    assert [(m.direction, m.opcode, m.payload) for m in s.messages] == [
        (Direction.SERVER, Opcode.TEXT, '{"type":"hello","room":"7"}'),
        (Direction.CLIENT, Opcode.TEXT, "hi"),
        (Direction.SERVER, Opcode.TEXT, "echo:hi"),
        (Direction.CLIENT, Opcode.BINARY, b"\x00\x01\x02"),
        (Direction.SERVER, Opcode.BINARY, b"\x02\x01\x00"),
        (Direction.CLIENT, Opcode.TEXT, "bye"),
    ]
    assert [m.seq for m in s.messages] == list(range(6))
    times = [m.t for m in s.messages]
    assert times == sorted(times) and 0 <= times[0] < 5
    assert s.close is not None
    assert (s.close.code, s.close.reason, s.close.by) == (4000, "bye now", Closer.SERVER)
    assert s.close.t is not None and s.close.t >= times[-1]
    # What the client received is what the capture says the server sent.
    server_payloads = [m.payload for m in s.server_messages()]
    assert seen["received"] == server_payloads


async def test_client_close_and_denied_handshake_and_http_untouched(tmp_path: Path) -> None:
    capture = tmp_path / "c.db"
    recorder = WsShadowRecorder(make_app(), capture=capture, redact=False)
    with serve_asgi(recorder) as served:
        seen = await chat(served.ws_url, bye=False)
        with pytest.raises(InvalidStatus) as denied:
            async with connect(f"{served.ws_url}/ws/deny"):
                pass
        with urllib.request.urlopen(f"{served.http_url}/", timeout=scaled(5)) as r:
            body = r.read()
    recorder.close()
    assert seen["close"] == (1000, "done")
    assert denied.value.response.status_code == 403
    assert body == b"ok"
    sessions = {s.route: s for s in recorded(capture)}
    assert set(sessions) == {"/ws/echo", "/ws/deny"}  # HTTP made no session
    echo = sessions["/ws/echo"]
    assert echo.close is not None
    assert (echo.close.code, echo.close.reason, echo.close.by) == (1000, "done", Closer.CLIENT)
    # redact=False keeps credentials as sent.
    assert echo.handshake.request_header("authorization") == "Bearer top-secret"
    assert echo.handshake.subprotocols == (f"jwt.{JWT}", "chat.v2")
    deny = sessions["/ws/deny"]
    assert deny.handshake.status == 403 and deny.messages == ()
    assert deny.close is not None and deny.close.by is Closer.SERVER


async def test_custom_redactor_is_used(tmp_path: Path) -> None:
    capture = tmp_path / "r.db"
    recorder = WsShadowRecorder(
        make_app(), capture=capture, redact=Redactor(extra_headers=("x-trace",))
    )
    with serve_asgi(recorder) as served:
        await chat(served.ws_url)
    recorder.close()
    (s,) = recorded(capture)
    assert unnumbered(s.handshake.request_header("x-trace")) == "${redacted:header:x-trace}"
    assert (
        unnumbered(s.handshake.request_header("authorization"))
        == "${redacted:header:authorization}"
    )


async def test_sample_zero_records_nothing(tmp_path: Path) -> None:
    capture = tmp_path / "none.db"
    recorder = WsShadowRecorder(make_app(), capture=capture, sample=0.0)
    with serve_asgi(recorder) as served:
        for _ in range(3):
            await chat(served.ws_url)
    recorder.close()
    assert recorder.stats.sessions_seen == 3
    assert recorder.stats.sessions_sampled == 0
    assert not capture.exists() or recorded(capture) == []


async def test_sample_half_is_deterministic_with_a_seed(tmp_path: Path) -> None:
    n = 16
    rng = random.Random(7)
    expected = sum(rng.random() < 0.5 for _ in range(n))
    counts = []
    for attempt in range(2):
        capture = tmp_path / f"half{attempt}.db"
        recorder = WsShadowRecorder(make_app(), capture=capture, sample=0.5, seed=7)
        with serve_asgi(recorder) as served:
            for _ in range(n):
                async with connect(f"{served.ws_url}/ws/echo") as ws:
                    await ws.recv()
        recorder.close()
        counts.append(len(recorded(capture)))
        assert recorder.stats.sessions_seen == n
    assert counts == [expected, expected]
    assert 0 < expected < n


async def transcript(base: str) -> list[Any]:
    """Everything a client can observe over a few sessions, for before/after comparisons."""
    out: list[Any] = []
    for bye in (True, False):
        seen = await chat(base, bye=bye)
        out.append((seen["received"], seen["subprotocol"], seen["close"]))
    try:
        async with connect(f"{base}/ws/deny"):
            pass
    except InvalidStatus as e:
        out.append(e.response.status_code)
    return out


@pytest.mark.parametrize("broken", ["missing-dir", "parent-is-a-file", "not-a-capture"])
async def test_broken_store_leaves_the_app_unchanged(tmp_path: Path, broken: str) -> None:
    if broken == "missing-dir":
        capture = tmp_path / "no" / "such" / "dir" / "x.db"
    elif broken == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        capture = tmp_path / "file" / "x.db"
    else:
        capture = tmp_path / "junk.db"
        capture.write_bytes(b"this is not sqlite" * 100)
    with serve_asgi(make_app()) as plain:
        expected = await transcript(plain.ws_url)
    recorder = WsShadowRecorder(make_app(), capture=capture)
    with serve_asgi(recorder) as served:
        actual = await transcript(served.ws_url)
    recorder.close()
    assert actual == expected
    assert expected[0][2] == (4000, "bye now") and expected[-1] == 403
    stats = recorder.stats
    assert stats.store_error is not None and str(capture) in stats.store_error
    assert stats.sessions_written == 0
    assert stats.sessions_dropped == 3 and stats.frames_dropped == 11


async def test_close_is_idempotent_and_later_sessions_pass_through(tmp_path: Path) -> None:
    capture = tmp_path / "late.db"
    recorder = WsShadowRecorder(make_app(), capture=capture)
    with serve_asgi(recorder) as served:
        await chat(served.ws_url)
        recorder.close()
        recorder.close()
        seen = await chat(served.ws_url)  # recorder closed: the app still works
    assert seen["close"] == (4000, "bye now")
    assert len(recorded(capture)) == 1
    assert recorder.stats.sessions_seen == 2


def test_sample_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="sample"):
        WsShadowRecorder(make_app(), capture="x.db", sample=1.5)


def _fastapi_app() -> Any:
    """The FastAPI example of docs/recording.md, run as written but for the line that wraps it.

    That last line (``app = WsShadowRecorder(api, capture=..., sample=0.1)``)
    is checked, and the test wraps ``api`` the same way with its own capture
    path and ``sample=1.0``.
    """
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    (code,) = [b for b in blocks if "WsShadowRecorder(api" in b]
    body, _, last = code.rstrip().rpartition("\n")
    assert last.startswith("app = WsShadowRecorder(api, capture=")
    assert "from wsshadow.recorders.asgi import WsShadowRecorder" in body
    namespace: dict[str, Any] = {"__name__": "main"}
    exec(compile(body, str(DOC), "exec"), namespace)
    return namespace["api"]


async def test_fastapi_app_as_in_the_docs(tmp_path: Path) -> None:
    capture = tmp_path / "prod.db"
    recorder = WsShadowRecorder(_fastapi_app(), capture=capture, sample=1.0)
    with serve_asgi(recorder, lifespan="on") as served:
        async with connect(f"{served.ws_url}/ws") as ws:
            await ws.send("a")
            assert await ws.recv() == '{"type":"echo","text":"a"}'
    (s,) = recorded(capture)
    assert [m.payload for m in s.messages] == ["a", '{"type":"echo","text":"a"}']
    assert s.close is not None and (s.close.code, s.close.by) == (1000, Closer.CLIENT)


def test_interpreter_exit_flushes(tmp_path: Path) -> None:
    """No lifespan, no close(): the capture is still written when the process exits."""
    import subprocess
    import sys
    import textwrap

    capture = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        import asyncio
        from websockets.asyncio.client import connect
        from wsshadow.recorders.asgi import WsShadowRecorder
        from wsshadow.recorders.serve import serve_asgi
        from tests.recorders.apps import make_app

        recorder = WsShadowRecorder(make_app(), capture={str(capture)!r}, flush_interval=60)

        async def main():
            async with connect(served.ws_url + "/ws/echo") as ws:
                await ws.recv()
                await ws.send("x")
                await ws.recv()

        with serve_asgi(recorder, lifespan="off") as served:
            asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=scaled(60)
    )
    assert done.returncode == 0, done.stderr
    (s,) = recorded(capture)
    assert [m.payload for m in s.messages] == ['{"type":"hello","room":null}', "x", "echo:x"]


async def test_disk_full_mid_run_fails_open_and_recovers(tmp_path: Path) -> None:
    """A real write error (file size limit, as a full disk) loses frames, not the app."""
    import resource
    import signal

    capture = tmp_path / "full.db"
    recorder = WsShadowRecorder(make_app(), capture=capture, flush_interval=0.05)
    big = "y" * 300_000
    with serve_asgi(recorder) as served:
        await chat(served.ws_url)  # fine: recorded
        await _settle(recorder, frames=6)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        try:
            async with connect(f"{served.ws_url}/ws/echo", max_size=None) as ws:
                await ws.recv()
                await ws.send(big)
                assert await ws.recv() == "echo:" + big  # the app is unaffected
            await _settle(recorder, dropped=True)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old)
        seen = await chat(served.ws_url)  # the disk has room again
        assert seen["close"] == (4000, "bye now")
    recorder.close()
    stats = recorder.stats
    assert stats.store_error is not None and "cannot write" in stats.store_error
    assert stats.sessions_dropped == 1 and stats.frames_dropped >= 2
    sessions = recorded(capture)
    assert len(sessions) == 2  # before and after the failure, nothing half-written
    assert all(len(s.messages) == 6 for s in sessions)


async def _settle(recorder: WsShadowRecorder, frames: int = 0, dropped: bool = False) -> None:
    """Wait (briefly) until the writer thread has written or dropped what it was given."""
    import asyncio

    for _ in range(200):
        st = recorder.stats
        if (dropped and st.frames_dropped) or (not dropped and st.frames_written >= frames):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"writer did not settle: {recorder.stats}")


async def test_recorded_client_side_replays_against_the_unwrapped_app(
    tmp_path: Path, serve_app: Any
) -> None:
    """The capture holds what a replay needs: sending its client side to the same app,
    unwrapped, gives the recorded server side back (a minimal causal replay)."""
    capture = tmp_path / "prod.db"
    recorder = WsShadowRecorder(make_app(), capture=capture)
    with serve_asgi(recorder) as served:
        await chat(served.ws_url)
    recorder.close()
    (s,) = recorded(capture)
    unwrapped = serve_app(make_app())
    got: list[Any] = []
    # Redacted credentials are placeholders (not even valid subprotocol tokens):
    # replay substitutes fresh ones, as the replay engine does from configuration.
    fresh = lambda text: PLACEHOLDER_RE.sub("fresh", text)  # noqa: E731
    async with connect(
        f"{unwrapped.ws_url}{s.handshake.route}?{fresh(s.handshake.query)}",
        subprotocols=[fresh(p) for p in s.handshake.subprotocols],  # type: ignore[misc]
    ) as ws:
        assert ws.subprotocol == s.handshake.subprotocol
        server_before = 0
        for m in s.messages:
            if m.direction is Direction.SERVER:
                server_before += 1
                continue
            while len(got) < server_before:
                got.append(await ws.recv())
            await ws.send(m.payload)
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(await ws.recv())
        assert s.close is not None and ws.close_code == s.close.code
    assert got == [m.payload for m in s.server_messages()]


async def test_fastapi_validation_denial_is_recorded(tmp_path: Path) -> None:
    """FastAPI refuses a missing parameter by closing with a list as reason: still recorded."""
    api = FastAPI()

    @api.websocket("/ws/room")
    async def room(websocket: WebSocket, room: int) -> None:
        await websocket.accept()
        await websocket.send_text(str(room))
        await websocket.close()

    capture = tmp_path / "deny.db"
    recorder = WsShadowRecorder(api, capture=capture)
    with serve_asgi(recorder) as served:
        with pytest.raises(InvalidStatus):
            async with connect(f"{served.ws_url}/ws/room"):
                pass
        async with connect(f"{served.ws_url}/ws/room?room=5") as ws:
            assert await ws.recv() == "5"
    recorder.close()
    assert recorder.stats.store_error is None
    by_query = {s.handshake.query: s for s in recorded(capture)}
    assert by_query[""].handshake.status == 403
    assert by_query[""].close is not None and "room" in by_query[""].close.reason
    assert by_query["room=5"].close is not None
    assert by_query["room=5"].close.code == 1000 and by_query["room=5"].close.by is Closer.SERVER


async def test_http_denial_and_app_crash(tmp_path: Path) -> None:
    capture = tmp_path / "edge.db"
    recorder = WsShadowRecorder(make_app(), capture=capture)
    with serve_asgi(recorder) as served:
        with pytest.raises(InvalidStatus) as denied:
            async with connect(f"{served.ws_url}/ws/deny-http"):
                pass
        async with connect(f"{served.ws_url}/ws/crash") as ws:
            assert await ws.recv() == "about to fail"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    recorder.close()
    assert denied.value.response.status_code == 401
    sessions = {s.route: s for s in recorded(capture)}
    refused = sessions["/ws/deny-http"]
    assert refused.handshake.status == 401
    assert refused.handshake.response_header("content-type") == "text/plain; charset=utf-8"
    crashed = sessions["/ws/crash"]
    assert [m.payload for m in crashed.messages] == ["about to fail"]
    assert crashed.close is not None and crashed.close.by is Closer.ERROR
    assert crashed.close.error == "application raised RuntimeError"


async def test_concurrent_sessions_do_not_mix(tmp_path: Path) -> None:
    import asyncio

    capture = tmp_path / "many.db"
    recorder = WsShadowRecorder(make_app(), capture=capture, batch_size=7, flush_interval=0.01)

    async def one(i: int) -> None:
        async with connect(f"{served.ws_url}/ws/echo?room={i}") as ws:
            await ws.recv()
            for k in range(5):
                await ws.send(f"{i}-{k}")
                assert await ws.recv() == f"echo:{i}-{k}"

    with serve_asgi(recorder) as served:
        await asyncio.gather(*(one(i) for i in range(12)))
    recorder.close()
    sessions = recorded(capture)
    assert len(sessions) == 12 and recorder.stats.frames_dropped == 0
    for s in sessions:
        room = s.handshake.query.removeprefix("room=")
        expected = [f'{{"type":"hello","room":"{room}"}}']
        for k in range(5):
            expected += [f"{room}-{k}", f"echo:{room}-{k}"]
        assert [m.payload for m in s.messages] == expected
        assert [m.seq for m in s.messages] == list(range(11))
