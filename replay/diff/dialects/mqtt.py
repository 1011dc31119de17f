"""MQTT 3.1.1 and 5.0 over WebSocket (binary messages, subprotocol ``mqtt``).

Specs: https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/mqtt-v3.1.1.html and
https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html (section 6: a
WebSocket message may hold part of a control packet or several; packets
form one byte stream per direction).

A control packet is a fixed header (type in the high nibble of byte 1,
flags in the low one, then the remaining length as a variable byte
integer), a variable header and a payload. Types: 1 CONNECT, 2 CONNACK,
3 PUBLISH (flags: DUP, QoS, RETAIN; topic, packet id when QoS > 0), 4
PUBACK, 5 PUBREC, 6 PUBREL, 7 PUBCOMP, 8 SUBSCRIBE, 9 SUBACK, 10
UNSUBSCRIBE, 11 UNSUBACK, 12 PINGREQ, 13 PINGRESP, 14 DISCONNECT, 15 AUTH
(5.0). CONNECT's protocol level (4: 3.1.1, 5: 5.0) decides whether packets
carry properties (5.0: a variable byte integer length, then properties).

Decoded: packets are reassembled per direction; the event key is the
packet type, plus the topic for PUBLISH and the filters for (UN)SUBSCRIBE;
a client's packet ids correlate PUBLISH with PUBACK / PUBREC, PUBREL with
PUBCOMP, SUBSCRIBE with SUBACK and UNSUBSCRIBE with UNSUBACK; PUBLISH
payloads are decoded as JSON when they are, else as text, else base64;
pings are control. Packet ids chosen by the server, the DUP flag and
CONNECT's password are not compared. CONNECT is the client's, never
compared: replay sends each run a client id of its own
(``replay.engine.client_ids``), so runs can share a broker at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode
from wsshadow.replay.capture.mqtt import read_string as _string
from wsshadow.replay.capture.mqtt import read_varint as _varint
from wsshadow.replay.capture.mqtt import split_packets
from wsshadow.replay.diff.dialects.base import CLIENT, Dialect, Event, b64, first_data, loads

__all__ = ["Mqtt", "split_packets"]

_TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
          7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
          12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}  # fmt: skip
# Which request a reply answers, for its correlation id's namespace.
_NS = {3: "pub", 4: "pub", 5: "pub", 6: "rel", 7: "rel", 8: "sub", 9: "sub", 10: "unsub",
       11: "unsub"}  # fmt: skip
_REPLIES = frozenset((4, 5, 7, 9, 11))


def _skip_properties(data: bytes, i: int, v5: bool) -> int:
    if not v5 or i >= len(data):
        return i
    length, i = _varint(data, i)
    return i + length


def _payload(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return b64(data)
    if text[:1] in ("{", "[", '"') or text[:1].isdigit() or text in ("true", "false", "null"):
        try:
            return loads(text)
        except ValueError:
            return text
    return text


class Mqtt(Dialect):
    """MQTT 3.1.1 / 5.0 (see the module docstring for the spec)."""

    name = "mqtt"
    title = "MQTT 3.1.1 / 5.0"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if (handshake.subprotocol or "").lower().startswith("mqtt"):
            return 95
        for m in first_data(first, 1):
            if (
                isinstance(m.payload, bytes)
                and m.payload[:1] == b"\x10"
                and b"MQ" in m.payload[:12]
            ):
                return 85
        return 0

    def decode(self, messages: Iterable[Message]) -> Iterator[tuple[Message, Event]]:
        buffers: dict[Direction, bytes] = {}
        v5 = False
        for m in messages:
            if not m.opcode.is_data:
                continue
            data = m.payload if isinstance(m.payload, bytes) else m.payload.encode("utf-8")
            packets, buffers[m.direction] = split_packets(buffers.get(m.direction, b"") + data)
            for packet in packets:
                if packet[0] >> 4 == 1:
                    v5 = _connect_level(packet) == 5
                try:
                    event = self.packet(m.direction, packet, v5)
                except (IndexError, ValueError):
                    event = Event("<malformed>", b64(packet), raw=packet)
                yield m, event

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        kind = Opcode.BINARY if isinstance(payload, bytes) else Opcode.TEXT
        return [e for _, e in self.decode([Message(0, 0.0, direction, kind, payload)])]

    def packet(self, direction: Direction, packet: bytes, v5: bool) -> Event:
        """One whole control packet as an event."""
        kind, flags = packet[0] >> 4, packet[0] & 0x0F
        name = _TYPES.get(kind, f"<type {kind}>")
        _, i = _varint(packet, 1)
        if kind in (12, 13):
            return Event(name, None, control=True, raw=packet)
        if kind == 3:
            qos = (flags >> 1) & 3
            topic, i = _string(packet, i)
            pid = None
            if qos:
                pid = int.from_bytes(packet[i : i + 2], "big")
                i += 2
            i = _skip_properties(packet, i, v5)
            body = {"qos": qos, "retain": bool(flags & 1), "payload": _payload(packet[i:])}
            corr = f"pub:{pid}" if pid is not None and direction is CLIENT else None
            # The fast-path raw leaves out DUP and the packet id (server-chosen).
            raw = f"{qos}{flags & 1}{topic}\x00" + b64(packet[i:])
            return Event(f"PUBLISH {topic}", body, corr, raw=raw)
        if kind in _NS:
            pid = int.from_bytes(packet[i : i + 2], "big")
            i += 2
            rest = packet[i:]
            value: Any = None
            if kind in (8, 10):
                i = _skip_properties(packet, i, v5)
                filters: list[dict[str, Any]] = []
                while i < len(packet):
                    topic, i = _string(packet, i)
                    if kind == 8:
                        filters.append({"topic": topic, "options": packet[i]})
                        i += 1
                    else:
                        filters.append({"topic": topic})
                name = f"{name} {','.join(str(f['topic']) for f in filters)}"
                value = filters
            elif kind in (9, 11):
                i = _skip_properties(packet, i, v5)
                value = list(packet[i:])
            else:
                value = list(rest[:1]) if rest else []  # 5.0 reason code, if any
            own = (direction is CLIENT) != (kind in _REPLIES)
            corr = f"{_NS[kind]}:{pid}" if own else None
            return Event(name, value, corr, reply=kind in _REPLIES and own, raw=packet)
        if kind == 1:
            return Event(name, _connect_value(packet), raw=packet)
        if kind == 2:
            return Event(name, {"session_present": bool(packet[i] & 1), "code": packet[i + 1]},
                         raw=packet[: i + 2])  # fmt: skip
        return Event(name, list(packet[i:]) or None, raw=packet)


def _connect_level(packet: bytes) -> int:
    try:
        _, i = _varint(packet, 1)
        _, i = _string(packet, i)
        return packet[i]
    except (IndexError, ValueError):
        return 4


def _connect_value(packet: bytes) -> dict[str, Any]:
    _, i = _varint(packet, 1)
    protocol, i = _string(packet, i)
    level, flags = packet[i], packet[i + 1]
    keepalive = int.from_bytes(packet[i + 2 : i + 4], "big")
    i = _skip_properties(packet, i + 4, level == 5)
    client_id, i = _string(packet, i)
    return {"protocol": protocol, "level": level, "clean": bool(flags & 2),
            "keepalive": keepalive, "client_id": client_id,
            "username": bool(flags & 0x80), "password": bool(flags & 0x40)}  # fmt: skip
