"""Rows to values and back: how sessions and frames are laid out in the capture's tables.

Pure encoding and decoding (no connection of its own), shared by the store's reads and
the writers. Frames are read as columns (``FrameColumns``) on replay's hot path.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from wsshadow.replay.capture.model import (
    Close,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
)
from wsshadow.replay.capture.schema import _DIRECTION_TEXT, _DIRECTIONS, _OPCODE_TEXT, _OPCODES

__all__ = ["FrameColumns", "SessionHead", "SessionSummary"]


def _same(text: str) -> str:
    return text


# Pages of session ids loaded with one frames query (well under SQLite's variable limit).
_LOAD_PAGE = 256


def _id_pages(session_ids: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """``session_ids`` a page at a time, each with its ``?, ?, ...`` placeholders."""
    for i in range(0, len(session_ids), _LOAD_PAGE):
        page = list(session_ids[i : i + _LOAD_PAGE])
        yield page, ", ".join("?" * len(page))


_first = itemgetter(0)
_new = object.__new__
_SLOTS: Any = Message.__dict__  # the slot descriptors, to fill a frozen Message directly
_set_seq: Callable[[Message, Any], None] = _SLOTS["seq"].__set__
_set_t: Callable[[Message, Any], None] = _SLOTS["t"].__set__
_set_direction: Callable[[Message, Any], None] = _SLOTS["direction"].__set__
_set_opcode: Callable[[Message, Any], None] = _SLOTS["opcode"].__set__
_set_payload: Callable[[Message, Any], None] = _SLOTS["payload"].__set__


def _decode_frames(rows: Iterable[tuple[Any, ...]]) -> tuple[Message, ...]:
    """Messages from ``(session_id, seq, t, direction, opcode, text, data)`` rows.

    Raises KeyError or TypeError when a row is damaged. Each ``Message`` is
    built without its ``__post_init__`` check: the frozen dataclass
    ``__init__`` costs more than the rest of decoding a frame, and the loop
    upholds the check itself (text payloads for text frames, bytes for others).
    """
    out: list[Message] = []
    append = out.append
    text_op = Opcode.TEXT
    opcodes, directions = _OPCODES, _DIRECTIONS
    new, message = _new, Message
    set_seq, set_t, set_direction = _set_seq, _set_t, _set_direction
    set_opcode, set_payload = _set_opcode, _set_payload
    for _, seq, t, direction, opcode, text, data in rows:
        op = opcodes[opcode]
        if op is text_op:
            payload: str | bytes = text if text is not None else ""
            if type(payload) is not str:
                raise TypeError("a text message carries str")
        else:
            payload = bytes(data) if data is not None else b""
        m = new(message)
        set_seq(m, seq)
        set_t(m, t)
        set_direction(m, directions[direction])
        set_opcode(m, op)
        set_payload(m, payload)
        append(m)
    return tuple(out)


_NO_FRAMES: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class FrameColumns:
    """A session's frames as columns, without a ``Message`` per frame.

    Frame ``i`` is ``(seq[i], t[i], direction[i], opcode[i], payload[i])``;
    directions and opcodes are their values (plain ``str``), payloads are
    ``str`` for text frames and ``bytes`` for the others, as in ``Message``.
    Replay works in this form both ways: it plans from recorded sessions
    loaded so (``CaptureStore.get_session_frames``; building 40 frozen
    ``Message`` objects per session cost more than the rest of loading it)
    and hands its replayed frames to ``CaptureWriter.add_session`` so (the
    cheapest form to write). ``messages()`` builds the ``Message`` values
    when they are needed after all.
    """

    seq: Sequence[int] = _NO_FRAMES
    t: Sequence[float] = _NO_FRAMES
    direction: Sequence[str] = _NO_FRAMES
    opcode: Sequence[str] = _NO_FRAMES
    payload: Sequence[str | bytes] = _NO_FRAMES

    def __len__(self) -> int:
        return len(self.seq)

    def __iter__(self) -> Iterator[tuple[int, float, str, str, str | bytes]]:
        return zip(self.seq, self.t, self.direction, self.opcode, self.payload, strict=True)

    def messages(self) -> tuple[Message, ...]:
        """The frames as ``Message`` values."""
        return tuple(Message(seq, t, _DIRECTIONS[d], _OPCODES[o], p) for seq, t, d, o, p in self)

    @classmethod
    def of(cls, messages: Sequence[Message]) -> FrameColumns:
        """The columns of ``messages``."""
        if not messages:
            return cls()
        return cls(
            tuple(m.seq for m in messages),
            tuple(m.t for m in messages),
            tuple(_DIRECTION_TEXT[m.direction] for m in messages),
            tuple(_OPCODE_TEXT[m.opcode] for m in messages),
            tuple(m.payload for m in messages),
        )


# Replay's frames query hands direction and opcode over as one small integer (and
# the payload as one column): fewer values to convert per row, and the strings
# come from these tables instead of being built per row. NULL when either is
# not a known value, which the decoder reports as damage.
_KIND_DIRECTIONS = ("client", "server")
_KIND_OPCODES = tuple(o.value for o in Opcode)
_KIND_SQL = (
    "CASE direction "
    + " ".join(f"WHEN '{d}' THEN {i}" for i, d in enumerate(_KIND_DIRECTIONS))
    + " END + 2 * CASE opcode "
    + " ".join(f"WHEN '{o}' THEN {i}" for i, o in enumerate(_KIND_OPCODES))
    + " END"
)
_KIND_DIRECTION = tuple(d for _ in _KIND_OPCODES for d in _KIND_DIRECTIONS)
_KIND_OPCODE = tuple(o for o in _KIND_OPCODES for _ in _KIND_DIRECTIONS)
_KINDS = frozenset(range(len(_KIND_OPCODE)))
_TEXT_KINDS = frozenset({0, 1})
_FRAMES_FOR_REPLAY = (
    f"SELECT session_id, seq, t, {_KIND_SQL}, coalesce(text, data) FROM frames "
    "WHERE session_id IN ({marks}) ORDER BY session_id, seq"
)


def _frame_columns(rows: Sequence[tuple[Any, ...]]) -> FrameColumns:
    """Columns from ``(session_id, seq, t, kind, payload)`` rows (``_FRAMES_FOR_REPLAY``).

    Raises KeyError or TypeError when a row is damaged, as ``_decode_frames``
    does. Transposed and checked in C (``zip``, sets, ``map``): the common
    session, all text, takes no Python step per frame.
    """
    _, seqs, ts, kinds, values = zip(*rows, strict=True)
    seen = set(kinds)
    for kind in seen.difference(_KINDS):
        raise KeyError(f"unknown direction or opcode ({kind})")
    directions = tuple(map(_KIND_DIRECTION.__getitem__, kinds))
    opcodes = tuple(map(_KIND_OPCODE.__getitem__, kinds))
    payloads: tuple[str | bytes, ...]
    if seen <= _TEXT_KINDS:
        payloads = values
        if set(map(type, values)) != {str}:
            payloads = tuple("" if x is None else x for x in values)
            if set(map(type, payloads)) != {str}:
                raise TypeError("a text message carries str")
    else:
        mixed: list[str | bytes] = []
        for kind, value in zip(kinds, values, strict=True):
            if kind in _TEXT_KINDS:
                value = "" if value is None else value
                if type(value) is not str:
                    raise TypeError("a text message carries str")
            else:
                value = b"" if value is None else value
                if type(value) is not bytes:
                    raise TypeError("a binary or control frame carries bytes")
            mixed.append(value)
        payloads = tuple(mixed)
    return FrameColumns(seqs, ts, directions, opcodes, payloads)


# Sessions of one client repeat the same header, subprotocol and tag lists: each
# distinct JSON text is decoded once (the values are tuples, safe to share).
@functools.lru_cache(maxsize=4096)
def _headers_of(text: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in json.loads(text or "[]"))


@functools.lru_cache(maxsize=4096)
def _strings_of(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text or "[]"))


# json.dumps with arguments builds an encoder per call; one made once does the same.
_dump: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _session_row(
    session_id: str, started_at: float, handshake: Handshake, provenance: Provenance
) -> tuple[Any, ...]:
    return (
        session_id,
        provenance.run,
        provenance.origin,
        provenance.source.value,
        _dump(list(provenance.tags)),
        started_at,
        handshake.route,
        handshake.query,
        _dump([list(h) for h in handshake.request_headers]),
        _dump(list(handshake.subprotocols)),
        handshake.status,
        handshake.subprotocol,
        _dump([list(h) for h in handshake.response_headers]),
        None,
        None,
        None,
        None,
        None,
    )


_FrameTuple = tuple[int, float, Direction | str, Opcode | str, str | bytes]
"""A frame as ``CaptureWriter.add_session`` takes it: (seq, t, direction, opcode, payload)."""

# A frame row as bound: (session_id, seq, t, direction, opcode, payload). The payload
# goes into ``text`` for text frames and into ``data`` for the others; the other
# column is left out of the INSERT, never bound as None: sqlite3 (3.11) binds only
# exact int, float, str and bytearray directly and sends anything else, None
# included, through its adapter lookup, which raises and swallows an
# AttributeError each time (a quarter of the instructions of inserting a 100-byte frame).
_FRAME_COLUMNS = 6
_ROWS_PER_INSERT = 64  # 384 variables per statement, far below SQLite's limit


@functools.lru_cache(maxsize=2 * _ROWS_PER_INSERT)
def _multi_insert(column: str, rows: int) -> str:
    """``INSERT INTO frames`` of ``rows`` rows in one statement, payloads into ``column``."""
    one = "(" + ", ".join("?" * _FRAME_COLUMNS) + ")"
    return (
        f"INSERT INTO frames (session_id, seq, t, direction, opcode, {column}) VALUES "
        + ", ".join([one] * rows)
    )


def _insert_frames(conn: sqlite3.Connection, column: str, params: list[Any]) -> int:
    """Insert frame rows given as one flat list of column values; returns rows written.

    ``column`` is where the payloads go (``text`` or ``data``). One ``INSERT
    ... VALUES (...), (...), ...`` of _ROWS_PER_INSERT rows costs SQLite and
    sqlite3 half of what as many single-row executions do.
    """
    width = _FRAME_COLUMNS
    step = _ROWS_PER_INSERT * width
    full = len(params) - len(params) % step
    for i in range(0, full, step):
        conn.execute(_multi_insert(column, _ROWS_PER_INSERT), params[i : i + step])
    if full < len(params):
        conn.execute(_multi_insert(column, (len(params) - full) // width), params[full:])
    return len(params) // width


def _split_rows(rows: Iterable[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """Frame rows (see ``_FRAME_COLUMNS``) as flat text-frame and other-frame parameters."""
    texts: list[Any] = []
    others: list[Any] = []
    for row in rows:
        (texts if row[4] == "text" else others).extend(row)
    return texts, others


def _frame_row(session_id: str, m: Message) -> tuple[Any, ...]:
    return (session_id, m.seq, m.t, _DIRECTION_TEXT[m.direction], _OPCODE_TEXT[m.opcode], m.payload)


def _close_row(session_id: str, close: Close) -> tuple[Any, ...]:
    return (close.code, close.reason, close.by.value, close.error, close.t, session_id)


@dataclass(frozen=True, slots=True)
class SessionHead:
    """What selecting sessions needs of one (``CaptureStore.heads``): no frames read."""

    id: str
    route: str
    started_at: float


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session's row for listings: no payloads loaded."""

    id: str
    route: str
    started_at: float
    duration: float | None
    client_messages: int
    server_messages: int
    bytes: int
    status: int | None
    close_code: int | None
    closed_by: str | None
    close_error: str | None
    source: str
    run: str | None
    origin: str | None
