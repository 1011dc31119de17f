"""Issue 19, item 5: one client cannot lock everyone out of the recording proxy.

Real proxy, real upstream, real TCP connections on 127.0.0.1: 40
connections that each send ``GET`` and nothing more, against a proxy with a
1 s handshake read timeout and a limit of 20 connections. Before the fix
they were held forever, legitimate clients could not get in once
descriptors ran out, and nothing was logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from websockets.asyncio.client import connect

from tests.reliability.kit import ws_server
from tests.timeouts import scaled
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore


async def _half_request(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the proxy sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), scaled(30))


async def test_slow_handshakes_are_cut_and_the_limit_refuses_with_a_log_line(
    tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="wsshadow.record")
    with ws_server() as upstream:
        async with RecordingProxy(
            upstream,
            tmp_path / "cap.db",
            listen=("127.0.0.1", 0),
            handshake_read_timeout=1.0,
            max_connections=20,
        ) as proxy:
            began = time.monotonic()
            slow = [await _half_request(proxy.port) for _ in range(40)]
            answers = await asyncio.gather(*(_answer(r) for r, _ in slow))
            took = time.monotonic() - began
            # 20 refused at once with 503, 20 cut after the timeout with 408: none held
            assert sorted(a.split(b" ", 2)[1] for a in answers) == [b"408"] * 20 + [b"503"] * 20
            assert took < scaled(20), took
            for _, w in slow:
                w.close()
            # the slots are free again: a real client gets through, and is recorded
            async with connect(proxy.url + "/echo", open_timeout=scaled(10)) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
            stats = proxy.stats
    assert stats.handshake_timeouts == 20 and stats.refused_connections == 20
    assert stats.sessions == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("did not send its request head within 1 s" in w for w in warnings), warnings
    assert any("connection limit reached (20 open" in w for w in warnings), warnings
    # throttled: one line per rule here (they all happen within LOG_EVERY)
    assert len(warnings) == 2, warnings


async def test_a_legitimate_client_gets_in_while_slow_ones_hold_slots(tmp_path: Path) -> None:
    """Slow connections up to just under the limit: a legitimate client is still served
    at once (not after the timeout), and a slow client finishing in time is not cut."""
    with ws_server() as upstream:
        async with RecordingProxy(
            upstream,
            tmp_path / "cap.db",
            listen=("127.0.0.1", 0),
            handshake_read_timeout=scaled(5.0),
            max_connections=20,
        ) as proxy:
            slow = [await _half_request(proxy.port) for _ in range(18)]
            began = time.monotonic()
            async with connect(proxy.url + "/echo") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
            assert time.monotonic() - began < scaled(4)
            # one slow client finishes its head in time: an ordinary HTTP request passes
            reader, writer = slow[0]
            writer.write(b"\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), scaled(10))
            assert not head.startswith((b"HTTP/1.1 408", b"HTTP/1.1 503")), head
            for _, w in slow:
                w.close()


# ---- item 7: absolute-form request lines ----------------------------------------------


async def _request(port: int, head: bytes) -> tuple[bytes, asyncio.StreamReader]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), scaled(30))
    return answer, reader


async def test_absolute_form_request_lines_are_served_not_500(tmp_path: Path, caplog) -> None:
    """``GET http://host/x HTTP/1.1`` (RFC 9112 3.2.2): upgraded and recorded by its path;
    plain HTTP passed through; a target that is neither gets 400 and one log line."""
    caplog.set_level(logging.WARNING)
    cap = tmp_path / "cap.db"
    with ws_server() as upstream:
        async with RecordingProxy(upstream, cap, listen=("127.0.0.1", 0)) as proxy:
            upgrade = (
                b"GET http://127.0.0.1/echo?room=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head, _ = await _request(proxy.port, upgrade)
            assert head.startswith(b"HTTP/1.1 101"), head
            plain, _ = await _request(
                proxy.port, b"GET https://127.0.0.1/plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            # the upstream (a WebSocket server) answers a plain GET itself: passed through
            assert plain.startswith(b"HTTP/1.1 426"), plain
            for target in (b"mailto:x@y", b"ftp://127.0.0.1/x"):
                odd, _ = await _request(
                    proxy.port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                )
                assert odd.startswith(b"HTTP/1.") and b" 400 " in odd.split(b"\r\n")[0], odd
    with CaptureStore.open(cap) as store:
        (s,) = list(store.iter_sessions())
    assert (s.route, s.handshake.query, s.handshake.status) == ("/echo", "room=1", 101)
    # (the upstream test server's own log about vanished raw clients is not the proxy's)
    ours = [r for r in caplog.records if r.name.startswith(("wsshadow", "aiohttp"))]
    errors = [r for r in ours if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any(r.exc_info for r in ours)
    refused = [
        r.getMessage()
        for r in caplog.records
        if "request whose target" in r.getMessage() or "bad request" in r.getMessage()
    ]
    assert len(refused) == 2, refused  # one line each
