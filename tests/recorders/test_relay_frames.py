"""The frame relay: compression end to end, fragments, limits, and the pure frame helpers."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from wsshadow.recorders.frames import (
    Deflate,
    Inflater,
    MessageTooBig,
    close_frame,
    close_payload,
    deflate_offer,
    negotiated_deflate,
    parse_close,
)
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.model import Closer, Direction, Opcode
from wsshadow.replay.capture.store import CaptureStore

from .conftest import Upstream, masked_frame, raw_upgrade


def proxy_for(upstream: Upstream, capture: Path, **kw: object) -> RecordingProxy:
    return RecordingProxy(upstream.url, capture, listen=("127.0.0.1", 0), **kw)  # type: ignore[arg-type]


def only_session(capture: Path):  # type: ignore[no-untyped-def]
    with CaptureStore.open(capture) as store:
        [s] = list(store.iter_sessions())
    return s


# ---- against real servers --------------------------------------------------------


async def test_deflate_is_negotiated_end_to_end_and_recorded_inflated(upstream, capture_path):
    texts = [f'{{"type":"chat","n":{i},"text":"{"hello " * 20}"}}' for i in range(20)]
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo") as ws:  # websockets offers deflate
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            for text in texts:
                await ws.send(text)
                assert await ws.recv() == text
    # The client's own offer reached the upstream, which answered it for both hops.
    offer = upstream.seen_headers[0]["Sec-WebSocket-Extensions"]
    assert offer.startswith("permessage-deflate")
    s = only_session(capture_path)
    data = [(m.direction, m.payload) for m in s.messages if m.opcode.is_data]
    assert data == [(d, t) for t in texts for d in (Direction.CLIENT, Direction.SERVER)]
    assert any(k.lower() == "sec-websocket-extensions" for k, _ in s.handshake.response_headers)


async def test_no_context_takeover_both_ways_is_read_right(upstream, capture_path):
    factory = ClientPerMessageDeflateFactory(
        client_no_context_takeover=True, server_no_context_takeover=True
    )
    texts = ["same words again " * 10] * 5 + ["other words " * 10]
    async with proxy_for(upstream, capture_path) as proxy:
        async with connect(proxy.url + "/echo", extensions=[factory], compression=None) as ws:
            [ext] = ws.protocol.extensions
            assert ext.local_no_context_takeover and ext.remote_no_context_takeover
            for text in texts:
                await ws.send(text)
                assert await ws.recv() == text
    s = only_session(capture_path)
    assert [
        m.payload for m in s.messages if m.direction is Direction.SERVER and m.opcode.is_data
    ] == texts


async def test_only_permessage_deflate_offers_go_upstream(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        _reader, writer, head = await raw_upgrade(
            proxy.port,
            extensions="x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
        )
        writer.close()
    assert head.startswith(b"HTTP/1.1 101")
    offer = upstream.seen_headers[0]["Sec-WebSocket-Extensions"]
    assert offer == "permessage-deflate; client_max_window_bits"


async def test_fragments_are_relayed_and_recorded_as_one_message(upstream, capture_path):
    async with proxy_for(upstream, capture_path) as proxy:
        reader, writer, _ = await raw_upgrade(proxy.port)
        # "Hello, " + ping in the middle + "world": fragments, as Autobahn 5.6 sends them.
        writer.write(
            masked_frame(0x01, b"Hello, ")
            + masked_frame(0x89, b"mid")
            + masked_frame(0x80, b"world")
        )
        frames = []
        for _ in range(2):
            first, length = await reader.readexactly(2)
            frames.append((first, await reader.readexactly(length & 0x7F)))
        writer.write(masked_frame(0x88, close_payload(1000)))
        first, length = await reader.readexactly(2)
        frames.append((first, await reader.readexactly(length & 0x7F)))
        writer.close()
    assert frames == [(0x8A, b"mid"), (0x81, b"Hello, world"), (0x88, close_payload(1000))]
    assert upstream.received == ["Hello, world"]
    s = only_session(capture_path)
    kinds = [(m.direction, m.opcode, m.payload) for m in s.messages]
    assert kinds[:3] == [
        (Direction.CLIENT, Opcode.PING, b"mid"),
        (Direction.CLIENT, Opcode.TEXT, "Hello, world"),
        (Direction.SERVER, Opcode.PONG, b"mid"),
    ]  # the message is whole once its last fragment came, in the same read as the ping
    assert s.close.code == 1000 and s.close.by is Closer.CLIENT


# ---- the pure helpers -------------------------------------------------------------


def test_close_payloads_and_frames():
    assert close_payload(None) == b""
    assert parse_close(close_payload(4001, "custom ✓")) == (4001, "custom ✓")
    assert parse_close(b"") == (None, "") and parse_close(b"\x03") == (None, "")
    plain = close_frame(1001, "going away", masked=False)
    assert plain == b"\x88\x0c\x03\xe9going away"
    masked = close_frame(1009, masked=True)
    assert masked[:2] == b"\x88\x82"
    mask, body = masked[2:6], masked[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == close_payload(1009)


def test_deflate_offer_and_answer():
    assert deflate_offer([]) is None
    assert deflate_offer(["x-webkit-deflate-frame"]) is None
    assert (
        deflate_offer(["permessage-deflate; client_max_window_bits, x-foo", "PerMessage-Deflate"])
        == "permessage-deflate; client_max_window_bits, PerMessage-Deflate"
    )
    assert negotiated_deflate([]) == (None, None)
    assert negotiated_deflate(["permessage-deflate; server_no_context_takeover"]) == (
        Deflate(client_no_context_takeover=False, server_no_context_takeover=True),
        None,
    )
    deflate, problem = negotiated_deflate(["x-foo"])
    assert deflate is None and problem is not None and "x-foo" in problem


def _deflated(messages: list[bytes], reset: bool) -> list[bytes]:
    out = []
    c = zlib.compressobj(wbits=-15)
    for m in messages:
        if reset:
            c = zlib.compressobj(wbits=-15)
        data = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        out.append(data[:-4])  # RFC 7692: the 00 00 ff ff tail is left off
    return out


@pytest.mark.parametrize("reset", [False, True])
def test_inflater_follows_the_senders_window(reset):
    messages = [b"hello hello hello", b"hello again", b"x" * 5000]
    inflater = Inflater(10_000, no_context_takeover=reset)
    assert [inflater.inflate(d) for d in _deflated(messages, reset)] == messages


def test_inflater_stops_at_the_limit():
    [bomb] = _deflated([b"\0" * 1_000_000], reset=True)
    assert len(bomb) < 2000
    with pytest.raises(MessageTooBig):
        Inflater(100_000).inflate(bomb)
    assert Inflater(1_000_000).inflate(bomb) == b"\0" * 1_000_000
