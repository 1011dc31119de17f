"""Numbered placeholders: each distinct redacted value gets a number, so that the
distinct users of a recording stay distinct on replay.

Redaction writes ``${redacted:header:authorization#2}``: ``#2`` is the second
distinct secret value that redactor replaced, and the same value gets the
same number wherever it appears (a header, a query parameter, a
subprotocol entry, a JSON field, a close reason, an MQTT password). Replay
fills ``authorization#2`` with the second test user's credential
(``replay.engine.credentials``).

Only a salted SHA-256 digest of each value is kept, in memory, for the
redactor's lifetime; neither the value nor its digest is ever written
(a digest of a short password could be brute-forced). A capture holds
numbers only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import unquote

__all__ = [
    "NUMBERED_RE",
    "PLACEHOLDER_RE",
    "SecretNumbers",
    "credential_names",
    "highest_number",
    "secret_core",
]

PLACEHOLDER_RE = re.compile(r"\$\{redacted:([a-z]+):([A-Za-z0-9_.\-]+)(?:#([0-9]+))?\}")
"""Matches a placeholder; group 1 is the kind, group 2 the credential name, group 3 its
number (None in placeholders written before values were numbered)."""

NUMBERED_RE = re.compile(r"\$\{redacted:[a-z]+:[A-Za-z0-9_.\-]+#([0-9]+)\}")
"""Matches a numbered placeholder; group 1 is its number."""

# An Authorization header's value is a scheme and a credential (``Bearer abc``): the
# number follows the credential, so a user's header and query token share it.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*\s+(?=\S)")


def secret_core(kind: str, name: str, value: str) -> str:
    """What identifies a secret value across places: an authorization header's credential
    without its scheme, a form value percent-decoded (the redactor decodes a query
    parameter's), anything else as it is."""
    if kind == "header" and name in ("authorization", "proxy-authorization"):
        return _SCHEME.sub("", value.strip(), count=1)
    if kind == "form":
        return unquote(value)
    return value


def _with_placeholders(texts: Iterable[str | bytes | None]) -> Iterator[str]:
    for text in texts:
        if not text:
            continue
        if isinstance(text, bytes):
            if b"${redacted:" in text:
                yield text.decode("utf-8", "replace")
        elif "${redacted:" in text:
            yield text


def highest_number(texts: Iterable[str | bytes | None]) -> int:
    """The highest placeholder number in ``texts`` (0 when none is numbered)."""
    high = 0
    for text in _with_placeholders(texts):
        if "#" in text:
            for m in NUMBERED_RE.finditer(text):
                high = max(high, int(m.group(1)))
    return high


def credential_names(texts: Iterable[str | bytes | None]) -> set[str]:
    """The credential names the placeholders in ``texts`` ask for, as ``--credential``
    takes them: ``authorization#2`` for a numbered placeholder, ``authorization`` for one
    of an older capture."""
    names: set[str] = set()
    for text in _with_placeholders(texts):
        for m in PLACEHOLDER_RE.finditer(text):
            names.add(m.group(2) if m.group(3) is None else f"{m.group(2)}#{m.group(3)}")
    return names


class SecretNumbers:
    """One number per distinct secret value, stable for this object's lifetime.

    Numbers start above every floor given to ``start_above``; a floor may be a
    callable (a capture's highest number, read only when a first new value
    needs a number). Thread-safe: a recorder may redact on several threads.

    At most ``limit`` values are remembered (about 200 bytes each), the least
    recently seen forgotten first, so a proxy that records for days through
    rotating tokens keeps flat memory. A forgotten value that comes back gets
    a new number: one user may then count as two, never two users as one.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._salt = secrets.token_bytes(16)
        self._numbers: OrderedDict[bytes, int] = OrderedDict()
        self._limit = max(1, limit)
        self._high = 0
        self._floors: list[Callable[[], int]] = []
        self._lock = threading.Lock()

    def number(self, value: str | bytes) -> int:
        """The number of ``value`` (a new one, above every floor, for a value not seen)."""
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        digest = hashlib.sha256(self._salt + raw).digest()
        with self._lock:
            found = self._numbers.get(digest)
            if found is not None:
                self._numbers.move_to_end(digest)
                return found
            while self._floors:
                self._high = max(self._high, self._floors.pop()())
            self._high += 1
            self._numbers[digest] = self._high
            if len(self._numbers) > self._limit:
                self._numbers.popitem(last=False)
            return self._high

    def start_above(self, floor: int | Callable[[], int]) -> None:
        """New numbers will be above ``floor`` (values numbered already keep theirs)."""
        with self._lock:
            if callable(floor):
                self._floors.append(floor)
            else:
                self._high = max(self._high, floor)
