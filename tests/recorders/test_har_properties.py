"""Properties of the HAR importer: only clean errors, and a round trip through Chrome's shape."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsshadow.recorders.har import har_document, read_har, write_har
from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode, Session
from wsshadow.replay.errors import CaptureError

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


# Near-valid documents reach the deep paths: real field names, mostly plausible values.
def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, json_values)


message_like = st.fixed_dictionaries(
    {
        "type": mostly(st.sampled_from(["send", "receive", "error", "x"])),
        "time": mostly(st.floats(1e9, 2e12) | st.integers(0, 2 * 10**12)),
        "data": mostly(st.text(max_size=12) | st.sampled_from(["AAEC", "%%", ""])),
    },
    optional={"opcode": mostly(st.sampled_from([1, 2, 8, 9, 10, -1, 0]))},
)
header_like = st.fixed_dictionaries(
    {
        "name": mostly(st.sampled_from(["Upgrade", "Sec-WebSocket-Protocol", ":path", "X"])),
        "value": mostly(st.sampled_from(["websocket", "a, b", "", "c"])),
    }
)
entry_like = st.fixed_dictionaries(
    {
        "request": mostly(
            st.fixed_dictionaries(
                {"url": mostly(st.sampled_from(["ws://h/a?b=1", "http://h/", "wss://[::1", ""]))},
                optional={"headers": mostly(st.lists(header_like, max_size=3))},
            )
        ),
        "_webSocketMessages": mostly(st.lists(message_like, max_size=4)),
    },
    optional={
        "_resourceType": mostly(st.sampled_from(["websocket", "document"])),
        "startedDateTime": mostly(
            st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", "bad", ""])
        ),
        "response": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "status": mostly(st.sampled_from([101, 0, 403])),
                    "headers": mostly(st.lists(header_like, max_size=2)),
                },
            )
        ),
    },
)
har_like = st.fixed_dictionaries(
    {"log": st.fixed_dictionaries({"entries": mostly(st.lists(entry_like, max_size=3))})}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, har_like, har_like, har_like))
def test_arbitrary_json_gives_sessions_or_a_capture_error(doc: Any) -> None:
    try:
        sessions = har_document(doc, "fuzz.har")
    except CaptureError as e:
        assert "\n" not in str(e) and str(e).startswith("fuzz.har: ")
    else:
        assert sessions and all(isinstance(s, Session) for s in sessions)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_capture_error(raw: bytes) -> None:
    with pytest.raises(CaptureError, match=r"^bytes\.har: "):
        read_har(io.BytesIO(raw), "bytes.har")


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=10)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    started_at = draw(st.integers(1_000_000_000_000_000, 2_000_000_000_000_000)) / 1e6
    count = draw(st.integers(0, 8))
    messages = []
    t = 0.0
    for seq in range(count):
        t += draw(st.integers(0, 5_000_000)) / 1e6
        opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
        payload: str | bytes = draw(text) if opcode is Opcode.TEXT else draw(st.binary(max_size=40))
        direction = draw(st.sampled_from(list(Direction)))
        messages.append(Message(seq, t, direction, opcode, payload))
    offered = tuple(draw(st.lists(token, max_size=3, unique=True)))
    status = draw(st.sampled_from([101, 403, None]))
    handshake = Handshake(
        route="/" + draw(st.text(alphabet="abcxyz/_-.%20", max_size=15)),
        query=draw(st.sampled_from(["", "a=1", "room=7&x=%20y"])),
        subprotocols=offered,
        status=status,
        subprotocol=draw(st.sampled_from(offered)) if offered and status == 101 else None,
    )
    return Session("s", started_at, handshake, tuple(messages))


def basics(s: Session) -> tuple[Any, ...]:
    h = s.handshake
    return (h.route, h.query, h.subprotocols, h.status, h.subprotocol)


@settings(max_examples=150, deadline=None)
@given(st.lists(sessions(), min_size=1, max_size=3))
def test_round_trip_through_chrome_har(originals: list[Session]) -> None:
    out = io.StringIO()
    assert write_har(originals, out) == len(originals)
    doc = json.loads(out.getvalue())
    assert all(e["_resourceType"] == "websocket" for e in doc["log"]["entries"])
    back = read_har(io.StringIO(out.getvalue()))
    assert len(back) == len(originals)
    for a, b in zip(originals, back, strict=True):
        assert basics(b) == basics(a)
        assert abs(b.started_at - a.started_at) < 1e-5
        assert [(m.seq, m.direction, m.opcode, m.payload) for m in b.messages] == [
            (m.seq, m.direction, m.opcode, m.payload) for m in a.messages
        ]
        for mb, ma in zip(b.messages, a.messages, strict=True):
            assert abs(mb.t - ma.t) < 1e-5
