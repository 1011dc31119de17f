"""The portable JSONL form of a capture, and the session <-> dict mapping.

A JSONL capture is one header line ``{"format": "wsshadow-capture",
"format_version": N}`` followed by one session per line. Text payloads are
stored as text, everything else as base64. Writing a session and reading it
back gives an equal session, and reading a file this module wrote and
writing it again gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from wsshadow.replay.capture.model import (
    MAX_EPOCH,
    MAX_SESSION_SECONDS,
    Close,
    Closer,
    Direction,
    Handshake,
    Headers,
    Message,
    Opcode,
    Provenance,
    Session,
    Source,
)
from wsshadow.replay.errors import BadInput, CaptureError, NewerFormat

__all__ = [
    "FORMAT_NAME",
    "JSONL_FORMAT_VERSION",
    "close_from_dict",
    "close_to_dict",
    "dumps_line",
    "handshake_from_dict",
    "handshake_to_dict",
    "header_line",
    "message_from_dict",
    "message_to_dict",
    "read_jsonl",
    "session_from_dict",
    "session_to_dict",
    "write_jsonl",
]

FORMAT_NAME = "wsshadow-capture"
JSONL_FORMAT_VERSION = 1


def dumps_line(obj: Any) -> str:
    """Compact, deterministic JSON for one line (UTF-8 kept, no spaces)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def header_line() -> str:
    """The first line of every JSONL capture this version writes."""
    return dumps_line({"format": FORMAT_NAME, "format_version": JSONL_FORMAT_VERSION})


# ---- session <-> dict -------------------------------------------------------


def message_to_dict(message: Message) -> dict[str, Any]:
    """A JSON-ready dict for one message."""
    out: dict[str, Any] = {
        "seq": message.seq,
        "t": message.t,
        "dir": message.direction.value,
        "op": message.opcode.value,
    }
    if isinstance(message.payload, str):
        out["text"] = message.payload
    else:
        out["b64"] = base64.b64encode(message.payload).decode("ascii")
    return out


def handshake_to_dict(handshake: Handshake) -> dict[str, Any]:
    """A JSON-ready dict for a handshake."""
    return {
        "route": handshake.route,
        "query": handshake.query,
        "request_headers": [list(h) for h in handshake.request_headers],
        "subprotocols": list(handshake.subprotocols),
        "status": handshake.status,
        "subprotocol": handshake.subprotocol,
        "response_headers": [list(h) for h in handshake.response_headers],
    }


def close_to_dict(close: Close | None) -> dict[str, Any] | None:
    """A JSON-ready dict for a close, or None."""
    if close is None:
        return None
    return {
        "code": close.code,
        "reason": close.reason,
        "by": close.by.value,
        "error": close.error,
        "t": close.t,
    }


def session_to_dict(session: Session) -> dict[str, Any]:
    """A JSON-ready dict for a whole session, messages included."""
    p = session.provenance
    return {
        "id": session.id,
        "started_at": session.started_at,
        "handshake": handshake_to_dict(session.handshake),
        "messages": [message_to_dict(m) for m in session.messages],
        "close": close_to_dict(session.close),
        "provenance": {
            "source": p.source.value,
            "tags": list(p.tags),
            "run": p.run,
            "origin": p.origin,
        },
    }


class _Fields:
    """Typed access to a dict's fields, naming the field in every error."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise BadInput(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.obj:
            if required:
                raise BadInput(f"{self.where}: missing field {key!r}")
            return None
        return self.obj[key]

    def str_(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default is None)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise BadInput(f"{self.where}.{key}: expected a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, str):
            raise BadInput(f"{self.where}.{key}: expected a string or null")
        return value

    def int_(self, key: str) -> int:
        value = self._get(key, True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadInput(f"{self.where}.{key}: expected an integer")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadInput(f"{self.where}.{key}: expected an integer or null")
        return value

    def float_(self, key: str) -> float:
        value = self._get(key, True)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadInput(f"{self.where}.{key}: expected a number")
        try:
            return float(value)
        except OverflowError:
            raise BadInput(f"{self.where}.{key}: {value} is too large a number") from None

    def time_(self, key: str, required: bool = True) -> float | None:
        """Seconds since the session opened: finite, 0 to MAX_SESSION_SECONDS."""
        value = self.float_(key) if required else self.opt_float(key)
        if value is not None and not 0.0 <= value <= MAX_SESSION_SECONDS:
            raise BadInput(
                f"{self.where}.{key}: {value!r} is not a time in seconds since the session "
                f"opened (0 to {MAX_SESSION_SECONDS:,})"
            )
        return value

    def epoch(self, key: str) -> float:
        """Wall-clock seconds since 1970: finite, 0 to MAX_EPOCH."""
        value = self.float_(key)
        if not 0.0 <= value <= MAX_EPOCH:
            raise BadInput(
                f"{self.where}.{key}: {value!r} is not a time in seconds since 1970 "
                f"(0 to {MAX_EPOCH:.0e})"
            )
        return value

    def opt_float(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadInput(f"{self.where}.{key}: expected a number or null")
        try:
            return float(value)
        except OverflowError:
            raise BadInput(f"{self.where}.{key}: {value} is too large a number") from None

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadInput(f"{self.where}.{key}: expected a list")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        items = self.list_(key)
        if not all(isinstance(s, str) for s in items):
            raise BadInput(f"{self.where}.{key}: expected a list of strings")
        return tuple(items)

    def headers(self, key: str) -> Headers:
        out = []
        for i, pair in enumerate(self.list_(key)):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(x, str) for x in pair)
            ):
                raise BadInput(f"{self.where}.{key}[{i}]: expected [name, value]")
            out.append((pair[0], pair[1]))
        return tuple(out)

    def enum(self, key: str, kind: type[Any], default: Any = None) -> Any:
        value = self._get(key, default is None)
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise BadInput(f"{self.where}.{key}: {value!r} is not one of {allowed}") from None


def message_from_dict(obj: Any, where: str = "message") -> Message:
    """Build a message from its dict form; raises BadInput naming the field."""
    f = _Fields(obj, where)
    opcode: Opcode = f.enum("op", Opcode)
    payload: str | bytes
    if opcode is Opcode.TEXT:
        payload = f.str_("text")
    else:
        try:
            payload = base64.b64decode(f.str_("b64"), validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(f"{where}.b64: not valid base64") from None
    return Message(
        seq=f.int_("seq"),
        t=f.time_("t") or 0.0,
        direction=f.enum("dir", Direction),
        opcode=opcode,
        payload=payload,
    )


def handshake_from_dict(obj: Any, where: str = "handshake") -> Handshake:
    """Build a handshake from its dict form; raises BadInput naming the field."""
    f = _Fields(obj, where)
    return Handshake(
        route=f.str_("route"),
        query=f.str_("query", ""),
        request_headers=f.headers("request_headers"),
        subprotocols=f.strings("subprotocols"),
        status=f.opt_int("status"),
        subprotocol=f.opt_str("subprotocol"),
        response_headers=f.headers("response_headers"),
    )


def close_from_dict(obj: Any, where: str = "close") -> Close | None:
    """Build a close from its dict form (None stays None)."""
    if obj is None:
        return None
    f = _Fields(obj, where)
    return Close(
        code=f.opt_int("code"),
        reason=f.str_("reason", ""),
        by=f.enum("by", Closer),
        error=f.opt_str("error"),
        t=f.time_("t", required=False),
    )


def session_from_dict(obj: Any, where: str = "session") -> Session:
    """Build a session from its dict form; raises BadInput naming the field."""
    f = _Fields(obj, where)
    prov = _Fields(f.obj.get("provenance") or {}, f"{where}.provenance")
    messages = tuple(
        message_from_dict(m, f"{where}.messages[{i}]") for i, m in enumerate(f.list_("messages"))
    )
    first: dict[int, int] = {}
    for i, m in enumerate(messages):
        j = first.setdefault(m.seq, i)
        if j != i:
            raise BadInput(
                f"{where}.messages[{i}].seq: {m.seq} is already the seq of messages[{j}]"
            )
    return Session(
        id=f.str_("id"),
        started_at=f.epoch("started_at"),
        handshake=handshake_from_dict(f.obj.get("handshake"), f"{where}.handshake"),
        messages=messages,
        close=close_from_dict(f.obj.get("close"), f"{where}.close"),
        provenance=Provenance(
            source=prov.enum("source", Source, Source.JSONL),
            tags=prov.strings("tags"),
            run=prov.opt_str("run"),
            origin=prov.opt_str("origin"),
        ),
    )


# ---- files ------------------------------------------------------------------


def write_jsonl(sessions: Iterable[Session], out: IO[bytes]) -> int:
    """Write a header line and one line per session to a binary stream.

    Returns how many sessions were written.
    """
    out.write(header_line().encode("utf-8") + b"\n")
    count = 0
    for session in sessions:
        out.write(dumps_line(session_to_dict(session)).encode("utf-8") + b"\n")
        count += 1
    return count


def _parse_line(raw: bytes, lineno: int, name: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CaptureError(f"{name}:{lineno}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise CaptureError(f"{name}:{lineno}: not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise CaptureError(f"{name}:{lineno}: JSON nested too deeply") from None


def read_jsonl(stream: IO[bytes], name: str = "<jsonl>") -> Iterator[Session]:
    """Read sessions one at a time from a JSONL capture.

    Raises CaptureError naming the line for a malformed line, and NewerFormat
    for a file written by a newer format version.
    """
    lineno = 0
    header_seen = False
    for raw in stream:
        lineno += 1
        if not raw.strip():
            continue
        obj = _parse_line(raw, lineno, name)
        if not header_seen:
            header_seen = True
            if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
                raise CaptureError(
                    f"{name}:{lineno}: not a wsshadow JSONL capture "
                    f'(the first line should be {{"format": "{FORMAT_NAME}", ...}})'
                )
            version = obj.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise CaptureError(f"{name}:{lineno}: format_version is not an integer")
            if version > JSONL_FORMAT_VERSION:
                raise NewerFormat(
                    f"{name} is JSONL format version {version}; this wsshadow reads up to "
                    f"version {JSONL_FORMAT_VERSION}: upgrade wsshadow"
                )
            continue
        try:
            yield session_from_dict(obj, "session")
        except BadInput as e:
            raise CaptureError(f"{name}:{lineno}: {e}") from None
    if not header_seen:
        raise CaptureError(f"{name}: empty file, not a wsshadow JSONL capture")
