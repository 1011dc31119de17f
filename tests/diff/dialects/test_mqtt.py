"""MQTT 3.1.1 / 5.0 from packets built per the OASIS specs (a real broker and client:
tests/recorders/test_dialects_e2e.py)."""

import json

from tests.diff.dialects.dialectkit import C, S, detected, diff, names
from wsshadow.replay.diff.dialects.mqtt import split_packets


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def s(text: str) -> bytes:
    return len(text.encode()).to_bytes(2, "big") + text.encode()


def pid(n: int) -> bytes:
    return n.to_bytes(2, "big")


CONNECT = packet(1, 0, s("MQTT") + bytes([4, 2]) + (60).to_bytes(2, "big") + s("client-1"))
CONNACK = packet(2, 0, bytes([0, 0]))


def publish(topic: str, payload: object, qos: int = 0, ident: int | None = None) -> bytes:
    body = s(topic) + (pid(ident) if qos and ident is not None else b"")
    return packet(3, qos << 1, body + json.dumps(payload).encode())


def mqtt(temp: float = 21.5, swap: bool = False, split: bool = False) -> list:
    acks = [S(packet(9, 0, pid(1) + bytes([1]))), S(packet(4, 0, pid(2)))]
    reading = publish("sensors/kitchen", {"temp": temp, "unit": "C"}, qos=1, ident=17)
    frames = [S(reading[:5]), S(reading[5:])] if split else [S(reading)]
    return [
        C(CONNECT), S(CONNACK),
        C(packet(8, 2, pid(1) + s("sensors/#") + bytes([1]))),
        C(publish("cmd/light", {"on": True}, qos=1, ident=2)),
        *(acks[::-1] if swap else acks),
        *frames,
        C(packet(4, 0, pid(17))),
        C(packet(12, 0, b"")), S(packet(13, 0, b"")),
    ]  # fmt: skip


def test_split_packets_reassembles_and_splits():
    both = CONNACK + publish("a", 1)
    assert split_packets(both) == ([CONNACK, publish("a", 1)], b"")
    assert split_packets(both[:6]) == ([CONNACK], both[4:6])
    assert split_packets(both[:3]) == ([], both[:3])


def test_detected_by_subprotocol_and_connect_packet():
    assert detected(mqtt(), subprotocol="mqtt") == "mqtt"
    assert detected(mqtt()) == "mqtt"


def test_identical_and_split_frames_are_equivalent():
    assert diff(mqtt(), mqtt(split=True), subprotocol="mqtt") == ("mqtt", [])


def test_changed_payload_field_names_topic_and_path():
    assert names(diff(mqtt(), mqtt(temp=22.0), subprotocol="mqtt")[1]) == [
        ("changed_value", "PUBLISH sensors/kitchen", "payload.temp")
    ]


def test_acks_in_another_order_are_no_difference():
    assert diff(mqtt(), mqtt(swap=True), subprotocol="mqtt")[1] == []


def test_missing_suback_is_named_by_the_subscribe():
    cand = [f for f in mqtt() if not (isinstance(f[1], bytes) and f[1][0] >> 4 == 9)]
    assert names(diff(mqtt(), cand, subprotocol="mqtt")[1]) == [
        ("missing_event", "SUBSCRIBE sensors/#", None)
    ]
