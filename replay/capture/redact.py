"""Redaction: credentials never reach a capture file unless the user asks.

A redacted value becomes a placeholder that names what it was, such as
``${redacted:header:authorization}`` or ``jwt.${redacted:subprotocol:jwt}``,
so that replay can substitute a fresh credential by name later
(``--credential authorization='Bearer ...'``). Each distinct value also gets a
number, the same wherever it appears (``${redacted:header:authorization#2}``,
see ``identities``), so that distinct recorded users replay as distinct test
users (``--credential authorization#2=...``). Redacting an already-redacted
session changes nothing, so import and export round-trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from wsshadow.replay.capture.framing import rewrite_json_docs
from wsshadow.replay.capture.identities import (
    PLACEHOLDER_RE,
    SecretNumbers,
    highest_number,
    secret_core,
)
from wsshadow.replay.capture.model import Close, Handshake, Headers, Message, Opcode, Session
from wsshadow.replay.capture.mqtt import rewrite_fields

__all__ = [
    "DEFAULT_SECRET_FIELDS",
    "MQTT_PASSWORD",
    "PLACEHOLDER_RE",
    "SECRET_HEADERS",
    "SECRET_HEADER_SUFFIXES",
    "Redactor",
    "placeholder",
]

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Headers whose whole value is a credential."""

SECRET_HEADER_SUFFIXES = ("-api-key", "-apikey", "-token", "-secret", "-password")
"""Header names ending like this (``X-Api-Key``, ``X-Auth-Token``) hold a credential too,
as do headers named like a secret field (``Api-Key``, ``Token``)."""

DEFAULT_SECRET_FIELDS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "private_key",
)
"""JSON field and query parameter names that hold secrets (whole-name match)."""

# Subprotocol entries that carry a token after a scheme prefix, as browsers send
# them because they cannot set an Authorization header on a WebSocket.
_TOKEN_SUBPROTOCOL = re.compile(
    r"^(?P<prefix>(?:jwt|bearer|token|access_token|auth|authorization"
    r"|base64url\.bearer\.authorization\.k8s\.io)[.])(?P<token>.+)$",
    re.IGNORECASE,
)
_BARE_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

# ``name=value`` or ``name: value`` in text that is not JSON: form-encoded
# messages (``password=...&token=...``), close reasons (``bad token=...``),
# log-like text. The value runs to the next separator; a quoted value to its quote.
_NAMED_VALUE = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)(?P<sep>[\"']?\s*[=:]\s*)"
    r"(?:(?P<q>[\"'])(?P<quoted>.*?)(?P=q)|(?P<bare>[^\s&;,\"']+))"
)


def placeholder(kind: str, name: str, number: int | None = None) -> str:
    """The placeholder that stands for a redacted ``kind`` value called ``name``
    (``number``: which distinct value it was, ``${redacted:KIND:NAME#N}``)."""
    if number is None:
        return f"${{redacted:{kind}:{name}}}"
    return f"${{redacted:{kind}:{name}#{number}}}"


MQTT_PASSWORD = placeholder("mqtt", "password")
"""An MQTT CONNECT's password as captures before numbered placeholders held it; now it
becomes ``${redacted:mqtt:password#N}`` (``--credential password=...`` fills both)."""


def _squash(name: str) -> str:
    """Field names compare case-insensitively and ignoring - and _ (apiKey = api_key)."""
    return name.lower().replace("_", "").replace("-", "")


@dataclass(frozen=True)
class Redactor:
    """Replaces credentials in sessions with placeholders.

    ``extra_fields`` adds JSON field / query parameter names, ``extra_headers``
    adds header names. ``enabled=False`` (``--no-redact``) passes everything.

    Each distinct secret value gets a number, stable for the redactor's
    lifetime (one proxy, one middleware, one import): only a salted digest of
    it is kept, in memory. ``start_above`` keeps new numbers clear of those a
    capture holds already (``CaptureStore`` does it for its redactor).
    """

    enabled: bool = True
    extra_fields: tuple[str, ...] = ()
    extra_headers: tuple[str, ...] = ()
    _fields: frozenset[str] = field(init=False, repr=False, compare=False)
    _headers: frozenset[str] = field(init=False, repr=False, compare=False)
    _fragments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _numbers: SecretNumbers = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_numbers", SecretNumbers())
        names = {_squash(n) for n in (*DEFAULT_SECRET_FIELDS, *self.extra_fields)}
        object.__setattr__(self, "_fields", frozenset(names))
        headers = SECRET_HEADERS | {h.lower() for h in self.extra_headers}
        object.__setattr__(self, "_headers", frozenset(headers))
        # A cheap test run on every text message: JSON is parsed only when a
        # secret-like name can appear at all, which keeps recording fast. Each
        # name's longest part between separators is present in any spelling of
        # it (api_key, api-key, apiKey all contain "key"), so nothing is missed.
        fragments = {
            max(re.split(r"[-_]", n.lower()), key=len)
            for n in (*DEFAULT_SECRET_FIELDS, *self.extra_fields)
        }
        # A fragment that contains another adds nothing ("apikey" holds "api").
        fragments = {f for f in fragments if not any(g != f and g in f for g in fragments)}
        object.__setattr__(self, "_fragments", tuple(sorted(fragments)))

    def _maybe_secret(self, text: str) -> bool:
        # One substring search per fragment: str's search skips ahead, where an
        # alternation regex tries every fragment at every position (4 KB: 19 vs 40 us).
        low = text.lower()
        return any(fragment in low for fragment in self._fragments)

    # ---- numbers -----------------------------------------------------------

    def start_above(self, floor: int | Callable[[], int]) -> None:
        """Number new secret values above ``floor`` (an int, or a callable asked once,
        when the first new value needs a number): a capture's highest number, so that
        a recording added to it never gives a new user a number already taken."""
        self._numbers.start_above(floor)

    def _marker(self, kind: str, name: str, value: str | bytes) -> str:
        """The placeholder for ``value``; a value that is a placeholder already (a stored
        replay's, say) becomes this kind's and name's, keeping its number."""
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        held = PLACEHOLDER_RE.fullmatch(text)
        if held is not None:
            number = held.group(3)
            if number is not None:
                self._numbers.start_above(int(number))
            return placeholder(kind, name, None if number is None else int(number))
        if isinstance(value, str):
            value = secret_core(kind, name, value)
        return placeholder(kind, name, self._numbers.number(value))

    def _kept(self, value: str) -> bool:
        """True when ``value`` is a placeholder already (its number then stays taken)."""
        if not PLACEHOLDER_RE.fullmatch(value):
            return False
        self._numbers.start_above(highest_number((value,)))
        return True

    # ---- names -------------------------------------------------------------

    def is_secret_field(self, name: str) -> bool:
        """True when a JSON field or query parameter called ``name`` holds a secret."""
        return _squash(name) in self._fields

    def is_secret_header(self, name: str) -> bool:
        """True when a header called ``name`` holds a credential (``Authorization``,
        ``Cookie``, ``X-Api-Key``, ``X-Auth-Token``, ``Client-Secret``, ...)."""
        low = name.lower()
        return (
            low in self._headers
            or low.endswith(SECRET_HEADER_SUFFIXES)
            or self.is_secret_field(low)
        )

    # ---- pieces ------------------------------------------------------------

    def headers(self, headers: Headers) -> Headers:
        """Headers with credential values and token subprotocols replaced."""
        if not self.enabled:
            return headers
        out = []
        for name, value in headers:
            low = name.lower()
            if self.is_secret_header(low):
                if not self._kept(value):
                    value = self._marker("header", low, value)
            elif low == "sec-websocket-protocol":
                value = ", ".join(self.subprotocol(p.strip()) for p in value.split(","))
            out.append((name, value))
        return tuple(out)

    def subprotocol(self, entry: str) -> str:
        """One subprotocol entry, with a bearer token replaced by a placeholder."""
        if not self.enabled:
            return entry
        if PLACEHOLDER_RE.search(entry):
            self._numbers.start_above(highest_number((entry,)))
            return entry
        m = _TOKEN_SUBPROTOCOL.match(entry)
        if m:
            scheme = m.group("prefix")[:-1].split(".")[0].lower()
            return m.group("prefix") + self._marker("subprotocol", scheme, m.group("token"))
        if _BARE_JWT.match(entry):
            return self._marker("subprotocol", "token", entry)
        return entry

    def query(self, query: str) -> str:
        """A raw query string with secret parameters' values replaced."""
        if not self.enabled or not query or not self._maybe_secret(query):
            return query
        parts = []
        changed = False
        for piece in query.split("&"):
            name = piece.split("=", 1)[0]
            decoded = parse_qsl(name + "=x", keep_blank_values=True)
            key = decoded[0][0] if decoded else name
            if "=" in piece and self.is_secret_field(key):
                value = piece.split("=", 1)[1]
                marker = self._marker("query", quote(key.lower(), safe=""), unquote(value))
                new = f"{name}={marker}"
                changed = changed or new != piece
                piece = new
            parts.append(piece)
        return "&".join(parts) if changed else query

    def text(self, text: str) -> str:
        """A text message with secret JSON fields replaced.

        Fields are found in the JSON documents framed in the text too (after
        Socket.IO's ``42``, per SignalR record, in a STOMP body, per line)
        and in JSON held in strings (ActionCable's ``data``). Text that is
        not JSON has its secret ``name=value`` / ``name: value`` pairs replaced
        (form-encoded messages, ``key: value`` lines); anything else is kept.
        """
        if not self.enabled or not self._maybe_secret(text):
            return text
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            framed = rewrite_json_docs(text, self._walk)
            return self.free_text(text) if framed is None or framed == text else framed
        new, changed = self._walk(doc)
        if not changed:
            # JSON, but a bare string or a document whose secret-looking words are in
            # values: a JSON string may still carry ``password=...`` inside.
            return self.free_text(text) if isinstance(doc, str) else text
        return json.dumps(new, ensure_ascii=False, separators=(",", ":"))

    def free_text(self, text: str) -> str:
        """``text`` with the value of every secret-named ``name=value`` or
        ``name: value`` pair replaced by a ``form`` placeholder."""
        if not self.enabled or not self._maybe_secret(text):
            return text

        def sub(m: re.Match[str]) -> str:
            name = m.group("name")
            if not self.is_secret_field(name):
                return m.group(0)
            value = m.group("quoted") if m.group("quoted") is not None else m.group("bare")
            if not value:
                return m.group(0)
            marker = self._marker("form", name.lower(), value)
            if marker == value:
                return m.group(0)
            if m.group("quoted") is not None:
                q = m.group("q")
                return f"{name}{m.group('sep')}{q}{marker}{q}"
            return f"{name}{m.group('sep')}{marker}"

        return _NAMED_VALUE.sub(sub, text)

    def binary(self, data: bytes) -> bytes:
        """A binary message redacted as ``text`` would when it is UTF-8 text
        (JSON or form-encoded, as many clients send them); other bytes as they are.

        Whole MQTT packets are redacted inside their framing, lengths encoded
        again: CONNECT's password becomes ``${redacted:mqtt:password}``, a
        PUBLISH's message is redacted as a binary message of its own."""
        if not self.enabled or not data:
            return data
        low = data.lower()
        maybe = any(fragment.encode() in low for fragment in self._fragments)
        if maybe or data[0] == 0x10:  # 0x10: an MQTT CONNECT, whose password has no name
            mqtt = rewrite_fields(data, publish=self._utf8, password=self._mqtt_password)
            if mqtt is not None and mqtt is not data:
                return mqtt
        return self._utf8(data) if maybe else data

    def _mqtt_password(self, password: bytes) -> bytes:
        marker = self._marker("mqtt", "password", password).encode("utf-8")
        return password if marker == password else marker

    def _utf8(self, data: bytes) -> bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        new = self.text(text)
        return data if new is text else new.encode("utf-8")

    def data(self, opcode: str, payload: bytes) -> bytes:
        """The payload of a non-text frame (``opcode`` an ``Opcode`` or its value)
        redacted: a close frame's reason after its 2-byte code, anything else as
        ``binary``."""
        if not self.enabled or len(payload) <= 2:
            return payload
        if opcode == "close":
            head, reason = payload[:2], payload[2:]
            new = self.binary(reason)
            return payload if new is reason else head + new
        return self.binary(payload)

    def reason(self, reason: str) -> str:
        """A close reason (or error text) with secret ``name=value`` pairs and JSON fields replaced."""
        return self.text(reason) if reason else reason

    def close(self, close: Close) -> Close:
        """A close with its reason redacted."""
        if not self.enabled or not close.reason:
            return close
        reason = self.reason(close.reason)
        return close if reason is close.reason else replace(close, reason=reason)

    def texts(self, texts: Sequence[str]) -> Sequence[str]:
        """Many text messages at once, as ``text`` would redact each (the same sequence
        when none can hold a secret: one test over all of them instead of one each)."""
        if not self.enabled or not texts or not self._maybe_secret("\0".join(texts)):
            return texts
        return [self.text(t) for t in texts]

    def _walk(self, value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict):
            changed = False
            out: dict[str, Any] = {}
            for k, v in value.items():
                if self.is_secret_field(k) and not isinstance(v, dict | list):
                    if v is not None and v != "":
                        raw = v if isinstance(v, str) else json.dumps(v)
                        marker = self._marker("json", k.lower(), raw)
                        changed = changed or marker != v
                        v = marker
                else:
                    v, sub = self._walk(v)
                    changed = changed or sub
                out[k] = v
            return out, changed
        if isinstance(value, list):
            items = [self._walk(v) for v in value]
            return [v for v, _ in items], any(c for _, c in items)
        if isinstance(value, str) and value[:1] in ("{", "[") and self._maybe_secret(value):
            try:
                inner = json.loads(value)
            except (ValueError, RecursionError):
                return value, False
            new, changed = self._walk(inner)
            if changed:
                return json.dumps(new, ensure_ascii=False, separators=(",", ":")), True
        return value, False

    # ---- whole values ------------------------------------------------------

    def handshake(self, handshake: Handshake) -> Handshake:
        """A handshake with every credential replaced."""
        if not self.enabled:
            return handshake
        return replace(
            handshake,
            query=self.query(handshake.query),
            request_headers=self.headers(handshake.request_headers),
            subprotocols=tuple(self.subprotocol(p) for p in handshake.subprotocols),
            subprotocol=(
                None if handshake.subprotocol is None else self.subprotocol(handshake.subprotocol)
            ),
            response_headers=self.headers(handshake.response_headers),
        )

    def message(self, message: Message) -> Message:
        """A message with secret JSON fields and ``name=value`` pairs replaced,
        binary messages and control frames that are UTF-8 text included."""
        if not self.enabled:
            return message
        payload = message.payload
        if message.opcode is Opcode.TEXT:
            assert isinstance(payload, str)
            new: str | bytes = self.text(payload)
        else:
            assert isinstance(payload, bytes)
            new = self.data(message.opcode, payload)
        return message if new is payload else replace(message, payload=new)

    def messages(self, messages: Iterable[Message]) -> tuple[Message, ...]:
        """Every message redacted."""
        return tuple(self.message(m) for m in messages)

    def session(self, session: Session) -> Session:
        """A whole session with every credential replaced."""
        if not self.enabled:
            return session
        return replace(
            session,
            handshake=self.handshake(session.handshake),
            messages=self.messages(session.messages),
            close=None if session.close is None else self.close(session.close),
        )
