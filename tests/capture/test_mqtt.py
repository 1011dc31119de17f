"""MQTT packets: the variable byte integer both ways, a CONNECT rebuilt with another
client id, passwords and PUBLISH messages changed with every length encoded again; read
back by the MQTT dialect."""

from __future__ import annotations

import pytest

from wsshadow.replay.capture.model import Direction
from wsshadow.replay.capture.mqtt import (
    encode_string,
    encode_varint,
    read_string,
    read_varint,
    rewrite_fields,
    split_packets,
    whole_packets,
    with_client_id,
)
from wsshadow.replay.diff.dialects.mqtt import Mqtt


def connect(
    client_id: str,
    level: int = 4,
    *,
    will: bool = False,
    user: str | None = None,
    password: bytes | None = None,
    properties: bytes = b"",
) -> bytes:
    """A CONNECT built field by field per MQTT 3.1.1 / 5.0 section 3.1."""
    flags = 0x02 | (0x04 if will else 0) | (0x80 if user else 0) | (0x40 if password else 0)
    head = encode_string("MQIsdp" if level == 3 else "MQTT") + bytes([level, flags]) + b"\x00\x3c"
    if level == 5:
        head += encode_varint(len(properties)) + properties
    body = encode_string(client_id)
    if will:
        body += (b"\x00" if level == 5 else b"") + encode_string("dev/gone") + b"\x00\x03bye"
    if user:
        body += encode_string(user)
    if password:
        body += len(password).to_bytes(2, "big") + password
    rest = head + body
    return b"\x10" + encode_varint(len(rest)) + rest


def decoded(data: bytes) -> dict[str, object]:
    (event,) = [e for e in Mqtt().decode_message(Direction.CLIENT, data) if e.key == "CONNECT"]
    assert isinstance(event.value, dict)
    return event.value


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_varint_round_trips_at_every_width(n: int) -> None:
    raw = encode_varint(n)
    assert read_varint(raw + b"\xff", 0) == (n, len(raw))
    assert len(raw) == 1 + (n > 127) + (n > 16_383) + (n > 2_097_151)


def test_varint_and_string_refuse_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        encode_varint(268_435_456)
    with pytest.raises(ValueError):
        read_varint(b"\xff\xff\xff\xff\x01", 0)
    with pytest.raises(ValueError):
        encode_string("x" * 65_536)
    assert read_string(encode_string("dé") + b"!", 0) == ("dé", 5)


@pytest.mark.parametrize("level", [3, 4, 5])
def test_connect_gets_the_new_id_and_keeps_every_other_field(level: int) -> None:
    password = bytes(range(0x80, 0xC0))  # binary, not UTF-8: kept byte for byte
    original = connect("sensor-1", level, will=True, user="ops", password=password,
                       properties=b"\x11\x00\x00\x00\x0a" if level == 5 else b"")  # fmt: skip
    rebuilt = with_client_id(original, lambda old: old.replace("-", "") + "X" * 200)
    assert rebuilt is not None
    packets, rest = split_packets(rebuilt)
    assert packets == [rebuilt] and rest == b""  # the remaining length was encoded again
    assert not original[1] & 0x80 and rebuilt[1] & 0x80  # its length now takes 2 bytes
    before, after = decoded(original), decoded(rebuilt)
    assert after.pop("client_id") == "sensor1" + "X" * 200
    before.pop("client_id")
    assert after == before
    assert rebuilt.endswith(len(password).to_bytes(2, "big") + password)


def test_packets_after_the_connect_are_kept_as_they_are() -> None:
    subscribe = b"\x82\x08\x00\x01\x00\x03a/b\x01"
    rebuilt = with_client_id(connect("c1") + subscribe, lambda old: "other")
    assert rebuilt is not None
    packets, rest = split_packets(rebuilt)
    assert packets[1:] == [subscribe] and rest == b""
    assert decoded(packets[0])["client_id"] == "other"


@pytest.mark.parametrize(
    "data",
    [
        connect("c1")[:10],  # the CONNECT goes on in the next message
        b"\x30\x05\x00\x01ahi",  # a PUBLISH
        b"\x10\x06\x00\x04HTTP",  # not MQTT's protocol name
        b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x09ab",  # client id longer than the packet
        b"\x10\xff\xff\xff\xff\x01",  # a length no packet has
        b"",
    ],
)
def test_anything_but_a_whole_connect_is_left_alone(data: bytes) -> None:
    assert with_client_id(data, lambda old: "new") is None


def test_an_unchanged_id_is_left_alone() -> None:
    assert with_client_id(connect("same"), lambda old: old) is None


def publish(topic: str, message: bytes, qos: int = 0) -> bytes:
    rest = encode_string(topic) + (b"\x00\x07" if qos else b"") + message
    return bytes([0x30 | qos << 1]) + encode_varint(len(rest)) + rest


def test_whole_packets_only_when_the_bytes_are_exactly_packets() -> None:
    both = connect("c1") + publish("a/b", b"hi", qos=1)
    assert whole_packets(both) == [connect("c1"), publish("a/b", b"hi", qos=1)]
    assert whole_packets(both[:-1]) is None  # a packet goes on in the next message
    for text in (b'{"password":"x"}', b"[1,2]", b"password=x&a=b", b'"x"', b""):
        assert whole_packets(text) is None, text
    assert whole_packets(b"\x60\x02\x00\x01") is None  # PUBREL must carry flags 0b0010
    assert whole_packets(b"\x62\x02\x00\x01") == [b"\x62\x02\x00\x01"]
    assert whole_packets(b"\x36\x02\x00\x00") is None  # QoS 3


def test_rewrite_fields_changes_the_password_and_messages_and_fixes_every_length() -> None:
    data = (
        connect("c1", 5, will=True, user="ops", password=b"old")
        + publish("cfg", b'{"n":1}', qos=1)
        + b"\xc0\x00"
    )
    new = rewrite_fields(
        data, publish=lambda m: m.replace(b"1", b"2" * 300), password=lambda p: b"new-" * 40
    )
    assert new is not None
    packets = whole_packets(new)
    assert packets is not None and len(packets) == 3 and packets[2] == b"\xc0\x00"
    assert packets[0].endswith(b"\x00\xa0" + b"new-" * 40)
    assert decoded(packets[0])["client_id"] == "c1"
    assert packets[1] == publish("cfg", b'{"n":' + b"2" * 300 + b"}", qos=1)
    assert rewrite_fields(data, publish=lambda m: m, password=lambda p: p) is data
    assert rewrite_fields(b'{"password":"x"}', publish=bytes, password=bytes) is None
