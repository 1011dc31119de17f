"""Socket.IO v5 over Engine.IO v4.

Spec (https://socket.io/docs/v4/engine-io-protocol/ and
https://socket.io/docs/v4/socket-io-protocol/), as seen on a WebSocket:

Engine.IO packets are text frames whose first character is the packet
type: ``0`` open (JSON handshake data: ``sid``, ``upgrades``,
``pingInterval``, ``pingTimeout``, ``maxPayload``), ``1`` close, ``2`` ping,
``3`` pong (``2probe`` / ``3probe`` during an upgrade from long-polling),
``4`` message, ``5`` upgrade, ``6`` noop. A binary frame is a binary
message (v4 has no prefix for it).

A Socket.IO packet is the body of an Engine.IO message::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

types ``0`` CONNECT, ``1`` DISCONNECT, ``2`` EVENT, ``3`` ACK, ``4``
CONNECT_ERROR, ``5`` BINARY_EVENT, ``6`` BINARY_ACK. A namespace other than
``/`` starts with ``/`` and ends with ``,``. An EVENT's data is an array
whose first element is the event name; with an ack id the sender expects an
ACK with the same id (in the same namespace) from the other side. A binary
packet announces N attachments, carries ``{"_placeholder": true, "num": i}``
where each goes, and is followed by N binary frames.

Decoded: the event key is the event name (``<namespace> <name>`` outside
``/``), ``connect`` / ``disconnect`` / ``connect_error`` / ``ack``; the value
is the argument (the list of arguments when there are several), binary
attachments as base64; an ack is a reply correlated by namespace and id;
pings, pongs, probes, upgrade and noop are control; the open packet and the
CONNECT answer are compared without their per-connection ``sid``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wsshadow.replay.capture.model import Handshake, Message, Opcode
from wsshadow.replay.diff.dialects.base import SERVER, Dialect, Event, b64, first_data, loads

__all__ = ["SocketIO", "parse_packet"]

_PACKET = re.compile(r"4[0-6](?:\d+-)?(?:/[^,]*,)?\d*[\[{]")
_CONTROL_TEXTS = frozenset(("2", "3", "2probe", "3probe", "5", "6"))
_NAMES = {"0": "connect", "1": "disconnect", "3": "ack", "4": "connect_error", "6": "ack"}
_VOLATILE = frozenset(("sid", "pid"))
_PING = Event("ping", None, control=True)


def parse_packet(body: str) -> tuple[str, int, str, str | None, Any]:
    """A Socket.IO packet: (type, attachments, namespace, ack id, data); raises ValueError."""
    if not body or body[0] not in "0123456":
        raise ValueError("not a Socket.IO packet")
    kind = body[0]
    i, n = 1, len(body)
    attachments = 0
    if kind in "56":
        dash = body.find("-", 1)
        if dash < 0 or not body[1:dash].isdigit():
            raise ValueError("binary packet without an attachment count")
        attachments = int(body[1:dash])
        i = dash + 1
    namespace = "/"
    if i < n and body[i] == "/":
        comma = body.find(",", i)
        end = comma if comma >= 0 else n
        namespace = body[i:end]
        i = end + 1 if comma >= 0 else n
    start = i
    while i < n and body[i].isdigit():
        i += 1
    ack = body[start:i] or None
    data = loads(body[i:]) if i < n else None
    return kind, attachments, namespace, ack, data


def _args(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _fill(value: Any, attachments: Sequence[bytes]) -> Any:
    if isinstance(value, dict):
        if value.get("_placeholder") is True and isinstance(value.get("num"), int):
            num = value["num"]
            return b64(attachments[num]) if 0 <= num < len(attachments) else None
        return {k: _fill(v, attachments) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, attachments) for v in value]
    return value


class SocketIO(Dialect):
    """Socket.IO v5 / Engine.IO v4 (see the module docstring for the spec)."""

    name = "socketio"
    title = "Socket.IO v5 (Engine.IO v4)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if "/socket.io" in handshake.route or "EIO=" in handshake.query:
            return 95
        score = 0
        for m in first_data(first, 4):
            if isinstance(m.payload, str):
                if m.direction is SERVER and m.payload.startswith('0{"sid"'):
                    return 80
                if _PACKET.match(m.payload):
                    score = 60
        return score

    def decode_message(self, direction: Any, payload: str | bytes) -> list[Event]:
        if isinstance(payload, bytes):
            return [Event("<binary>", b64(payload))]
        return [self._text(payload)]

    def _text(self, text: str, attachments: Sequence[bytes] = ()) -> Event:
        if text in _CONTROL_TEXTS:
            return (
                _PING
                if text[0] == "2"
                else Event({"3": "pong", "5": "upgrade", "6": "noop"}[text[0]], None, control=True)
            )
        kind = text[:1]
        if text[:3] == "42[":  # an event in the main namespace without an ack: most messages
            try:
                data = loads(text[2:])
            except ValueError:
                data = None
            if isinstance(data, list) and data and isinstance(data[0], str):
                return Event(data[0], _args(data[1:]))
        if kind == "4":
            try:
                return self._packet(text[1:], attachments)
            except ValueError:
                return Event("<text>", text[1:])
        if kind == "0":
            try:
                data = loads(text[1:])
            except ValueError:
                data = text[1:]
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k not in _VOLATILE}
            return Event("open", data)
        if kind == "1":
            return Event("close", None)
        return Event("<text>", text)

    def _packet(self, body: str, attachments: Sequence[bytes]) -> Event:
        kind, _, namespace, ack, data = parse_packet(body)
        prefix = "" if namespace == "/" else namespace + " "
        corr = f"{namespace}#{ack}" if ack is not None else None
        if attachments:
            data = _fill(data, attachments)
        if kind in "25":
            if isinstance(data, list) and data and isinstance(data[0], str):
                return Event(prefix + data[0], _args(data[1:]), corr)
            return Event(prefix + "<event>", data, corr)
        if kind in "36":
            value = _args(data) if isinstance(data, list) else data
            return Event(prefix + "ack", value, corr, reply=True)
        if kind == "0" and isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in _VOLATILE}
            return Event(prefix + "connect", data)
        return Event(prefix + _NAMES[kind], data)

    def decode(self, messages: Iterable[Message]) -> Iterator[tuple[Message, Event]]:
        """Binary packets wait for their attachments: the event comes with the last one."""
        text, binary = Opcode.TEXT, Opcode.BINARY
        waiting: dict[Any, tuple[Message, str, int, list[bytes]]] = {}
        for m in messages:
            if m.opcode is text:
                assert isinstance(m.payload, str)
                p = m.payload
                if p[:2] in ("45", "46"):
                    dash = p.find("-")
                    if dash > 2 and p[2:dash].isdigit() and int(p[2:dash]) > 0:
                        waiting[m.direction] = (m, p, int(p[2:dash]), [])
                        continue
                yield m, self._text(p)
            elif m.opcode is binary:
                assert isinstance(m.payload, bytes)
                pending = waiting.get(m.direction)
                if pending is None:
                    yield m, Event("<binary>", b64(m.payload))
                    continue
                first, p, count, parts = pending
                parts.append(m.payload)
                if len(parts) == count:
                    del waiting[m.direction]
                    event = self._text(p, parts)
                    yield first, event._replace(raw=p + "\x00" + "\x00".join(map(b64, parts)))
        for first, p, _, parts in waiting.values():  # attachments that never came
            yield first, self._text(p, parts)
