"""What a dialect is: a pure decoder from stored frames to events (no I/O).

A ``Dialect`` turns the messages of one session into ``Event`` values: an
event key to align on, a correlation id where the protocol has one, the
value to compare (JSON decoded, nested JSON strings decoded) and a control
flag for protocol housekeeping (heartbeats, pings, transport acks). It also
says how well it fits a session (``detect``) and can re-encode a client
message after its decoded value was changed (``rewrite_client``), so that
carried-over values and credentials land inside framed payloads correctly.

Most dialects decode each message on its own and only implement
``decode_message``; those whose messages span frames (MQTT packets,
Socket.IO binary attachments) override ``decode``, which sees the whole
session in order and may keep state.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, NamedTuple

import orjson

from wsshadow.replay.capture.framing import rewrite_json_text
from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode

__all__ = [
    "CLIENT",
    "SERVER",
    "Dialect",
    "Event",
    "b64",
    "decode_nested",
    "dumps",
    "first_data",
    "loads",
    "parse_json",
]

CLIENT, SERVER = Direction.CLIENT, Direction.SERVER


class Event(NamedTuple):
    """One decoded message (or one record of a message that holds several).

    ``key``: the event key alignment matches on (``"chat message"``,
    ``"SUBSCRIBE /topic/x"``). ``corr``: the correlation id that ties a
    reply to its request, or a subscription's messages to the subscription
    (``None`` when the protocol has none for this message). ``reply``: the
    message answers the request with the same ``corr`` from the other side
    (it is then named after that request). ``control``: transport
    housekeeping, never compared. ``raw``: a text or bytes that determines
    ``key`` and ``value`` (equal raws mean equal events; None: the frame's
    payload does).
    """

    key: str
    value: Any
    corr: str | None = None
    reply: bool = False
    control: bool = False
    raw: str | bytes | None = None


MAX_JSON_DEPTH = 100
"""JSON nested deeper than this is compared as text: the field-by-field comparison
recurses once per level and must stay clear of Python's recursion limit."""


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests lists and objects more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def dumps(value: Any) -> bytes:
    """Serialize what :func:`loads` parsed (orjson, then Python's json for the huge
    integers and non-finite numbers orjson refuses)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# A run of 19 digits may be an integer past 64 bits, which orjson reads as a float,
# rounded (two different ids would compare equal): such a text goes to Python's json.
# Digits to "0", all else to " ", then a substring test: a tenth of a regex's cost.
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_NINETEEN = b"0" * 19


def parse_json(text: str | bytes) -> Any:
    """JSON exactly as written: orjson, or Python's json for what orjson refuses (NaN,
    Infinity) or would round (integers past 64 bits). Raises ValueError, or
    RecursionError past Python's nesting limit."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    data = text.encode() if type(text) is str else text
    if _NINETEEN in data.translate(_DIGITS):
        return json.loads(text)
    return value


def loads(text: str | bytes) -> Any:
    """Parse JSON exactly (:func:`parse_json`); raises ValueError."""
    try:
        value = parse_json(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    # Deeper than the comparison can recurse: the message stays text (as plain JSON does).
    brackets = (
        text.count("[") + text.count("{")
        if isinstance(text, str)
        else (text.count(b"[") + text.count(b"{"))
    )
    if brackets > MAX_JSON_DEPTH and _too_deep(value):
        raise ValueError("JSON nested too deep")
    return value


def b64(data: bytes) -> str:
    """Bytes as base64 text, the JSON-ready form of binary payloads."""
    return base64.b64encode(data).decode("ascii")


def _looks_json(s: str) -> bool:
    return len(s) >= 2 and ((s[0] == "{" and s[-1] == "}") or (s[0] == "[" and s[-1] == "]"))


def decode_nested(value: Any) -> Any:
    """``value`` with every string that holds a JSON object or array decoded, at any depth."""
    if isinstance(value, str):
        if _looks_json(value):
            try:
                return decode_nested(loads(value))
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        return {k: decode_nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_nested(v) for v in value]
    return value


def first_data(messages: Sequence[Message], limit: int = 8) -> list[Message]:
    """The first ``limit`` text or binary messages of a session."""
    out = []
    for m in messages:
        if m.opcode is Opcode.TEXT or m.opcode is Opcode.BINARY:
            out.append(m)
            if len(out) >= limit:
                break
    return out


class Dialect:
    """A protocol spoken inside WebSocket messages. Subclass it to add one.

    Set ``name`` (what ``dialect = "..."`` in the configuration and
    ``--dialect ROUTE=NAME`` say) and ``title``; implement ``decode_message``
    (or ``decode`` for protocols whose messages span frames) and ``detect``.
    Instances are stateless and shared: state lives inside ``decode``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    decodes: ClassVar[bool] = True
    """False for the dialects the normalizer handles itself (plain JSON, raw)."""

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        """How surely a session speaks this dialect, 0 (not) to 100, from its
        handshake (route, query, subprotocol) and first data messages."""
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        """The events of one text or binary message (most messages hold one)."""
        raise NotImplementedError

    def decode(self, messages: Iterable[Message]) -> Iterator[tuple[Message, Event]]:
        """Every event of a session's messages, in order, with the message it came from.

        Control frames (ping, pong, close) are skipped. Override this for
        protocols that keep state across messages.
        """
        text, binary = Opcode.TEXT, Opcode.BINARY
        for m in messages:
            if m.opcode is text or m.opcode is binary:
                for event in self.decode_message(m.direction, m.payload):
                    yield m, event

    def rewrite_client(self, payload: str | bytes, transform: Callable[[str], str]) -> str | bytes:
        """A client message with ``transform`` applied to every string inside it.

        The default finds the JSON documents inside the text (after a short
        prefix such as Socket.IO's ``42``, in STOMP bodies, per SignalR
        record, nested JSON strings included), transforms their strings and
        encodes them back the way they were framed. Binary is left alone.
        """
        if not isinstance(payload, str):
            return payload
        return rewrite_json_text(payload, transform)
