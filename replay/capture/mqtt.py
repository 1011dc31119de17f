"""MQTT control packets inside binary messages (pure): split, read, built again.

Spec: https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/mqtt-v3.1.1.html (2: the
fixed header, 3.1: CONNECT) and https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html
(1.5.5 the variable byte integer, 3.1.2.11 CONNECT's properties). A packet is
a type and flags byte, the remaining length as a variable byte integer, then
the rest. The diff's dialect (``replay.diff.dialects.mqtt``) decodes packets
with these helpers; replay rebuilds a CONNECT with another client id
(``with_client_id``); redaction, credential filling and scrubbing change
CONNECT's password and PUBLISH's application message (``rewrite_fields``).
Each rebuilt packet has its lengths encoded again: text tools that changed
the bytes in place would leave a length that no longer fits.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "encode_string",
    "encode_varint",
    "read_string",
    "read_varint",
    "rewrite_fields",
    "split_packets",
    "whole_packets",
    "with_client_id",
]

PROTOCOL_NAMES = frozenset(("MQTT", "MQIsdp"))
"""CONNECT's protocol name: ``MQTT`` (3.1.1 and 5.0), ``MQIsdp`` (3.1)."""


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    """A variable byte integer at ``data[i:]``: (value, next index).

    Raises IndexError when the data ends inside it, ValueError past 4 bytes."""
    value, shift = 0, 0
    for _ in range(4):
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
    raise ValueError("variable byte integer too long")


def encode_varint(n: int) -> bytes:
    """``n`` (0 to 268,435,455) as a variable byte integer."""
    if not 0 <= n <= 0x0FFFFFFF:
        raise ValueError(f"{n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_string(data: bytes, i: int) -> tuple[str, int]:
    """A UTF-8 string (2-byte length, then the bytes) at ``data[i:]``: (text, next index)."""
    n = int.from_bytes(data[i : i + 2], "big")
    return data[i + 2 : i + 2 + n].decode("utf-8", "replace"), i + 2 + n


def encode_string(text: str) -> bytes:
    """``text`` as an MQTT UTF-8 string (2-byte length first)."""
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string holds at most 65,535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def split_packets(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole control packets at the start of ``buffer``, and what remains."""
    out = []
    i = 0
    while i < len(buffer):
        try:
            length, body = read_varint(buffer, i + 1)
        except IndexError:
            break
        except ValueError:  # not MQTT: the rest is one malformed packet
            out.append(buffer[i:])
            return out, b""
        end = body + length
        if end > len(buffer):
            break
        out.append(buffer[i:end])
        i = end
    return out, buffer[i:]


# The flags each packet type must carry (MQTT 3.1.1 section 2.2.2); PUBLISH's are its own.
_FLAGS = {1: 0, 2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 8: 2, 9: 0, 10: 2, 11: 0, 12: 0, 13: 0, 14: 0,
          15: 0}  # fmt: skip


def whole_packets(data: bytes) -> list[bytes] | None:
    """The control packets ``data`` is made of, exactly (each with the flags its type
    requires), or None when it is anything else: part of a packet, text, other bytes."""
    out = []
    i = 0
    while i < len(data):
        kind, flags = data[i] >> 4, data[i] & 0x0F
        if kind == 3 and flags & 0x06 == 0x06:  # QoS 3 does not exist
            return None
        if kind != 3 and _FLAGS.get(kind) != flags:
            return None
        try:
            length, body = read_varint(data, i + 1)
        except (IndexError, ValueError):
            return None
        end = body + length
        if end > len(data):
            return None
        out.append(data[i:end])
        i = end
    return out or None


def _head(kind_flags: int, rest: bytes) -> bytes:
    return bytes([kind_flags]) + encode_varint(len(rest)) + rest


def _publish(packet: bytes, change: Callable[[bytes], bytes]) -> bytes:
    _, body = read_varint(packet, 1)
    n = int.from_bytes(packet[body : body + 2], "big")
    start = body + 2 + n + (2 if packet[0] & 0x06 else 0)  # topic, then the id at QoS > 0
    if start > len(packet):
        raise ValueError("PUBLISH shorter than its topic")
    # With MQTT 5 properties come first: the change sees them as a prefix and keeps them.
    message = packet[start:]
    new = change(message)
    return packet if new == message else _head(packet[0], packet[body:start] + new)


def _connect(packet: bytes, change: Callable[[bytes], bytes]) -> bytes:
    _, body = read_varint(packet, 1)
    protocol, i = read_string(packet, body)
    if protocol not in PROTOCOL_NAMES:
        raise ValueError("not an MQTT CONNECT")
    level, flags = packet[i], packet[i + 1]
    if not flags & 0x40:
        return packet  # no password
    i += 4
    v5 = level == 5
    if v5:
        props, i = read_varint(packet, i)
        i += props
    _, i = read_string(packet, i)  # client id
    if flags & 0x04:  # a will: (5.0: its properties,) topic, payload
        if v5:
            props, i = read_varint(packet, i)
            i += props
        _, i = read_string(packet, i)
        i += 2 + int.from_bytes(packet[i : i + 2], "big")
    if flags & 0x80:
        _, i = read_string(packet, i)  # user name
    n = int.from_bytes(packet[i : i + 2], "big")
    if i + 2 + n != len(packet):
        raise ValueError("CONNECT does not end with its password")
    password = packet[i + 2 :]
    new = change(password)
    if new == password:
        return packet
    if len(new) > 0xFFFF:
        raise ValueError("an MQTT password holds at most 65,535 bytes")
    return _head(0x10, packet[body:i] + len(new).to_bytes(2, "big") + new)


def rewrite_fields(
    data: bytes, *, publish: Callable[[bytes], bytes], password: Callable[[bytes], bytes]
) -> bytes | None:
    """``data``, when it is whole MQTT packets, with each PUBLISH's application message
    passed through ``publish`` and CONNECT's password through ``password``, each packet
    whose bytes changed built again with its lengths; ``data`` itself when nothing changed.

    None when ``data`` is not whole MQTT packets (or a packet does not parse): the
    caller treats it as any other binary message."""
    packets = whole_packets(data)
    if packets is None:
        return None
    out = []
    try:
        for packet in packets:
            kind = packet[0] >> 4
            if kind == 3:
                packet = _publish(packet, publish)
            elif kind == 1:
                packet = _connect(packet, password)
            out.append(packet)
    except (IndexError, ValueError):
        return None
    new = b"".join(out)
    return data if new == data else new


def with_client_id(data: bytes, change: Callable[[str], str]) -> bytes | None:
    """``data`` with the client id of the CONNECT it starts with replaced by
    ``change(client id)``, the lengths encoded again; what follows the CONNECT
    is kept as it is. None when ``data`` does not start with a whole, well-formed
    CONNECT (MQTT 3.1, 3.1.1 or 5.0) or ``change`` leaves the id alone."""
    if data[:1] != b"\x10":
        return None
    try:
        length, body = read_varint(data, 1)
        end = body + length
        if end > len(data):
            return None  # the CONNECT goes on in the next message: left as recorded
        protocol, i = read_string(data, body)
        if protocol not in PROTOCOL_NAMES:
            return None
        level = data[i]
        i += 4  # level, flags, keep alive
        if level == 5:
            props, i = read_varint(data, i)
            i += props
        n = int.from_bytes(data[i : i + 2], "big")
        if i + 2 + n > end:
            return None
        raw_id = data[i + 2 : i + 2 + n]
        client_id = raw_id.decode("utf-8")
    except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    new = change(client_id)
    if new == client_id:
        return None
    rest = data[body:i] + encode_string(new) + data[i + 2 + n : end]
    return b"\x10" + encode_varint(len(rest)) + rest + data[end:]
