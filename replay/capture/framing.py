"""JSON documents inside framed text messages (pure).

Many protocols wrap JSON in a little framing: Socket.IO's ``42[...]``,
SignalR's records ending in ``0x1E``, STOMP's headers before a body ending
in NUL, newline-delimited documents, and JSON strings holding more JSON
(ActionCable's ``data``). ``json_spans`` finds the documents; redaction,
credential filling and carry-over use ``rewrite_json_docs`` to change
values inside them and encode them back the way they were framed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_PREFIX", "json_spans", "rewrite_json_docs", "rewrite_json_text", "walk_strings"]

MAX_PREFIX = 32
"""Longest non-JSON prefix before a document (Socket.IO ``451-/admin,12``, say)."""

_RS = "\x1e"


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _doc_start(text: str, start: int, end: int) -> int:
    """Where a document starts in text[start:end] after a short prefix, or -1."""
    for i in range(start, min(end, start + MAX_PREFIX + 1)):
        c = text[i]
        if c == "{" or c == "[":
            return i
        if c == "\n" or c == '"':
            return -1
    return -1


def json_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each JSON object or array framed in ``text``, in order.

    The whole text; else each ``0x1E``-terminated record; else a STOMP body
    (after the blank line, before the NUL); else each line; else one
    document after a short prefix. Empty when nothing parses.
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and _parses(text):
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    if _RS in text:
        start = 0
        for record in text.split(_RS):
            end = start + len(record)
            if record.strip():
                spans.extend(_one(text, start, end))
            start = end + 1
        return spans
    if text.endswith("\x00") or text.endswith("\x00\n"):
        body = text.find("\n\n")
        if body >= 0:
            end = text.rfind("\x00")
            return _one(text, body + 2, end)
    if "\n" in stripped:
        start = 0
        for line in text.split("\n"):
            end = start + len(line)
            if line.strip():
                spans.extend(_one(text, start, end))
            start = end + 1
        if spans:
            return spans
    return _one(text, 0, len(text))


def _one(text: str, start: int, end: int) -> list[tuple[int, int]]:
    begin = _doc_start(text, start, end)
    if begin < 0:
        return []
    stop = end
    while stop > begin and text[stop - 1] in " \t\r\n":
        stop -= 1
    return [(begin, stop)] if _parses(text[begin:stop]) else []


def _looks_json(s: str) -> bool:
    return len(s) >= 2 and ((s[0] == "{" and s[-1] == "}") or (s[0] == "[" and s[-1] == "]"))


def walk_strings(value: Any, transform: Callable[[str], str]) -> tuple[Any, bool]:
    """``value`` with ``transform`` applied to every string (and key-less leaf string),
    nested JSON strings decoded, transformed and encoded back; (new value, changed)."""
    if isinstance(value, str):
        if _looks_json(value):
            try:
                inner = json.loads(value)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, dict | list):
                new, changed = walk_strings(inner, transform)
                if changed:
                    return json.dumps(new, ensure_ascii=False, separators=(",", ":")), True
                return value, False
        new_text = transform(value)
        return new_text, new_text != value
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in value.items():
            out[k], sub = walk_strings(v, transform)
            changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [walk_strings(v, transform) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def rewrite_json_docs(text: str, change: Callable[[Any], tuple[Any, bool]]) -> str | None:
    """``text`` with ``change`` applied to each framed document, or None when ``text``
    holds none. Documents ``change`` left alone keep their exact text."""
    spans = json_spans(text)
    if not spans:
        return None
    out: list[str] = []
    last = 0
    for start, end in spans:
        doc = json.loads(text[start:end])
        new, changed = change(doc)
        out.append(text[last:start])
        out.append(
            json.dumps(new, ensure_ascii=False, separators=(",", ":"))
            if changed
            else text[start:end]
        )
        last = end
    out.append(text[last:])
    return "".join(out)


def rewrite_json_text(text: str, transform: Callable[[str], str]) -> str:
    """``transform`` applied to every string inside the framed documents of ``text``
    (nested JSON strings included), or to the whole text when it holds none."""
    new = rewrite_json_docs(text, lambda doc: walk_strings(doc, transform))
    return transform(text) if new is None else new
