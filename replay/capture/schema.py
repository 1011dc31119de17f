"""The capture file's SQL schema and statements, shared by the store's reads and writes."""

from __future__ import annotations

from wsshadow.replay.capture.model import (
    Closer,
    Direction,
    Opcode,
    Source,
)

__all__ = [
    "RECORDED_ONLY",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    target TEXT,
    source TEXT,
    settings TEXT,
    started_at REAL,
    ended_at REAL,
    sessions INTEGER,
    errors INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    run TEXT REFERENCES runs(name),
    origin TEXT,
    source TEXT NOT NULL,
    tags TEXT,
    started_at REAL NOT NULL,
    route TEXT NOT NULL,
    query TEXT,
    request_headers TEXT,
    subprotocols TEXT,
    status INTEGER,
    subprotocol TEXT,
    response_headers TEXT,
    close_code INTEGER,
    close_reason TEXT,
    closed_by TEXT,
    close_error TEXT,
    close_t REAL
);
CREATE INDEX IF NOT EXISTS sessions_run ON sessions(run);
CREATE TABLE IF NOT EXISTS frames (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    t REAL NOT NULL,
    direction TEXT NOT NULL,
    opcode TEXT NOT NULL,
    text TEXT,
    data BLOB,
    PRIMARY KEY (session_id, seq)
);
"""

_SESSION_COLUMNS = (
    "id, run, origin, source, tags, started_at, route, query, request_headers, subprotocols, "
    "status, subprotocol, response_headers, close_code, close_reason, closed_by, close_error, "
    "close_t"
)
_INSERT_SESSION = f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * 18)})"
_UPDATE_CLOSE = (
    "UPDATE sessions SET close_code = ?, close_reason = ?, closed_by = ?, close_error = ?, "
    "close_t = ? WHERE id = ?"
)


# Text from the frames table to enum members: a dict lookup costs a tenth of ``Opcode(text)``.
_OPCODES: dict[str, Opcode] = {o.value: o for o in Opcode}
_DIRECTIONS: dict[str, Direction] = {d.value: d for d in Direction}
_CLOSERS: dict[str, Closer] = {c.value: c for c in Closer}
_SOURCES: dict[str, Source] = {s.value: s for s in Source}
# And back, as exact str (what sqlite3 binds without trying adapters), from a member
# or from its value (a StrEnum member and its value are the same key).
_OPCODE_TEXT: dict[Opcode | str, str] = {o: str(o.value) for o in Opcode}
_DIRECTION_TEXT: dict[Direction | str, str] = {d: str(d.value) for d in Direction}

RECORDED_ONLY: None = None
"""The ``run`` of recorded sessions (as opposed to replayed ones)."""
