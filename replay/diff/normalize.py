"""Normalize server messages before they are aligned and compared (pure).

A text message that parses as JSON is compared as JSON, other text as
text, binary messages as bytes. Masks (uuid, ISO-8601, epoch seconds and
milliseconds, hex ids, custom regexes) make volatile values equal: they
replace matches by a token such as ``<uuid>`` in strings (and epoch-range
numbers by ``"<epoch>"``). Ignore rules (dotted paths with ``*`` and
``**``) drop fields. The fast path (``Normalizer.equivalent``) compares
the raw texts, then walks two parsed values together applying masks and
ignore rules only where they differ; the full masked values are built only
for pairs that really differ. Control frames (ping, pong) are dropped
unless the config compares them. A redaction placeholder's number
(``${redacted:json:token#2}``: which recorded value it was) is dropped: each
run's capture writer numbers the values it redacts in its own order, so the
number says nothing about the target. The masks themselves are in ``masks.py``,
the ignore rules in ``ignore.py`` (their names are importable from here too).

A session spoken in a dialect (``replay.diff.dialects``: Socket.IO,
GraphQL, JSON-RPC, ...) is normalized from its decoded events instead:
the event key and correlation id come from the dialect, the value is the
decoded payload, protocol control traffic is dropped, and a reply is named
after the request it answers (``add result``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Literal, NamedTuple

from wsshadow.replay.capture.identities import NUMBERED_RE
from wsshadow.replay.capture.model import Direction, Message, Opcode, Session
from wsshadow.replay.config import RouteDiffConfig
from wsshadow.replay.diff.dialects import Dialect
from wsshadow.replay.diff.dialects.base import MAX_JSON_DEPTH, _too_deep, parse_json
from wsshadow.replay.diff.ignore import IgnoreRules, get_path
from wsshadow.replay.diff.masks import (
    HEX_CHARS,
    INNER,
    MASK_ORDER,
    RUN,
    classify,
    is_epoch_number,
    outside_string,
    text_tokens,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "Format",
    "IgnoreRules",
    "Normalized",
    "Normalizer",
    "ParseCache",
    "display_payload",
    "get_path",
    "text_tokens",
    "unnumbered",
]

Format = Literal["json", "text", "binary"]

_Parsed = tuple[Format, str, "str | None", str | bytes, Any]
ParseCache = dict[str, _Parsed]
"""Raw text -> (format, key, event, fast-path text, value); share it within one session."""
_MISSING: Any = object()
_new = tuple.__new__


def _unnumbered(m: re.Match[str]) -> str:
    text = m.group(0)
    return text[: text.rindex("#")] + "}"


def unnumbered(value: Any) -> Any:
    """``value`` (text, bytes or a parsed JSON value) with every redaction placeholder's
    ``#N`` dropped: ``${redacted:json:token#2}`` compares as ``${redacted:json:token}``."""
    if isinstance(value, str):
        return NUMBERED_RE.sub(_unnumbered, value) if "${redacted:" in value else value
    if isinstance(value, bytes):
        if b"${redacted:" not in value:
            return value
        try:
            return unnumbered(value.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, dict):
        return {k: unnumbered(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(unnumbered(v) for v in value)
    return value


class Normalized(NamedTuple):
    """One server message ready to align and compare.

    ``masked`` is what the first fast-path check compares: the raw text of
    JSON, the masked text of other text, the bytes of binary messages;
    ``value`` the parsed JSON (unmasked), the masked text or the bytes;
    ``raw`` the original payload, for reports. ``key`` is
    what alignment matches on: the event key, or ``<text>`` / ``<binary>`` /
    ``<json>`` / ``<ping>`` / ``<pong>`` when there is none. ``corr`` is the
    dialect's correlation id (None without one) and ``request`` the event
    key of the client request with that id, when the session has it.
    """

    seq: int
    t: float
    format: Format
    key: str
    event: str | None
    masked: str | bytes
    value: Any
    raw: str | bytes
    corr: str | None = None
    request: str | None = None


def display_payload(n: Normalized) -> Any:
    """The payload as a JSON-ready value: parsed (or decoded) JSON, text, or base64."""
    if n.format == "json":
        return json.loads(json.dumps(n.value))  # a fresh copy: reports may be changed
    if n.format == "text":
        return n.raw
    assert isinstance(n.raw, bytes)
    return base64.b64encode(n.raw).decode("ascii")


class Normalizer:
    """Turns one route's server messages into ``Normalized`` values.

    Build one per route configuration and reuse it: regexes and ignore
    rules are compiled once.
    """

    def __init__(self, config: RouteDiffConfig) -> None:
        self.config = config
        self._custom = [
            (re.compile(regex), f"<{name}>")
            for name, regex in config.custom_masks.items()
            if name in config.masks
        ]
        self.text_masks = [(re.compile(regex), f"<{name}>") for name, regex in
                           config.custom_masks.items()]  # fmt: skip
        """Every custom mask, in force or not: what ``text_tokens`` finds volatile."""
        self._builtin = tuple(m for m in MASK_ORDER if m in config.masks)
        self._epoch = "epoch" in self._builtin
        self._keys = tuple(tuple(k.split(".")) for k in config.event_keys)
        self._simple_keys = (
            config.event_keys if all("." not in k for k in config.event_keys) else ()
        )
        self._ignore: dict[str | None, IgnoreRules] = {None: IgnoreRules(config.ignore)}
        self.compare_control = config.control_frames == "compare"
        self._masked: dict[str, str] = {}

    # ---- masks ---------------------------------------------------------------

    def _run(self, m: re.Match[str]) -> str:
        run = m.group()
        name = classify(run)
        if name is not None and name in self._builtin:
            text = m.string
            start, end = m.start(), m.end()
            if name == "epoch":
                return '"<epoch>"' if outside_string(text, start, end) else "<epoch>"
            if name != "hex" or not (
                (start and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum())
            ):
                return f"<{name}>"
        for name in self._builtin:
            run = INNER[name].sub(f"<{name}>", run)
        return run

    def mask_text(self, text: str) -> str:
        """``text`` with every mask applied (epoch numbers become ``"<epoch>"`` strings)."""
        for regex, token in self._custom:
            text = regex.sub(token, text)
        if self._builtin:
            text = RUN.sub(self._run, text)
        return text

    def _mask_string(self, s: str) -> str:
        cached = self._masked.get(s)
        if cached is not None:
            return cached
        if len(self._masked) > 4096:  # ids repeat within a session, rarely across: stay small
            self._masked.clear()
        self._masked[s] = masked = self._mask_string_uncached(s)
        return masked

    def _mask_string_uncached(self, s: str) -> str:
        for regex, token in self._custom:
            s = regex.sub(token, s)
        if len(s) >= 8 and s[0] in HEX_CHARS:
            whole = classify(s)  # a whole-value id or time: no need to search inside
            if whole is not None and whole in self._builtin:
                return f"<{whole}>"
        for name in self._builtin:
            s = INNER[name].sub(f"<{name}>", s)
        return s

    def mask_value(self, value: Any) -> Any:
        """Masks applied to a parsed JSON value (used when masking the text broke it)."""
        if isinstance(value, str):
            return self._mask_string(value)
        if isinstance(value, dict):
            return {self._mask_string(k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        if self._epoch and is_epoch_number(value):
            return "<epoch>"
        return value

    # ---- messages --------------------------------------------------------------

    def event_key(self, value: Any) -> str | None:
        """The first configured event key present in a JSON value, as a string."""
        if not isinstance(value, dict):
            return None
        if self._simple_keys:
            for k in self._simple_keys:
                found = value.get(k)
                if isinstance(found, str):
                    return found
                if found is not None:
                    break
            else:
                return None
        for parts in self._keys:
            v: Any = value
            for p in parts:
                if isinstance(v, dict) and p in v:
                    v = v[p]
                else:
                    v = None
                    break
            if isinstance(v, str):
                return v
            if isinstance(v, int | float) and not isinstance(v, bool):
                return str(v)
        return None

    def message(self, m: Message, cache: ParseCache | None = None) -> Normalized | None:
        """One message normalized, or None for frames the diff does not compare.

        ``cache`` (raw text -> parse) lets streams of the same session share
        the parsing of the messages they have in common.
        """
        if m.opcode is Opcode.TEXT:
            assert isinstance(m.payload, str)
            return self._text(m.seq, m.t, m.payload, cache)
        if m.opcode is Opcode.BINARY or (
            self.compare_control and m.opcode in (Opcode.PING, Opcode.PONG)
        ):
            key = "<binary>" if m.opcode is Opcode.BINARY else f"<{m.opcode.value}>"
            data = unnumbered(m.payload)
            return Normalized(m.seq, m.t, "binary", key, None, data, data, m.payload)
        return None

    def _text(self, seq: int, t: float, text: str, cache: ParseCache | None) -> Normalized:
        hit = cache.get(text) if cache is not None else None
        if hit is None:
            hit = self._parse(text)
            if cache is not None:
                cache[text] = hit
        fmt, key, event, fast, value = hit
        return _new(Normalized, (seq, t, fmt, key, event, fast, value, text, None, None))

    def _parse(self, text: str) -> _Parsed:
        if "${redacted:" in text:
            text = unnumbered(text)
        try:  # orjson, or Python's json for NaN and integers past 64 bits
            value = parse_json(text)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            masked = self.mask_text(text)
            return ("text", "<text>", None, masked, masked)
        # str.count is fast; only a document with that many brackets can be that deep.
        if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
            masked = self.mask_text(text)
            return ("text", "<text>", None, masked, masked)
        event = self.event_key(value)
        return ("json", event if event is not None else "<json>", event, text, value)

    def stream(
        self, session: Session, cache: ParseCache | None = None, dialect: Dialect | None = None
    ) -> list[Normalized]:
        """The server messages of a session, normalized, in order.

        With a ``dialect`` that decodes (not plain JSON or raw), its events.
        """
        if dialect is not None and dialect.decodes:
            return self.decoded(session, dialect)
        if cache is None:
            cache = {}
        out = []
        server, text_op = Direction.SERVER, Opcode.TEXT
        for m in session.messages:
            if m.direction is not server:
                continue
            if m.opcode is text_op:  # the hot path of message(), inlined
                text = m.payload
                assert isinstance(text, str)
                hit = cache.get(text)
                if hit is None:
                    hit = cache[text] = self._parse(text)
                out.append(_new(Normalized, (m.seq, m.t, *hit, text, None, None)))
            else:
                n = self.message(m, cache)
                if n is not None:
                    out.append(n)
        return out

    def decoded(self, session: Session, dialect: Dialect) -> list[Normalized]:
        """A session's server events as ``dialect`` decodes them, in order.

        Client requests are decoded too, only to name the replies after them.
        """
        out: list[Normalized] = []
        requests: dict[str, str] = {}
        client = Direction.CLIENT
        compare_control = self.compare_control
        for m, ev in dialect.decode(session.messages):
            corr = ev.corr
            if m.direction is client:
                if corr is not None and not ev.reply:
                    requests.setdefault(corr, ev.key)
                continue
            if ev.control and not compare_control:
                continue
            request = requests.get(corr) if corr is not None else None
            key = f"{request} {ev.key}" if ev.reply and request is not None else ev.key
            raw = ev.raw if ev.raw is not None else m.payload
            value = ev.value
            payload = m.payload
            if ("${redacted:" if type(payload) is str else b"${redacted:") in payload:  # type: ignore[operator]
                raw, value = unnumbered(raw), unnumbered(value)
            fields = (m.seq, m.t, "json", key, key, raw, value, m.payload, corr, request)
            out.append(_new(Normalized, fields))
        return out

    # ---- ignore rules ----------------------------------------------------------

    def ignore_rules(self, event: str | None) -> IgnoreRules:
        """The ignore rules for messages with this event key."""
        rules = self._ignore.get(event)
        if rules is None:
            extra = self.config.event_ignore.get(event or "", ())
            rules = IgnoreRules(self.config.ignore + extra) if extra else self._ignore[None]
            self._ignore[event] = rules
        return rules

    def comparable(self, n: Normalized) -> Any:
        """The value compared field by field: masked, with ignore rules applied."""
        if n.format != "json":
            return n.value
        return self.ignore_rules(n.event).apply(self.mask_value(n.value))

    def equivalent(self, a: Normalized, b: Normalized) -> bool:
        """Fast check that two messages are equal under masks and ignore rules.

        True is always right; False may be wrong (then compare ``comparable()``
        values). Walks both values together and looks only at what differs,
        so volatile fields cost a mask check and equal fields almost nothing.
        Numbers of different types (``1``, ``1.0``, ``true``) are told apart
        at every level it looks at; only inside a nested container that is
        equal as a whole by value can they pass as equal here.
        """
        if a.masked == b.masked:
            return True
        if a.format != "json" or b.format != "json":
            return False
        rules = self.ignore_rules(a.event)
        return self._same(a.value, b.value, rules, rules.start if rules else frozenset())

    def _same(self, a: Any, b: Any, rules: IgnoreRules, states: frozenset[tuple[int, int]]) -> bool:
        if isinstance(a, dict):
            if not isinstance(b, dict):
                return False
            if a.keys() != b.keys():
                if not states:
                    return False
                for k in a.keys() ^ b.keys():
                    if not rules.step(states, k)[0]:
                        return False
            for k in [k for k in a if k in b and (a[k] != b[k] or type(a[k]) is not type(b[k]))]:
                nxt: frozenset[tuple[int, int]] = frozenset()
                if states:
                    dropped, nxt = rules.step(states, k)
                    if dropped:
                        continue
                va, vb = a[k], b[k]
                if isinstance(va, str):  # the common leaves, inline: ids, times
                    if not (isinstance(vb, str) and self._mask_string(va) == self._mask_string(vb)):
                        return False
                elif isinstance(va, dict | list):
                    if not self._same(va, vb, rules, nxt):
                        return False
                elif not (self._epoch and is_epoch_number(va) and is_epoch_number(vb)):
                    return False
            return True
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return False
            for i in [
                i
                for i, (va, vb) in enumerate(zip(a, b, strict=True))
                if va != vb or type(va) is not type(vb)
            ]:
                nxt = frozenset()
                if states:
                    dropped, nxt = rules.step(states, str(i))
                    if dropped:
                        continue
                if not self._same(a[i], b[i], rules, nxt):
                    return False
            return True
        if isinstance(a, str):
            return isinstance(b, str) and self._mask_string(a) == self._mask_string(b)
        if self._epoch and is_epoch_number(a) and is_epoch_number(b):
            return True
        return a == b and type(a) is type(b)
