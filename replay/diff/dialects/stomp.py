"""STOMP 1.2 (also 1.0 and 1.1) over WebSocket, subprotocols ``v12.stomp`` and the like.

Spec (https://stomp.github.io/stomp-specification-1.2.html): a frame is a
command line, header lines ``name:value`` (escapes ``\\n``, ``\\c``,
``\\\\``, ``\\r``), a blank line, a body, and a NUL octet. Client frames:
``CONNECT`` / ``STOMP``, ``SEND``, ``SUBSCRIBE`` (``id``, ``destination``),
``UNSUBSCRIBE``, ``ACK`` / ``NACK``, ``BEGIN`` / ``COMMIT`` / ``ABORT``,
``DISCONNECT``; any of them may ask for a ``receipt``. Server frames:
``CONNECTED``, ``MESSAGE`` (``subscription``, ``message-id``,
``destination``), ``RECEIPT`` (``receipt-id``), ``ERROR``. A heart-beat is
a lone end-of-line between frames. Over WebSocket one message usually holds
one frame, sometimes several.

Decoded: the event key is the command plus the destination when there is
one (``MESSAGE /topic/greetings``); the value holds the headers (without
``message-id``, ``content-length`` and the per-connection ``session`` /
``server`` of ``CONNECTED``) and the body, decoded as JSON when it is. A
subscription's messages are correlated with it by subscription id, a
``RECEIPT`` answers the frame that asked for it (named after that frame);
heart-beats are control.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import Dialect, Event, first_data, loads

__all__ = ["Stomp", "parse_frames"]

_COMMANDS = frozenset(
    ("CONNECT", "STOMP", "CONNECTED", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK",
     "BEGIN", "COMMIT", "ABORT", "DISCONNECT", "MESSAGE", "RECEIPT", "ERROR")
)  # fmt: skip
_DROP = frozenset(("message-id", "content-length", "session", "server", "heart-beat", "ack"))
_UNESCAPE = {"n": "\n", "c": ":", "\\": "\\", "r": "\r"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(_UNESCAPE.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_frames(text: str) -> list[tuple[str, dict[str, str], str] | None]:
    """The frames of one message: (command, headers, body), None for a heart-beat."""
    out: list[tuple[str, dict[str, str], str] | None] = []
    rest = text
    while rest:
        stripped = rest.lstrip("\r\n")
        if not stripped:  # only end-of-lines: a heart-beat
            out.append(None)
            break
        rest = stripped
        head, sep, tail = rest.partition("\n\n")
        if not sep:
            head, sep, tail = rest.partition("\r\n\r\n")
        lines = head.replace("\r\n", "\n").split("\n")
        command = lines[0].strip()
        if command not in _COMMANDS:
            raise ValueError("not a STOMP frame")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(_unescape(name), _unescape(value))  # the first one counts
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            # content-length counts octets: slice the body as UTF-8.
            data = tail.encode("utf-8", "surrogatepass")
            body = data[: int(length)].decode("utf-8", "replace")
            rest = data[int(length) + 1 :].decode("utf-8", "replace")
        else:
            body, _, rest = tail.partition("\x00")
        out.append((command, headers, body))
    return out


def _body(body: str) -> Any:
    if body[:1] in ("{", "[", '"') or body[:1].isdigit():
        try:
            return loads(body)
        except ValueError:
            return body
    return body


class Stomp(Dialect):
    """STOMP 1.2 (see the module docstring for the spec)."""

    name = "stomp"
    title = "STOMP 1.2"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        if (handshake.subprotocol or "").endswith(".stomp"):
            return 95
        for m in first_data(first, 2):
            if isinstance(m.payload, str) and m.payload.split("\n", 1)[0].strip() in (
                "CONNECT", "STOMP", "CONNECTED"
            ):  # fmt: skip
                return 85
        return 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", "replace")
        try:
            frames = parse_frames(payload)
        except ValueError:
            return [Event("<text>", payload)]
        many = len(frames) > 1
        out = []
        for frame in frames:
            if frame is None:
                out.append(Event("heart-beat", None, control=True))
                continue
            command, headers, body = frame
            destination = headers.get("destination")
            key = f"{command} {destination}" if destination else command
            value = {"headers": {k: v for k, v in headers.items() if k not in _DROP},
                     "body": _body(body)}  # fmt: skip
            raw = None if not many else f"{command}\n{sorted(headers.items())}\n{body}"
            if command == "RECEIPT":
                out.append(Event("RECEIPT", value, f"receipt:{headers.get('receipt-id')}",
                                 reply=True, raw=raw))  # fmt: skip
            elif "receipt" in headers and direction is Direction.CLIENT:
                out.append(Event(key, value, f"receipt:{headers['receipt']}", raw=raw))
            elif command == "MESSAGE" and "subscription" in headers:
                out.append(Event(key, value, f"sub:{headers['subscription']}", raw=raw))
            elif command == "SUBSCRIBE" and "id" in headers:
                out.append(Event(key, value, f"sub:{headers['id']}", raw=raw))
            else:
                out.append(Event(key, value, raw=raw))
        return out
