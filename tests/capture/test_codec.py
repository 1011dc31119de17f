"""JSONL codec: exact round trips (property-tested), clear errors naming the line."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsshadow.replay.capture.jsonl import (
    read_jsonl,
    session_from_dict,
    session_to_dict,
    write_jsonl,
)
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
    Source,
)
from wsshadow.replay.errors import BadInput, CaptureError, NewerFormat

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def messages(draw: st.DrawFn) -> tuple[Message, ...]:
    out = []
    for seq in range(draw(st.integers(0, 12))):
        op = draw(st.sampled_from(list(Opcode)))
        payload: str | bytes = draw(text) if op is Opcode.TEXT else draw(st.binary(max_size=64))
        out.append(Message(seq, draw(finite), draw(st.sampled_from(list(Direction))), op, payload))
    return tuple(out)


headers = st.lists(st.tuples(text, text), max_size=4).map(tuple)

sessions_strategy = st.builds(
    Session,
    id=st.uuids().map(lambda u: u.hex[:12]),
    started_at=finite,
    handshake=st.builds(
        Handshake,
        route=text.map(lambda s: "/" + s),
        query=text,
        request_headers=headers,
        subprotocols=st.lists(text, max_size=3).map(tuple),
        status=st.one_of(st.none(), st.sampled_from([101, 401, 403, 500])),
        subprotocol=st.one_of(st.none(), text),
        response_headers=headers,
    ),
    messages=messages(),
    close=st.one_of(
        st.none(),
        st.builds(
            Close,
            code=st.one_of(st.none(), st.integers(1000, 4999)),
            reason=text,
            by=st.sampled_from(list(Closer)),
            error=st.one_of(st.none(), text),
            t=st.one_of(st.none(), finite),
        ),
    ),
    provenance=st.builds(
        Provenance,
        source=st.sampled_from(list(Source)),
        tags=st.lists(text, max_size=3).map(tuple),
        run=st.one_of(st.none(), text),
        origin=st.one_of(st.none(), text),
    ),
)


def dump(sessions: list[Session]) -> bytes:
    buf = io.BytesIO()
    write_jsonl(sessions, buf)
    return buf.getvalue()


@given(sessions_strategy)
def test_session_dict_round_trip(session: Session) -> None:
    assert session_from_dict(session_to_dict(session)) == session


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.lists(sessions_strategy, max_size=5, unique_by=lambda s: s.id))
def test_jsonl_bytes_round_trip(sessions: list[Session]) -> None:
    data = dump(sessions)
    back = list(read_jsonl(io.BytesIO(data)))
    assert back == sessions
    assert dump(back) == data


def test_one_mib_and_empty_payloads_round_trip() -> None:
    big = "ü" * (1 << 19)  # 1 MiB of UTF-8
    s = Session(
        "big",
        1.5,
        Handshake("/ws"),
        (
            Message(0, 0.0, Direction.CLIENT, Opcode.TEXT, big),
            Message(1, 0.1, Direction.SERVER, Opcode.BINARY, bytes(range(256)) * 4096),
            Message(2, 0.2, Direction.SERVER, Opcode.TEXT, ""),
            Message(3, 0.3, Direction.CLIENT, Opcode.BINARY, b""),
        ),
    )
    assert list(read_jsonl(io.BytesIO(dump([s])))) == [s]


def test_malformed_line_names_its_number() -> None:
    data = dump([]) + b'{"id": "x"\n'
    with pytest.raises(CaptureError, match=r"<jsonl>:2: not JSON"):
        list(read_jsonl(io.BytesIO(data)))


def test_missing_field_names_line_and_field() -> None:
    data = dump([]) + b"\n" + b'{"id": "x", "started_at": 1}\n'
    with pytest.raises(CaptureError, match=r":3: .*handshake.*expected an object"):
        list(read_jsonl(io.BytesIO(data)))


def test_wrong_type_and_bad_enum_are_bad_input() -> None:
    d = session_to_dict(Session("a", 1.0, Handshake("/ws")))
    d["messages"] = [{"seq": "1", "t": 0, "dir": "client", "op": "text", "text": "x"}]
    with pytest.raises(BadInput, match=r"messages\[0\]\.seq: expected an integer"):
        session_from_dict(d)
    d["messages"] = [{"seq": 1, "t": 0, "dir": "sideways", "op": "text", "text": "x"}]
    with pytest.raises(BadInput, match="'sideways' is not one of client, server"):
        session_from_dict(d)


def test_newer_format_is_refused_naming_both_versions() -> None:
    data = b'{"format":"wsshadow-capture","format_version":99}\n'
    with pytest.raises(NewerFormat, match=r"version 99.*up to version 1"):
        list(read_jsonl(io.BytesIO(data)))


def test_not_a_capture() -> None:
    with pytest.raises(CaptureError, match="not a wsshadow JSONL capture"):
        list(read_jsonl(io.BytesIO(b'{"hello": 1}\n')))
    with pytest.raises(CaptureError, match="empty file"):
        list(read_jsonl(io.BytesIO(b"")))
    with pytest.raises(CaptureError, match="not UTF-8"):
        list(read_jsonl(io.BytesIO(b"\xff\xfe\n")))
