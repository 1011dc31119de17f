"""HAR import: WebSocket sessions from browser exports (the writer, ``write_har``, is
in ``har_export.py`` and importable from here too).

Reads the WebSocket entries of a HAR file as these tools write them:

- Chrome and Edge DevTools ("Save all as HAR"): ``_resourceType:
  "websocket"`` and ``_webSocketMessages``, a list of ``{type: send|receive,
  time: epoch seconds, opcode: 1|2, data}`` with binary data in base64;
- mitmproxy's ``save.har`` / ``hardump`` (same message shape, ``http(s)://``
  URLs, ISO dates with an offset; ``.zhar`` files are zlib-compressed);
- Firefox (HAR 1.1, ``ws://`` URLs and status 101; its export carries the
  handshake, and messages too when a ``_webSocketMessages`` list is present);
- Playwright (``time`` in milliseconds, recognised by its size).

An entry is a WebSocket entry when it says ``_resourceType: websocket``,
carries ``_webSocketMessages``, has a ``ws(s)://`` URL, or was answered 101
to an ``Upgrade: websocket`` request. The handshake comes from the entry's
request (URL -> route and query, headers, ``Sec-WebSocket-Protocol``
offered) and response (status, selected subprotocol, headers). ``t`` is
seconds since the entry's ``startedDateTime`` (or its first message when
that is missing or later). HAR has no close frames, so ``close`` is None
unless the export recorded a close (opcode 8) or an error frame.

Redaction is not done here: the store redacts every session it stores.
Errors are ``CaptureError`` naming the entry index and the field.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from wsshadow.recorders.har_export import write_har
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
from wsshadow.replay.capture.redact import placeholder
from wsshadow.replay.errors import CaptureError

__all__ = [
    "HAR_SUFFIXES",
    "MAX_HAR_BYTES",
    "har_document",
    "import_har",
    "looks_like_har",
    "read_har",
    "write_har",
]

MAX_HAR_BYTES = 2 << 30
"""A compressed .zhar may expand to at most this many bytes (2 GiB): no zlib bombs."""

HAR_SUFFIXES = (".har", ".zhar")
"""File name endings that mark a HAR file."""

_MS_THRESHOLD = 1e11
"""Message times above this are milliseconds (1e11 s is the year 5138)."""

_DIRECTIONS = {"send": Direction.CLIENT, "receive": Direction.SERVER}
_CONTROL = {9: Opcode.PING, 10: Opcode.PONG}


# ---- reading the file ---------------------------------------------------------


def _load(
    source: str | os.PathLike[str] | IO[bytes] | IO[str], name: str, limit: int = MAX_HAR_BYTES
) -> Any:
    """The parsed JSON document of a HAR file, path or stream (zlib .zhar accepted)."""
    if isinstance(source, str | os.PathLike):
        try:
            raw: bytes | str = Path(source).read_bytes()
        except OSError as e:
            raise CaptureError(f"{name}: cannot read ({e.strerror})") from None
    else:
        raw = source.read()
    if isinstance(raw, bytes):
        if raw[:1] == b"\x78":  # zlib header: mitmproxy's .zhar
            with contextlib.suppress(zlib.error):
                inflater = zlib.decompressobj()
                out = inflater.decompress(raw, limit + 1)
                if len(out) > limit:
                    raise CaptureError(
                        f"{name}: decompresses to more than {limit:,} bytes; not a HAR file "
                        "wsshadow will read"
                    )
                if not inflater.eof:
                    raise CaptureError(f"{name}: compressed HAR file is truncated")
                raw = out
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CaptureError(f"{name}: not a HAR file (not UTF-8 text)") from None
    else:
        text = raw
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptureError(
            f"{name}: not a HAR file (not JSON: {e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except RecursionError:
        raise CaptureError(f"{name}: not a HAR file (JSON nested too deeply)") from None


def looks_like_har(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` ends in .har/.zhar or its text starts as ``{"log": ...}``."""
    p = Path(path)
    if p.suffix.lower() in HAR_SUFFIXES:
        return True
    try:
        with p.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    text = head.decode("utf-8-sig", "replace").lstrip()
    return text.startswith("{") and text[1:].lstrip().startswith('"log"')


# ---- small typed accessors ----------------------------------------------------


def _where(index: int, field: str = "") -> str:
    return f"log.entries[{index}]" + (f".{field}" if field else "")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CaptureError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _headers(value: Any, where: str) -> Headers:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CaptureError(f"{where}: expected a list of {{name, value}}, got {_kind(value)}")
    out = []
    for i, h in enumerate(value):
        if not isinstance(h, dict):
            raise CaptureError(f"{where}[{i}]: expected {{name, value}}, got {_kind(h)}")
        name, val = h.get("name"), h.get("value", "")
        if not isinstance(name, str) or not isinstance(val, str | int | float):
            raise CaptureError(f"{where}[{i}]: expected string name and value")
        if name.startswith(":"):  # HTTP/2 pseudo-headers are not real headers
            continue
        out.append((name, str(val)))
    return tuple(out)


def _header(headers: Headers, name: str) -> str | None:
    lowered = name.lower()
    values = [v for k, v in headers if k.lower() == lowered]
    return ", ".join(values) if values else None


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# ---- entries -> sessions --------------------------------------------------------


def _is_websocket(entry: dict[str, Any]) -> bool:
    if str(entry.get("_resourceType", "")).lower() == "websocket":
        return True
    if isinstance(entry.get("_webSocketMessages"), list):
        return True
    request = entry.get("request")
    if not isinstance(request, dict):
        return False
    url = request.get("url")
    if isinstance(url, str) and url.lower().startswith(("ws://", "wss://")):
        return True
    response = entry.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    headers = request.get("headers")
    if status == 101 and isinstance(headers, list):
        return any(
            isinstance(h, dict)
            and str(h.get("name", "")).lower() == "upgrade"
            and str(h.get("value", "")).lower() == "websocket"
            for h in headers
        )
    return False


def _handshake(entry: dict[str, Any], index: int) -> Handshake:
    request = _obj(entry.get("request"), _where(index, "request"))
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise CaptureError(f"{_where(index, 'request.url')}: expected the WebSocket URL")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise CaptureError(f"{_where(index, 'request.url')}: not a URL ({e})") from None
    request_headers = _headers(request.get("headers"), _where(index, "request.headers"))
    offered = _header(request_headers, "sec-websocket-protocol")
    subprotocols = tuple(p.strip() for p in offered.split(",") if p.strip()) if offered else ()
    response_value = entry.get("response")
    response = {} if response_value is None else _obj(response_value, _where(index, "response"))
    status_value = response.get("status")
    if status_value is not None and (
        not isinstance(status_value, int) or isinstance(status_value, bool)
    ):
        raise CaptureError(f"{_where(index, 'response.status')}: expected an integer")
    status = status_value if status_value else None  # 0: no answer (failed or pending)
    response_headers = _headers(response.get("headers"), _where(index, "response.headers"))
    selected = _header(response_headers, "sec-websocket-protocol")
    return Handshake(
        route=parts.path or "/",
        query=parts.query,
        request_headers=request_headers,
        subprotocols=subprotocols,
        status=status,
        subprotocol=selected.strip() if selected else None,
        response_headers=response_headers,
    )


def _payload(data: Any, opcode: int, where: str) -> str | bytes:
    if not isinstance(data, str):
        raise CaptureError(f"{where}.data: expected a string, got {_kind(data)}")
    if opcode == 1:
        return data
    if opcode in _CONTROL:  # ping/pong application data: exporters write it as text
        return data.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        if opcode == 2:
            raise CaptureError(f"{where}.data: binary message is not valid base64") from None
        return data.encode("utf-8", "surrogatepass")


def _close_from_frame(payload: bytes, direction: Direction, t: float) -> Close:
    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    reason = payload[2:].decode("utf-8", "replace")
    by = Closer.CLIENT if direction is Direction.CLIENT else Closer.SERVER
    return Close(code=code, reason=reason, by=by, t=t)


def _messages(
    entry: dict[str, Any], index: int, started_at: float | None
) -> tuple[float, tuple[Message, ...], Close | None]:
    """(session start, messages, close) of one entry."""
    field = "_webSocketMessages"
    raw = entry.get(field)
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise CaptureError(f"{_where(index, field)}: expected a list, got {_kind(raw)}")
    parsed: list[tuple[float, Direction | None, int, Any, str]] = []
    for i, m in enumerate(raw):
        where = _where(index, f"{field}[{i}]")
        if not isinstance(m, dict):
            raise CaptureError(f"{where}: expected an object, got {_kind(m)}")
        kind = m.get("type")
        if kind not in (*_DIRECTIONS, "error"):
            raise CaptureError(f"{where}.type: expected 'send' or 'receive', got {kind!r}")
        when = m.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool) or when != when:
            raise CaptureError(f"{where}.time: expected a number (epoch seconds)")
        if not 0 <= when <= MAX_EPOCH * 1000:
            raise CaptureError(
                f"{where}.time: {when!r} is not a time since 1970 "
                "(epoch seconds or milliseconds, up to the year 5138)"
            )
        opcode = m.get("opcode", 1)
        if kind != "error" and (
            not isinstance(opcode, int)
            or isinstance(opcode, bool)
            or opcode not in (1, 2, 8, 9, 10)
        ):
            raise CaptureError(
                f"{where}.opcode: expected 1 (text), 2 (binary), 8, 9 or 10, got {opcode!r}"
            )
        seconds = when / 1000.0 if when > _MS_THRESHOLD else float(when)
        parsed.append((seconds, _DIRECTIONS.get(kind), opcode, m.get("data"), where))
    first = min((p[0] for p in parsed), default=None)
    if started_at is not None and (first is None or started_at <= first):
        base = started_at
    else:
        base = first if first is not None else (started_at or 0.0)
    messages: list[Message] = []
    close: Close | None = None
    for seconds, direction, opcode, data, where in parsed:
        t = max(0.0, seconds - base)
        if t > MAX_SESSION_SECONDS:
            raise CaptureError(
                f"{where}.time: {seconds - base:,.0f} s after the session started "
                f"(at most {MAX_SESSION_SECONDS:,}: a year)"
            )
        if direction is None:  # Chrome's "error" frame: the connection failed
            text = data if isinstance(data, str) else "WebSocket error"
            close = Close(code=None, by=Closer.ERROR, error=text, t=t)
            continue
        payload = _payload(data, opcode, where)
        if opcode == 8:
            assert isinstance(payload, bytes)
            if close is None:
                close = _close_from_frame(payload, direction, t)
            continue
        op = Opcode.TEXT if opcode == 1 else Opcode.BINARY if opcode == 2 else _CONTROL[opcode]
        messages.append(Message(len(messages), t, direction, op, payload))
    return base, tuple(messages), close


def _session_id(entry: dict[str, Any]) -> str:
    """A stable id from the entry's content: importing a file twice finds the same ids."""
    digest = hashlib.sha256(
        json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    ).hexdigest()
    return f"har-{digest[:16]}"


def _with_placeholders(handshake: Handshake, names: tuple[str, ...]) -> Handshake:
    """Add a placeholder header for each credential header the export left out."""
    missing = [n for n in names if handshake.request_header(n) is None]
    if not missing:
        return handshake
    added = tuple((n, placeholder("header", n.lower())) for n in missing)
    return replace(handshake, request_headers=handshake.request_headers + added)


def _session(
    entry: dict[str, Any], index: int, tags: tuple[str, ...], placeholders: tuple[str, ...]
) -> Session:
    handshake = _with_placeholders(_handshake(entry, index), placeholders)
    started = entry.get("startedDateTime")
    started_at = _parse_time(started)
    if started is not None and started_at is None:
        raise CaptureError(
            f"{_where(index, 'startedDateTime')}: expected an ISO 8601 date, got {started!r}"
        )
    base, messages, close = _messages(entry, index, started_at)
    return Session(
        id=_session_id(entry),
        started_at=started_at if started_at is not None else base,
        handshake=handshake,
        messages=messages,
        close=close,
        provenance=Provenance(source=Source.HAR, tags=tags),
    )


def har_document(doc: Any, name: str = "<har>", placeholders: Iterable[str] = ()) -> list[Session]:
    """The WebSocket sessions of a parsed HAR document, in file order.

    ``placeholders`` names credential headers (``authorization``,
    ``cookie``) that a sanitized export left out: each session lacking one
    gets a ``${redacted:header:NAME}`` placeholder that replay can fill.
    Raises CaptureError naming the entry index and field for malformed
    input, and when the file holds no WebSocket entry at all.
    """
    wanted = tuple(placeholders)
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict):
        raise CaptureError(f'{name}: not a HAR file (no top-level {{"log": {{...}}}} object)')
    log = doc["log"]
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise CaptureError(f"{name}: log.entries: expected a list, got {_kind(entries)}")
    creator = log.get("creator")
    creator_name = creator.get("name") if isinstance(creator, dict) else None
    tags = (f"har:{creator_name}",) if isinstance(creator_name, str) and creator_name else ()
    sessions = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CaptureError(f"{name}: {_where(index)}: expected an object, got {_kind(entry)}")
        if not _is_websocket(entry):
            continue
        try:
            sessions.append(_session(entry, index, tags, wanted))
        except CaptureError as e:
            raise CaptureError(f"{name}: {e}") from None
    if not sessions:
        raise CaptureError(
            f"{name}: no WebSocket entries among {len(entries)} HAR entries "
            "(export with the WS filter or 'Save all as HAR', after the sockets opened)"
        )
    return sessions


def read_har(
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    name: str | None = None,
    placeholders: Iterable[str] = (),
    max_bytes: int = MAX_HAR_BYTES,
) -> list[Session]:
    """All WebSocket sessions of a HAR file (path or stream); see ``har_document``.

    A zlib-compressed file (.zhar) may expand to at most ``max_bytes``.
    """
    if name is None:
        name = str(source) if isinstance(source, str | os.PathLike) else "<har>"
    return har_document(_load(source, name, max_bytes), name, placeholders)


def import_har(
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    name: str | None = None,
    placeholders: Iterable[str] = (),
) -> Iterator[Session]:
    """The WebSocket sessions of a HAR file, for ``CaptureStore.put_sessions``.

    The whole file is checked before the first session is returned, so a bad
    entry never leaves a half import. Raises CaptureError (a BadInput).
    """
    return iter(read_har(source, name, placeholders))
