"""The dialects without framing: plain JSON, raw, and generic framed JSON.

``json``: each text message is one JSON document (or text, or binary),
keyed by its ``type`` / ``event`` field (``[diff] event_keys``): what
wsshadow compares when nothing more specific fits. ``raw``: the same
comparison, chosen explicitly (``dialect = "raw"``) so that no detection
runs. The normalizer handles both itself (``decodes = False``); their
``decode_message`` serves ``captures show``.

``generic``: text that frames JSON without a protocol of its own: several
documents in one message (newline-delimited JSON, each line an event) or a
short non-JSON prefix before the document (``data: {...}``, ``MSG:{...}``),
the prefix then being part of the event key when there is no ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wsshadow.replay.capture.framing import json_spans
from wsshadow.replay.capture.model import Direction, Handshake, Message
from wsshadow.replay.diff.dialects.base import Dialect, Event, b64, first_data, loads

__all__ = ["Generic", "PlainJson", "Raw", "key_of"]

_KEYS = ("type", "event")
_NEXT_DOC = re.compile(r"[}\]][ \t\r]*\n[{\[]")


def _looks_like_json(text: str) -> bool:
    """Whether a text is shaped like one JSON object or array (its first and last
    non-blank characters), without parsing it."""
    t = text.strip()
    if not t or not ((t[0] == "{" and t[-1] == "}") or (t[0] == "[" and t[-1] == "]")):
        return False
    return "\n" not in t or not _NEXT_DOC.search(t)  # documents one per line: not one


def key_of(value: Any, keys: Sequence[str] = _KEYS) -> str | None:
    """The first of ``keys`` a JSON object has, as text."""
    if isinstance(value, dict):
        for k in keys:
            found = value.get(k)
            if isinstance(found, str):
                return found
            if isinstance(found, int | float) and not isinstance(found, bool):
                return str(found)
    return None


def _plain(payload: str | bytes) -> Event:
    if isinstance(payload, bytes):
        return Event("<binary>", b64(payload))
    try:
        doc = loads(payload)
    except ValueError:
        return Event("<text>", payload)
    key = key_of(doc)
    return Event(key if key is not None else "<json>", doc)


class PlainJson(Dialect):
    """One JSON document per text message, keyed by ``type`` / ``event``."""

    name = "json"
    title = "plain JSON"
    decodes = False

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        texts = [m.payload for m in first_data(first) if isinstance(m.payload, str)]
        if not texts:
            return 0
        # A guess from the ends of each text: detection runs for every session diffed.
        parsed = sum(1 for t in texts if _looks_like_json(t))
        return 50 if parsed * 2 >= len(texts) else 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        return [_plain(payload)]


class Raw(Dialect):
    """Payloads compared as they are (JSON parsed, no protocol): never detected."""

    name = "raw"
    title = "raw payloads"
    decodes = False

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        return [_plain(payload)]


class Generic(Dialect):
    """Newline-delimited JSON documents, or JSON after a short non-JSON prefix."""

    name = "generic"
    title = "framed JSON (newline-delimited, or after a short prefix)"

    def detect(self, handshake: Handshake, first: Sequence[Message]) -> int:
        texts = [m.payload for m in first_data(first) if isinstance(m.payload, str)]
        framed = sum(1 for t in texts if not _looks_like_json(t) and json_spans(t))
        return 40 if texts and framed * 2 >= len(texts) else 0

    def decode_message(self, direction: Direction, payload: str | bytes) -> list[Event]:
        if isinstance(payload, bytes):
            return [Event("<binary>", b64(payload))]
        spans = json_spans(payload)
        if not spans:
            return [Event("<text>", payload)]
        out = []
        for start, end in spans:
            doc = loads(payload[start:end])
            prefix = payload[payload.rfind("\n", 0, start) + 1 : start].strip()
            key = key_of(doc)
            if key is None:
                key = prefix.rstrip(":= ") or "<json>"
            raw = payload[start:end] if len(spans) > 1 or prefix else None
            out.append(Event(key, doc, raw=f"{prefix}\x00{raw}" if raw is not None else None))
        return out
