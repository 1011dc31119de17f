"""Scanning recorded payloads for link discovery (``engine/links.py``): pure, text in,
values out.

What counts as a value another session may reuse is the carry-over rule: a
string of 6+ characters without whitespace that does not read like a word
(``message``, ``agent_thinking``) or a placeholder, or an integer in an
id-named field. A text without escapes is tokenized with ``split('"')`` (its
quotes pair up: every string at an odd index, what follows it at the next);
a text with escapes is parsed as JSON. An answer needs only its ids, found by
one regular expression that pairs quotes too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from wsshadow.replay.capture.redact import PLACEHOLDER_RE

__all__ = ["answer_ids", "ruled_values", "scan_text"]

_MIN_LEN = 6
_WORD = re.compile(r"[a-z]+(?:[_\-.:/][a-z]+)*\Z")
# The number of an id-named field ("user_id": 42), as written (an integer, nothing after).
_ID_NUMBER = re.compile(r'[iI][dD]"\s*:\s*(-?[0-9]+)(?![0-9.eE])')
# Every string, quotes paired (one match per string); captured: 6+ characters without
# spaces, not a key. (A pattern that skips short strings would restart at their closing
# quote and take the text between two strings, ``:12345,``, for one.)
_ID_STRING = re.compile(r'"(?:([^"\\\s]{6,})"(?!\s*:)|[^"\\]*")')
_SPACE = re.compile(r"\s")
# Inside a longer string (a GraphQL query's text, a sentence): runs of id characters.
_INNER = re.compile(r"[A-Za-z0-9_\-.:/+=]{6,}")
_NUMBER = re.compile(r"-?[0-9][0-9.eE+\-]*")
_INTEGER = re.compile(r"-?[0-9]+\Z")


def _is_id(text: str) -> bool:
    return (
        len(text) >= _MIN_LEN
        and _SPACE.search(text) is None
        and not _WORD.match(text)
        and ("${" not in text or not PLACEHOLDER_RE.search(text))
    )


def _leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v, key)
    else:
        yield key, node


def answer_ids(text: str) -> list[str | int]:
    """The id-like values of a text without escapes (``scan_text``'s ids, faster)."""
    ids: list[str | int] = [
        v
        for v in _ID_STRING.findall(text)
        if v and not _WORD.match(v) and ("${" not in v or not PLACEHOLDER_RE.search(v))
    ]
    if 'd"' in text or 'D"' in text:
        ids.extend(int(number) for number in _ID_NUMBER.findall(text))
    return ids


def _inner_ids(text: str) -> list[str]:
    """The id-like runs inside a string with spaces (``room-7F3A9C`` in
    ``lines(room: "room-7F3A9C", upto: 2)``): a client may write a value it was given into
    a longer text instead of sending it as a field of its own."""
    return [v for v in _INNER.findall(text) if _is_id(v)]


def _spaceless(text: str) -> bool:
    """True when ``text`` holds no whitespace (``isprintable`` is False for all but ' ')."""
    return (" " not in text and text.isprintable()) or text.split() == [text]


def scan_text(
    text: str, event_keys: tuple[str, ...], *, inner: bool = False
) -> tuple[str | None, list[str | int], list[tuple[str, str]]]:
    """A text's event, its id-like values, and its (field, value) pairs (event fields left out).

    A pair's value is as written: a string with its quotes, a number as its digits.
    ``inner``: also the id-like runs inside strings with spaces (for client texts).
    """
    if "\\" in text:
        return _scan_escaped(text, event_keys, inner)
    # Without escapes, the text's quotes pair up: split('"') puts every string at an odd
    # index, and what follows it (``: ``, ``, ``) at the next one.
    parts = text.split('"')
    last = len(parts) - 1
    if last % 2:
        last -= 1  # an unterminated string at the end is no string
    strings: list[str] = []
    numbers: list[int] = []
    pairs: list[tuple[str, str]] = []
    event = None
    k = 1
    while k < last:
        key = parts[k]
        after = parts[k + 1]
        if after == ":" or after == ": ":  # "key": "value", the common shapes first
            rest = ""
        elif after[:1] != ":" and after.lstrip()[:1] != ":":  # a string, not a key
            if len(key) >= _MIN_LEN:
                if _spaceless(key):
                    strings.append(key)
                elif inner:
                    strings.extend(_inner_ids(key))
            k += 2
            continue
        else:
            rest = after.lstrip()[1:].lstrip()
        if not rest:  # "key": "value"
            if k + 2 < last:
                value = parts[k + 2]
                if key in event_keys:
                    if event is None:
                        event = value
                else:
                    pairs.append((key, f'"{value}"'))
                if len(value) >= _MIN_LEN:
                    after = parts[k + 3]
                    if after[:1] != ":" and after.lstrip()[:1] != ":":
                        if _spaceless(value):
                            strings.append(value)
                        elif inner:
                            strings.extend(_inner_ids(value))
            k += 4
            continue
        first = rest[0]
        if "0" <= first <= "9" or first == "-":  # "key": number
            found = _NUMBER.match(rest)
            if found is not None:
                number = found.group()
                if key in event_keys:
                    if event is None:
                        event = number
                else:
                    pairs.append((key, number))
                if key[-2:].lower() == "id" and _INTEGER.match(number):
                    numbers.append(int(number))
        k += 2
    ids: list[str | int] = [
        v for v in strings if not _WORD.match(v) and ("${" not in v or not PLACEHOLDER_RE.search(v))
    ]
    ids.extend(numbers)
    return event, ids, pairs


def _scan_escaped(
    text: str, event_keys: tuple[str, ...], inner: bool = False
) -> tuple[str | None, list[str | int], list[tuple[str, str]]]:
    """``_scan`` of a text with escapes: parsed as JSON."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None, [], []
    event = None
    ids: list[str | int] = []
    pairs: list[tuple[str, str]] = []
    if isinstance(doc, dict):
        for k in event_keys:
            v = doc.get(k)
            if isinstance(v, str | int) and not isinstance(v, bool):
                event = str(v)
                break
    for k, v in _leaves(doc):
        if k in event_keys or isinstance(v, bool) or v is None:
            continue
        if isinstance(v, str):
            if _is_id(v):
                ids.append(v)
            elif inner and len(v) > _MIN_LEN and _SPACE.search(v) is not None:
                ids.extend(_inner_ids(v))
        elif isinstance(v, int) and k.lower().endswith("id"):
            ids.append(v)
        pairs.append((k, json.dumps(v)))
    return event, ids, pairs


def ruled_values(
    pairs: list[tuple[str, Any]], fields: dict[str, set[str | None]], event: str | None
) -> list[str | int]:
    """The values of ``pairs`` in the rules' fields (``fields``: field -> events, None: any)."""
    out: list[str | int] = []
    for key, raw in pairs:
        events = fields.get(key)
        if events is None or (None not in events and event not in events):
            continue
        if raw.startswith('"'):
            out.append(raw[1:-1])
        elif raw.lstrip("-").isdigit():
            out.append(int(raw))
    return out
