"""The recording proxy against real websockets servers and clients on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.timeouts import scaled
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.model import Closer, Direction, Opcode, Source
from wsshadow.replay.capture.store import CaptureStore

from .conftest import Upstream, masked_frame, raw_upgrade


def proxy_for(upstream: Upstream, capture: Path, **kw: object) -> RecordingProxy:
    return RecordingProxy(upstream.url, capture, listen=("127.0.0.1", 0), **kw)  # type: ignore[arg-type]


def sessions(capture: Path, run: str | None = None) -> list:
    with CaptureStore.open(capture) as store:
        return list(store.iter_sessions(run))


async def test_text_and_binary_pass_byte_exact_and_are_recorded(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo?room=1") as ws:
            await ws.send("héllo ✓")
            assert await ws.recv() == "héllo ✓"
            blob = bytes(range(256)) * 4
            await ws.send(blob)
            assert await ws.recv() == blob
    assert upstream.seen_paths == ["/echo?room=1"]
    [s] = sessions(capture_path)
    assert s.route == "/echo" and s.handshake.query == "room=1"
    assert [(m.direction, m.opcode, m.payload) for m in s.messages if m.opcode.is_data] == [
        (Direction.CLIENT, Opcode.TEXT, "héllo ✓"),
        (Direction.SERVER, Opcode.TEXT, "héllo ✓"),
        (Direction.CLIENT, Opcode.BINARY, blob),
        (Direction.SERVER, Opcode.BINARY, blob),
    ]
    assert [m.seq for m in s.messages] == list(range(len(s.messages)))
    assert all(b.t >= a.t for a, b in zip(s.messages, s.messages[1:], strict=False))
    assert s.close is not None and s.close.by is Closer.CLIENT and s.close.code == 1000
    assert proxy.stats.sessions == 1 and proxy.stats.dropped == 0


async def test_server_close_4001_with_reason_reaches_client_unchanged(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/close4001") as ws:
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "custom reason ✓"
    [s] = sessions(capture_path)
    assert (s.close.code, s.close.reason, s.close.by) == (4001, "custom reason ✓", Closer.SERVER)
    closes = [m for m in s.messages if m.opcode is Opcode.CLOSE]
    assert [m.direction for m in closes] == [Direction.SERVER, Direction.CLIENT]


async def test_client_close_code_and_reason_reach_upstream_unchanged(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        ws = await connect(proxy.url + "/echo")
        await ws.send("x")
        await ws.recv()
        await ws.close(4002, "client leaving")
        # The close handshake completed: the client got the upstream's echo of its code.
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4002
    assert upstream.closes == [(4002, "client leaving")]
    [s] = sessions(capture_path)
    assert (s.close.code, s.close.reason, s.close.by) == (4002, "client leaving", Closer.CLIENT)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["chat.v1", "chat.v2"], "chat.v2"),  # the upstream's preference wins
        (["chat.v1"], "chat.v1"),
        (["unknown.v9"], None),  # no choice
        ([], None),
    ],
)
async def test_subprotocol_negotiation_is_the_upstreams(upstream, capture_path, offered, chosen):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo", subprotocols=offered or None) as ws:
            assert ws.subprotocol == chosen
    sent = upstream.seen_headers[0].get("Sec-WebSocket-Protocol")
    assert ([p.strip() for p in sent.split(",")] if sent else []) == offered
    [s] = sessions(capture_path)
    assert list(s.handshake.subprotocols) == offered and s.handshake.subprotocol == chosen


async def test_refused_upgrade_status_and_body_reach_client(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        with pytest.raises(InvalidStatus) as info:
            async with connect(proxy.url + "/denied"):
                pass
    response = info.value.response
    assert response.status_code == 403
    assert response.body == b"no entry for you\n"
    assert response.headers["X-Why"] == "test"
    [s] = sessions(capture_path)
    assert s.handshake.status == 403 and s.messages == ()


async def test_redirecting_upstream_redirects_the_client_not_the_proxy(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with aiohttp.ClientSession() as http:
            headers = {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            }
            async with http.get(
                f"http://127.0.0.1:{proxy.port}/moved", headers=headers, allow_redirects=False
            ) as resp:
                assert resp.status == 302
                assert resp.headers["Location"] == "/echo"
                assert await resp.read() == b"see /echo\n"
    assert upstream.seen_paths == []  # the proxy did not follow it
    [s] = sessions(capture_path)
    assert s.handshake.status == 302


async def test_unreachable_upstream_gives_502_and_is_recorded(capture_path, unused_tcp_port):
    proxy = RecordingProxy(
        f"ws://127.0.0.1:{unused_tcp_port}", capture_path, listen=("127.0.0.1", 0)
    )
    async with proxy:
        with pytest.raises(InvalidStatus) as info:
            async with connect(proxy.url + "/ws"):
                pass
    assert info.value.response.status_code == 502
    [s] = sessions(capture_path)
    assert s.handshake.status is None
    assert s.close.by is Closer.ERROR and "upstream unreachable" in s.close.error


async def test_ten_mib_messages_byte_exact(upstream, capture_path):
    big = os.urandom(10 * 2**20)
    text = "ü" * (5 * 2**20)  # 10 MiB of UTF-8
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo", max_size=None) as ws:
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(text)
            assert await ws.recv() == text
    [s] = sessions(capture_path)
    payloads = [m.payload for m in s.messages if m.opcode.is_data]
    assert payloads == [big, big, text, text]


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_message_over_the_limit_closes_1009_on_both_sides(
    upstream, capture_path, compression
):
    # Compressed, 1 MiB of one letter is a few KiB: the limit applies to what it carries.
    async with proxy_for(upstream, capture_path, max_message_size=2**20) as proxy:
        async with connect(proxy.url + "/echo", max_size=None, compression=compression) as ws:
            await ws.send(b"x" * (2**20 + 1))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
    for _ in range(50):
        if upstream.closes:
            break
        await asyncio.sleep(0.05)
    assert upstream.closes == [(1009, "")]
    assert upstream.received == []  # the message never reached the upstream
    [s] = sessions(capture_path)
    assert s.close.code == 1009 and s.close.by is Closer.ERROR
    assert s.close.error == "client sent a message over the size limit (1,048,576 bytes)"


async def test_pings_and_pongs_are_forwarded_and_recorded(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo", ping_interval=None) as ws:
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, scaled(5))  # the upstream's pong came back through
    [s] = sessions(capture_path)
    control = [(m.direction, m.opcode, m.payload) for m in s.messages if not m.opcode.is_data]
    assert control[:2] == [
        (Direction.CLIENT, Opcode.PING, b"are you there"),
        (Direction.SERVER, Opcode.PONG, b"are you there"),
    ]


async def test_plain_http_passes_through_unrecorded(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{proxy.port}/health") as resp:
                assert resp.status == 200
                assert await resp.text() == "healthy\n"
    assert sessions(capture_path) == []


async def test_routes_map_client_paths_to_upstream_paths(upstream, capture_path):
    routes = {"/ws/factory": "/echo?mode=factory"}
    async with proxy_for(upstream, capture_path, routes=routes) as proxy:
        async with connect(proxy.url + "/ws/factory?x=1") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
    assert upstream.seen_paths == ["/echo?mode=factory&x=1"]
    [s] = sessions(capture_path)
    assert s.route == "/ws/factory"  # recorded as the client asked


async def test_credentials_are_redacted_in_the_capture(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(
            proxy.url + "/echo", additional_headers={"Authorization": "Bearer s3cret"}
        ) as ws:
            await ws.send('{"type":"login","password":"hunter2"}')
            await ws.recv()
    assert upstream.seen_headers[0]["Authorization"] == "Bearer s3cret"  # forwarded as is
    raw = (
        capture_path.read_bytes() + Path(str(capture_path) + "-wal").read_bytes()
        if Path(str(capture_path) + "-wal").exists()
        else capture_path.read_bytes()
    )
    assert b"s3cret" not in raw and b"hunter2" not in raw


async def test_dead_mirror_changes_nothing_for_the_client(upstream, capture_path, unused_tcp_port):
    dead = f"ws://127.0.0.1:{unused_tcp_port}"
    async with proxy_for(upstream, capture_path, mirror=dead) as proxy:
        async with connect(proxy.url + "/close4001") as ws:
            for i in range(200):
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4001, "custom reason ✓")
    [s] = sessions(capture_path)
    data = [m for m in s.messages if m.opcode.is_data]
    assert [m.direction for m in data] == [Direction.CLIENT, Direction.SERVER] * 200 + [
        Direction.CLIENT
    ]
    [m] = sessions(capture_path, run="mirror")
    assert m.provenance.source is Source.MIRROR and m.provenance.origin == s.id
    assert m.close.by is Closer.ERROR and "unreachable" in m.close.error
    assert proxy.stats.mirror_errors == 1


async def test_live_mirror_records_the_candidates_replies(upstream, candidate, capture_path):
    candidate_url = candidate
    async with proxy_for(upstream, capture_path, mirror=candidate_url) as proxy:
        async with connect(proxy.url + "/echo") as ws:
            for i in range(20):
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
        await asyncio.sleep(0.2)
    [s] = sessions(capture_path)
    [m] = sessions(capture_path, run="mirror")
    assert m.provenance.origin == s.id and m.route == "/echo"
    data = [x for x in m.messages if x.opcode.is_data]
    assert [x.payload for x in data if x.direction is Direction.SERVER] == [
        f"M{i}" for i in range(20)
    ]
    assert [x.payload for x in data if x.direction is Direction.CLIENT] == [
        f"m{i}" for i in range(20)
    ]
    with CaptureStore.open(capture_path) as store:
        run = store.get_run("mirror")
    assert run is not None and run.target == candidate_url and run.sessions == 1


async def test_store_failure_fails_open(upstream, capture_path, caplog):
    store = CaptureStore.open(capture_path, create=True)
    try:
        # Break the capture from another connection: every later write fails.
        other = sqlite3.connect(capture_path)
        other.execute("DROP TABLE frames")
        other.commit()
        other.close()
        caplog.set_level(logging.WARNING, logger="wsshadow.record")
        async with RecordingProxy(upstream.url, store, listen=("127.0.0.1", 0)) as proxy:
            for _ in range(2):
                async with connect(proxy.url + "/echo") as ws:
                    for i in range(50):
                        await ws.send(f"m{i}")
                        assert await ws.recv() == f"m{i}"
                await asyncio.sleep(0.1)
        assert proxy.stats.dropped >= 200
        warnings = [r for r in caplog.records if "capture store failed" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        store.close()


async def test_upstream_vanishing_closes_the_client_1014(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo") as ws:
            await ws.send("die")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1014  # bad gateway: the upstream went, not the network
    [s] = sessions(capture_path)
    assert s.close.by is Closer.ERROR and "upstream vanished" in s.close.error


async def test_client_vanishing_drops_the_upstream_too(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        ws = await connect(proxy.url + "/echo")
        await ws.send("hello")
        assert await ws.recv() == "hello"
        ws.transport.abort()
        for _ in range(100):
            if upstream.closes:
                break
            await asyncio.sleep(0.02)
    assert upstream.closes == [(None, "")]  # the upstream saw no close frame either
    [s] = sessions(capture_path)
    assert s.close.by is Closer.ERROR and "client vanished" in s.close.error


@pytest.mark.slow
async def test_slow_mirror_drops_and_counts_but_never_delays_the_client(upstream, capture_path):
    from websockets.asyncio.server import serve

    released = asyncio.Event()

    async def stall(ws):  # accepts, then never reads
        await released.wait()

    async with serve(stall, "127.0.0.1", 0, compression=None, close_timeout=0.5) as server:
        slow = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        async with proxy_for(upstream, capture_path, mirror=slow) as proxy:
            async with connect(proxy.url + "/echo", max_size=None, compression=None) as ws:
                payload = os.urandom(20_000)
                start = time.perf_counter()
                for _ in range(2000):  # 40 MB: more than the queue and socket buffers hold
                    await ws.send(payload)
                    assert await ws.recv() == payload
                took = time.perf_counter() - start
            stats = proxy.stats
            released.set()
    assert took < 20
    assert stats.mirror_dropped > 0
    assert stats.dropped == 0
    [s] = sessions(capture_path)
    assert sum(1 for m in s.messages if m.opcode.is_data) == 4000


async def test_stop_closes_clients_1001_and_ends_the_mirror_run(upstream, candidate, capture_path):
    proxy = proxy_for(upstream, capture_path, mirror=candidate)
    async with proxy:
        ws = await connect(proxy.url + "/echo")
        await ws.send("one")
        assert await ws.recv() == "one"
        await proxy.stop()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
    [s] = sessions(capture_path)
    assert s.close.code == 1001 and "shut down" in s.close.error
    [m] = sessions(capture_path, run="mirror")
    assert m.close is not None
    with CaptureStore.open(capture_path) as store:
        run = store.get_run("mirror")
    assert run is not None and run.ended_at is not None and run.sessions == 1


async def test_mirror_waits_for_a_slower_candidates_last_replies(upstream, capture_path):
    from websockets.asyncio.server import serve

    async def slow_echo(ws):
        async for message in ws:
            await asyncio.sleep(0.1)
            await ws.send(message)

    async with serve(slow_echo, "127.0.0.1", 0) as server:
        slow = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
        async with proxy_for(upstream, capture_path, mirror=slow) as proxy:
            async with connect(proxy.url + "/echo") as ws:
                for i in range(3):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
            # the client is gone at once; the candidate is still 0.1-0.3 s behind
    [m] = sessions(capture_path, run="mirror")
    replies = [
        x.payload for x in m.messages if x.opcode.is_data and x.direction is Direction.SERVER
    ]
    assert replies == ["m0", "m1", "m2"]
    assert m.close is not None and m.close.code == 1000


def test_parse_routes_and_listen():
    from wsshadow.recorders.proxy import parse_listen, parse_routes
    from wsshadow.replay.errors import BadInput

    assert parse_routes(["/ws/a=/ws?mode=a", "/b=/c"]) == {"/ws/a": "/ws?mode=a", "/b": "/c"}
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8765") == ("::1", 8765)
    for bad in ("nope", "host:", ":80", "h:99999"):
        with pytest.raises(BadInput):
            parse_listen(bad)
    for bad in ("a=b", "/a", "/a=b"):
        with pytest.raises(BadInput):
            parse_routes([bad])


async def _raw_exchange(port: int, frames: bytes) -> tuple[bytes, bytes]:
    """Upgrade by hand on ``port``, send ``frames`` in one write, return (101 head, all after)."""
    reader, writer, head = await raw_upgrade(port)
    writer.write(frames)
    rest = await asyncio.wait_for(reader.read(), scaled(10))
    writer.close()
    return head, rest


async def test_protocol_error_gets_the_upstreams_own_answer_as_directly(upstream, capture_path):
    # A valid message and a frame with reserved bits set, in one write (Autobahn 3.4):
    # the frames reach the upstream untouched, so the client gets exactly the bytes
    # it gets directly (here, websockets fails the connection with 1002 at once).
    frames = masked_frame(0x81, b"Hello") + masked_frame(0x81 | 0x30, b"bad")
    port = int(upstream.url.rsplit(":", 1)[1])
    _, direct = await _raw_exchange(port, frames)
    async with proxy_for(upstream, capture_path) as proxy:
        head, proxied = await _raw_exchange(proxy.port, frames)
    assert head.startswith(b"HTTP/1.1 101")
    assert proxied == direct and direct[0] == 0x88
    assert int.from_bytes(direct[2:4], "big") == 1002
    [s] = sessions(capture_path)
    assert s.close.code == 1002 and s.close.by is Closer.ERROR
    assert s.close.error == "client broke the protocol: reserved bits set"
    assert [m.payload for m in s.messages if m.opcode.is_data] == ["Hello"]


async def test_recording_runs_below_the_relay(upstream, capture_path):
    """The writer thread is WRITER_NICE nicer than the event loop that relays."""
    import threading

    from wsshadow.recorders.recorder import WRITER_NICE

    def nice(tid: int) -> int:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[16])

    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
        for _ in range(100):  # the thread starts with the first batch, after 50 ms
            writers = [t for t in threading.enumerate() if t.name.startswith("wsshadow-writer")]
            if writers:
                break
            await asyncio.sleep(0.05)
        [writer] = writers
        assert writer.native_id is not None
        assert nice(writer.native_id) == nice(threading.get_native_id()) + WRITER_NICE
    assert [m.payload for m in sessions(capture_path)[0].messages if m.opcode.is_data] == [
        "hello",
        "hello",
    ]
