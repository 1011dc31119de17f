"""Credentials: fill the placeholders redaction left with fresh values.

Redaction turns a secret into ``${redacted:KIND:NAME#N}`` (see
``capture.redact``; ``N`` numbers the distinct values, so distinct recorded
users have distinct numbers; older captures have no ``#N``). Replay fills
each placeholder from a mapping of credential names to values, given on the
command line or in the config file; a value may reference environment
variables as ``${VAR}``. A key may be ``NAME`` (every number) or the more
specific ``KIND:NAME``, ``NAME#N`` (one recorded value: one user) or
``KIND:NAME#N``; a numbered key wins over a plain one. Names compare
case-insensitively. The environment is passed in, never read here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from wsshadow.replay.capture.framing import rewrite_json_docs, walk_strings
from wsshadow.replay.capture.model import Close, Handshake, Message, Session
from wsshadow.replay.capture.mqtt import rewrite_fields
from wsshadow.replay.capture.redact import PLACEHOLDER_RE, placeholder
from wsshadow.replay.errors import BadInput

__all__ = [
    "MIN_SCRUB_LENGTH",
    "Credentials",
    "MissingCredential",
    "expand_env",
    "parse_credential",
    "shared_identities",
]

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")

MIN_SCRUB_LENGTH = 4
"""Credential values shorter than this are not scrubbed from stored replays (too common)."""


class MissingCredential(BadInput):
    """A session needs a credential that nobody supplied."""


def parse_credential(text: str) -> tuple[str, str]:
    """Parse ``NAME=VALUE`` (as given to ``--credential``); raises BadInput."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise BadInput(f"credential {text!r}: expected NAME=VALUE, like authorization='Bearer ...'")
    return name, value


def expand_env(value: str, env: Mapping[str, str], *, name: str = "") -> str:
    """``value`` with each ``${VAR}`` replaced from ``env``; raises MissingCredential."""

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in env:
            raise MissingCredential(
                f"credential {name!r} needs environment variable {var}, which is not set"
            )
        return env[var]

    return _ENV_RE.sub(sub, value)


def shared_identities(needed: Iterable[str], supplied: Iterable[str]) -> dict[str, list[str]]:
    """Credential names recorded with several numbers (``authorization#1``,
    ``authorization#2``: several users) two or more of which only a plain credential
    fills, by name: those users would replay as the same test user. ``needed`` are
    ``NAME#N`` names (``CaptureStore.credentials_needed``), ``supplied`` the keys given."""
    given = {key.lower().rpartition(":")[2] for key in supplied}
    numbered: dict[str, list[str]] = {}
    for name in needed:
        base, _, number = name.lower().partition("#")
        if number:
            numbered.setdefault(base, []).append(name)
    plain = {
        base: sorted(n for n in names if n.lower() not in given)
        for base, names in sorted(numbered.items())
        if base in given
    }
    return {base: names for base, names in plain.items() if len(names) > 1}


def _key(m: re.Match[str]) -> str:
    """The ``--credential`` name that fills one placeholder: ``authorization#2``."""
    return m.group(2) if m.group(3) is None else f"{m.group(2)}#{m.group(3)}"


def _missing(marker: str, key: str) -> str:
    name, _, number = key.partition("#")
    how = f"{key}=VALUE, or {name}=VALUE for every number," if number else f"{key}=VALUE"
    return (
        f"the session needs credential {marker}, which nobody supplied "
        f"(--credential {how} or [credentials] in the config file)"
    )


@dataclass(frozen=True)
class Credentials:
    """Credential values by name (``authorization``) or kind and name (``header:authorization``).

    ``broken`` holds the credentials whose ``${VAR}`` could not be expanded,
    with the reason; looking one of them up raises MissingCredential, so an
    unset variable only fails the sessions that need it.
    """

    values: Mapping[str, str] = field(default_factory=dict)
    broken: Mapping[str, str] = field(default_factory=dict)
    env_values: Mapping[str, str] = field(default_factory=dict)
    """Environment values a credential referenced (value -> credential key), scrubbed too."""

    @classmethod
    def resolve(cls, raw: Mapping[str, str], env: Mapping[str, str]) -> Credentials:
        """Credentials with ``${VAR}`` references expanded from ``env``."""
        values: dict[str, str] = {}
        broken: dict[str, str] = {}
        env_values: dict[str, str] = {}
        for key, value in raw.items():
            try:
                values[key.lower()] = expand_env(value, env, name=key)
            except MissingCredential as e:
                broken[key.lower()] = str(e)
                continue
            for var in _ENV_RE.findall(value):
                env_values[env[var]] = key.lower()
        return cls(values, broken, env_values)

    @property
    def names(self) -> tuple[str, ...]:
        """Every credential name given, expanded or not (never the values)."""
        return tuple(sorted({*self.values, *self.broken}))

    def lookup(self, kind: str, name: str, number: str | int | None = None) -> str | None:
        """The value for a placeholder of ``kind`` and ``name`` (and ``number``), or None:
        ``KIND:NAME#N``, then ``NAME#N``, then ``KIND:NAME``, then ``NAME``.

        Raises MissingCredential when the credential was given but its
        environment variable is not set.
        """
        name = name.lower()
        keys: tuple[str, ...] = (f"{kind}:{name}", name)
        if number is not None:
            keys = (f"{kind}:{name}#{number}", f"{name}#{number}", *keys)
        for key in keys:
            if key in self.values:
                return self.values[key]
            if key in self.broken:
                raise MissingCredential(self.broken[key])
        return None

    def check_supplied(self, texts: Iterable[str | bytes]) -> None:
        """Raise one MissingCredential naming every placeholder in ``texts`` that no
        credential fills (so a session missing three names all three at once)."""
        missing: dict[str, str] = {}
        for text in texts:
            if type(text) is bytes:
                if b"${redacted:" not in text:
                    continue
                text = text.decode("utf-8", "replace")
            if "${redacted:" not in text:
                continue
            for m in PLACEHOLDER_RE.finditer(text):  # type: ignore[arg-type]
                if m.group(0) not in missing and self.lookup(*m.groups()) is None:
                    missing[m.group(0)] = _key(m)
        if len(missing) == 1:
            ((marker, name),) = missing.items()
            raise MissingCredential(_missing(marker, name))
        if missing:
            names = sorted(set(missing.values()))
            raise MissingCredential(
                f"the session needs {len(missing)} credentials nobody supplied: "
                f"{', '.join(missing)} (--credential NAME=VALUE for each of "
                f"{', '.join(names)}, or [credentials] in the config file)"
            )

    def _fill(self, text: str, encode: str) -> str:
        if "${redacted:" not in text:
            return text

        def sub(m: re.Match[str]) -> str:
            value = self.lookup(*m.groups())
            if value is None:
                raise MissingCredential(_missing(m.group(0), _key(m)))
            if encode == "json":
                return json.dumps(value, ensure_ascii=False)[1:-1]
            if encode == "query" or (encode == "text" and m.group(1) == "form"):
                return quote(value, safe="")
            return value

        return PLACEHOLDER_RE.sub(sub, text)

    def fill_text(self, text: str) -> str:
        """A header value or subprotocol entry with placeholders filled."""
        return self._fill(text, "raw")

    def fill_query(self, query: str) -> str:
        """A raw query string with placeholders filled (values percent-encoded)."""
        return self._fill(query, "query")

    def fill_json_text(self, text: str) -> str:
        """A text message with placeholders filled (values escaped for a JSON string;
        ``form`` placeholders, from ``name=value`` text, percent-encoded).

        Placeholders inside framed JSON (``42[...]``, SignalR records, STOMP
        bodies, JSON held in strings) are filled in the decoded value, which
        is then encoded back the way it was framed, so a value lands escaped
        as often as its string is nested.
        """
        if "${redacted:" not in text:
            return text
        if "${redacted:form:" in text and text.lstrip()[:1] not in ("{", "["):
            return self._fill(text, "text")
        if text[:1] not in ("{", "[") or '\\"' in text:
            framed = rewrite_json_docs(text, lambda doc: walk_strings(doc, self.fill_text))
            if framed is not None:
                return framed
        return self._fill(text, "json")

    def fill_handshake(self, handshake: Handshake) -> Handshake:
        """The handshake's request side with every placeholder filled."""
        return replace(
            handshake,
            query=self.fill_query(handshake.query),
            request_headers=tuple((k, self.fill_text(v)) for k, v in handshake.request_headers),
            subprotocols=tuple(self.fill_text(p) for p in handshake.subprotocols),
        )

    def fill_messages(self, messages: Iterable[Message]) -> tuple[Message, ...]:
        """Client messages with placeholders filled (binary ones too: redaction puts them
        only in UTF-8 text)."""
        messages = tuple(messages)
        payloads = self.fill_payloads(m.payload for m in messages)
        return tuple(
            m if p is m.payload else replace(m, payload=p)
            for m, p in zip(messages, payloads, strict=True)
        )

    def fill_payloads(self, payloads: Iterable[str | bytes]) -> list[str | bytes]:
        """``fill_messages`` for bare payloads (replay's client steps): the same
        objects back where nothing was filled."""
        fill = self.fill_json_text

        def fill_utf8(data: bytes) -> bytes:
            if b"${redacted:" not in data:
                return data
            try:
                return fill(data.decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                return data

        def fill_password(data: bytes) -> bytes:
            if b"${redacted:" not in data:
                return data
            try:
                return self.fill_text(data.decode("utf-8")).encode("utf-8")
            except UnicodeDecodeError:
                return data

        def fill_bytes(data: bytes) -> bytes:
            # Whole MQTT packets are filled field by field, their lengths encoded again.
            mqtt = rewrite_fields(data, publish=fill_utf8, password=fill_password)
            return fill_utf8(data) if mqtt is None else mqtt

        return [
            fill(p)
            if type(p) is str and "${redacted:" in p
            else fill_bytes(p)
            if type(p) is bytes and b"${redacted:" in p
            else p
            for p in payloads
        ]

    # ---- keeping fresh values out of stored replays ----------------------------

    def _scrub_pairs(self) -> list[tuple[str, str]]:
        """(secret as it may appear, placeholder) pairs, longest secret first."""
        pairs: dict[str, str] = {}
        sources = [*((v, k) for k, v in self.values.items()), *self.env_values.items()]
        for value, key in sources:
            kind, _, name = key.rpartition(":")
            name, _, number = name.partition("#")
            marker = placeholder(
                kind or "credential",
                _NAME_UNSAFE.sub("_", name) or "value",
                int(number) if number.isdigit() else None,
            )
            for form in (value, json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe="")):
                if len(form) >= MIN_SCRUB_LENGTH:
                    pairs.setdefault(form, marker)
        return sorted(pairs.items(), key=lambda p: -len(p[0]))

    def scrub_text(self, text: str) -> str:
        """``text`` with every supplied credential value put back as a placeholder."""
        for secret, marker in self._scrub_pairs():
            if secret in text:
                text = text.replace(secret, marker)
        return text

    def scrub_session(self, session: Session) -> Session:
        """A replayed session with no supplied credential value left in it, anywhere.

        Replay sends fresh credentials; what it stores must hold placeholders
        again, whatever the field is called and even where the target echoes
        a credential back (headers, subprotocols, query, messages, close).
        Values shorter than ``MIN_SCRUB_LENGTH`` are left alone.
        """
        pairs = self._scrub_pairs()
        if not pairs:
            return session

        def text(value: str) -> str:
            for secret, marker in pairs:
                if secret in value:
                    value = value.replace(secret, marker)
            return value

        def raw_data(value: bytes) -> bytes:
            for secret, marker in pairs:
                raw = secret.encode("utf-8")
                if raw in value:
                    value = value.replace(raw, marker.encode("utf-8"))
            return value

        def data(value: bytes) -> bytes:
            # Whole MQTT packets keep lengths that fit: field by field, encoded again.
            mqtt = rewrite_fields(value, publish=raw_data, password=raw_data)
            # Whatever is left (a secret in a topic, say) goes too: no secret is ever stored.
            return raw_data(value if mqtt is None else mqtt)

        h = session.handshake
        handshake = replace(
            h,
            query=text(h.query),
            request_headers=tuple((k, text(v)) for k, v in h.request_headers),
            subprotocols=tuple(text(p) for p in h.subprotocols),
            subprotocol=None if h.subprotocol is None else text(h.subprotocol),
            response_headers=tuple((k, text(v)) for k, v in h.response_headers),
        )
        messages = tuple(
            replace(m, payload=text(m.payload) if isinstance(m.payload, str) else data(m.payload))
            for m in session.messages
        )
        close: Close | None = session.close
        if close is not None:
            close = replace(
                close,
                reason=text(close.reason),
                error=None if close.error is None else text(close.error),
            )
        return replace(session, handshake=handshake, messages=messages, close=close)
