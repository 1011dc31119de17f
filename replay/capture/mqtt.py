"""MQTT control packets inside binary messages (pure): split, read, built again.

Spec: https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/mqtt-v3.1.1.html (2: the
fixed header, 3.1: CONNECT) and https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html
(1.5.5 the variable byte integer, 3.1.2.11 CONNECT's properties). A packet is
a type and flags byte, the remaining length as a variable byte integer, then
the rest. The diff's dialect (``replay.diff.dialects.mqtt``) decodes packets
with these helpers; replay rebuilds a CONNECT with another client id
(``with_client_id``), its lengths encoded again.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "encode_string",
    "encode_varint",
    "read_string",
    "read_varint",
    "split_packets",
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
