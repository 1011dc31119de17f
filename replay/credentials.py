"""Credentials: fill the placeholders redaction left with fresh values.

Redaction turns a secret into ``${redacted:KIND:NAME}`` (see
``replay.redact``). Replay fills each placeholder from a mapping of
credential names to values, given on the command line or in the config
file; a value may reference environment variables as ``${VAR}``. A key may
be ``NAME`` or the more specific ``KIND:NAME``; names compare
case-insensitively. The environment is passed in, never read here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from replay.errors import BadInput
from replay.model import Handshake, Message
from replay.redact import PLACEHOLDER_RE

__all__ = [
    "Credentials",
    "MissingCredential",
    "expand_env",
    "parse_credential",
]

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


@dataclass(frozen=True)
class Credentials:
    """Credential values by name (``authorization``) or kind and name (``header:authorization``).

    ``broken`` holds the credentials whose ``${VAR}`` could not be expanded,
    with the reason; looking one of them up raises MissingCredential, so an
    unset variable only fails the sessions that need it.
    """

    values: Mapping[str, str] = field(default_factory=dict)
    broken: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, raw: Mapping[str, str], env: Mapping[str, str]) -> Credentials:
        """Credentials with ``${VAR}`` references expanded from ``env``."""
        values: dict[str, str] = {}
        broken: dict[str, str] = {}
        for key, value in raw.items():
            try:
                values[key.lower()] = expand_env(value, env, name=key)
            except MissingCredential as e:
                broken[key.lower()] = str(e)
        return cls(values, broken)

    @property
    def names(self) -> tuple[str, ...]:
        """Every credential name given, expanded or not (never the values)."""
        return tuple(sorted({*self.values, *self.broken}))

    def lookup(self, kind: str, name: str) -> str | None:
        """The value for a placeholder of ``kind`` and ``name``, or None.

        Raises MissingCredential when the credential was given but its
        environment variable is not set.
        """
        name = name.lower()
        for key in (f"{kind}:{name}", name):
            if key in self.values:
                return self.values[key]
            if key in self.broken:
                raise MissingCredential(self.broken[key])
        return None

    def _fill(self, text: str, encode: str) -> str:
        if "${redacted:" not in text:
            return text

        def sub(m: re.Match[str]) -> str:
            value = self.lookup(m.group(1), m.group(2))
            if value is None:
                raise MissingCredential(
                    f"the session needs credential {m.group(0)}, which nobody supplied "
                    f"(--credential {m.group(2)}=VALUE or [credentials] in the config file)"
                )
            if encode == "json":
                return json.dumps(value, ensure_ascii=False)[1:-1]
            if encode == "query":
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
        """A text message with placeholders filled (values escaped for a JSON string)."""
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
        """Client text messages with placeholders filled (binary is left alone)."""
        out = []
        for m in messages:
            if isinstance(m.payload, str) and "${redacted:" in m.payload:
                text = self.fill_json_text(m.payload)
                if text is not m.payload:
                    m = replace(m, payload=text)
            out.append(m)
        return tuple(out)
