"""Alignment-free field checks (pure): values the candidate produces that no baseline run does.

Positional comparison pairs messages by alignment; when a server answers
concurrent requests in completion order, every field of a mispaired reply
"varies between baseline runs", is learned as noise, and a constant that
changed in every reply hides behind it. These checks ignore alignment: for
each (route, event, field path) they compare the set of normalized values
(masks applied; a missing field counts as the value ``<absent>``) that the
candidate produced with those of the baseline and noise runs, across all
sessions.

Which fields: every (route, event, path) that some comparison (baseline vs
a noise run, or baseline vs candidate) found different, from that session
on; a field no comparison ever found different is equal wherever the two
were paired, so there is nothing to check. At most ``MAX_FIELDS`` per route.
Every session of a route is read up to ``EXACT`` sessions, then one in
``STRIDE`` (a sample: the test keeps its meaning, with less power).

The statistical rule: each session run contributes each distinct value
once. Under the hypothesis that the candidate draws from the baseline's
distribution, the chance that one of its observations is a value the
baseline never produced is the baseline's unseen mass, estimated by Good
and Turing's rule as (N1 + 1) / (N + 1), where N is the number of baseline
observations and N1 the number of values seen exactly once (the + 1 keeps a
new value possible for a field that never varied). A field is a difference
when the number k of candidate observations with never-seen values is
improbable under that rate: the binomial tail P(X >= k) for n candidate
observations is below ``[diff.noise] significance`` (default 0.01). The
same test runs the other way (values the baseline produced and the
candidate never does). And as for positional noise, what also happens
between two baseline runs is noise: when the same test, run between the
baseline run and the noise runs, finds a difference (a value fixed per run
but different in every run), the field is not reported. Volatile fields (ids, clocks) are mostly singletons,
so their unseen mass is near 1 and they never become findings; a field with
more than ``MAX_DISTINCT`` distinct values on either side is volatile by
definition and not tested (once both sides are, it is no longer read). Memory: per field, at most ``MAX_DISTINCT``
values per side with their counts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from wsshadow.replay.diff.normalize import Normalized

__all__ = [
    "ABSENT",
    "MAX_DISTINCT",
    "MAX_FIELDS",
    "FieldDistributions",
    "FieldFinding",
    "binomial_tail",
]

ABSENT = b"<absent>"
"""The value of a field a message does not have."""
MAX_DISTINCT = 256
MAX_FIELDS = 200
MAX_SESSIONS = 20
MAX_KEY = 256
"""Values longer than this (as JSON) are counted by digest and shown cut."""
EXACT = 200
STRIDE = 4

_MISSING = object()

Mask = Callable[[Any], Any]


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    lg = math.lgamma
    for i in range(k, n + 1):
        term = math.exp(lg(n + 1) - lg(i + 1) - lg(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if i > n * p and term < total * 1e-17:
            break
    return min(1.0, total)


@dataclass(slots=True)
class _Side:
    counts: dict[str | bytes, int] = field(default_factory=dict)
    shown: dict[str | bytes, Any] = field(default_factory=dict)
    sessions: dict[str | bytes, list[str]] = field(default_factory=dict)
    observations: int = 0
    overflow: bool = False

    def add(self, key: str | bytes, value: Any, session: str | None) -> None:
        self.observations += 1
        if self.overflow:
            return
        n = self.counts.get(key)
        if n is None:
            if len(self.counts) >= MAX_DISTINCT:
                self.overflow = True
                self.counts.clear()
                self.shown.clear()
                self.sessions.clear()
                return
            self.counts[key] = 1
            self.shown[key] = _small(value)
        else:
            self.counts[key] = n + 1
        if session is not None:
            listed = self.sessions.setdefault(key, [])
            if len(listed) < MAX_SESSIONS:
                listed.append(session)

    def unseen_mass(self) -> float:
        singletons = sum(1 for n in self.counts.values() if n == 1)
        return (singletons + 1) / (self.observations + 1)


@dataclass(frozen=True, slots=True)
class FieldFinding:
    """A field whose candidate values no baseline run explains (or the other way)."""

    route: str
    event: str | None
    path: str
    expected: Any
    actual: Any
    sessions: tuple[str, ...]
    count: int
    p_value: float
    reason: str


def _value_at(value: Any, parts: tuple[str, ...]) -> Any:
    for p in parts:
        if isinstance(value, dict):
            value = value.get(p, _MISSING)
        elif isinstance(value, list) and p.isdigit() and int(p) < len(value):
            value = value[int(p)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _key(value: Any) -> bytes:
    try:
        key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers past 64 bits and the like
        key = repr(value).encode()
    # Memory stays flat whatever the payloads: a big value is kept as its digest.
    return key if len(key) <= MAX_KEY else b"<sha256 " + hashlib.sha256(key).digest() + b">"


class FieldDistributions:
    """Per (route, event, path): baseline and candidate value counts across sessions."""

    def __init__(self, significance: float = 0.01) -> None:
        self.significance = significance
        self.tracked: dict[str, dict[str | None, dict[str, tuple[str, ...]]]] = {}
        self.seen: dict[str, int] = {}
        self.fields: dict[tuple[str, str | None, str], tuple[_Side, _Side, _Side, _Side]] = {}
        """Per field: every baseline run pooled, the candidate, the first baseline run,
        the noise runs pooled."""

    def track(self, route: str, fields: Iterable[tuple[str | None, str]]) -> None:
        """Start watching these (event, path) fields of ``route``."""
        by_event = self.tracked.setdefault(route, {})
        size = sum(len(paths) for paths in by_event.values())
        for event, path in fields:
            paths = by_event.setdefault(event, {})
            if path in paths or size >= MAX_FIELDS:
                continue
            paths[path] = tuple(path.split("."))
            self.fields[route, event, path] = (_Side(), _Side(), _Side(), _Side())
            size += 1

    def _values(
        self, route: str, stream: Iterable[Normalized], mask: Mask | None
    ) -> dict[tuple[str | None, str, str | bytes], Any]:
        by_event = self.tracked.get(route)
        out: dict[tuple[str | None, str, str | bytes], Any] = {}
        if not by_event:
            return out
        for n in stream:
            paths = by_event.get(n.event)
            if not paths or n.format != "json":
                continue
            value = n.value
            for path, parts in paths.items():
                if len(parts) == 1 and type(value) is dict:
                    v = value.get(parts[0], _MISSING)
                else:
                    v = _value_at(value, parts)
                if v is _MISSING:
                    out.setdefault((n.event, path, ABSENT), "<absent>")
                    continue
                if mask is not None:
                    v = mask(v)
                # strings (the common case) are their own key; other values their JSON
                short = type(v) is str and len(v) <= MAX_KEY
                out.setdefault((n.event, path, v if short else _key(v)), v)
        return out

    def add_session(
        self,
        session: str,
        route: str,
        baselines: Iterable[tuple[Iterable[Normalized], Mask | None]],
        candidate: tuple[Iterable[Normalized], Mask | None],
    ) -> None:
        """Count one session's values: each baseline run's and the candidate's, once per run."""
        if route not in self.tracked:
            return
        n = self.seen.get(route, 0)
        self.seen[route] = n + 1
        if n >= EXACT and n % STRIDE:
            return
        for i, (stream, mask) in enumerate(baselines):
            found = self._values(route, stream, mask)
            for (event, path, key), value in found.items():
                sides = self.fields[route, event, path]
                sides[0].add(key, value, None)
                sides[2 if i == 0 else 3].add(key, value, None)
        stream, mask = candidate
        found = self._values(route, stream, mask)
        for (event, path, key), value in found.items():
            self.fields[route, event, path][1].add(key, value, session)
        self._retire(route)

    def _retire(self, route: str) -> None:
        """Stop extracting fields found volatile on both sides: their verdict cannot change."""
        by_event = self.tracked[route]
        for event, paths in by_event.items():
            for path in [p for p in paths if self._overflowed(route, event, p)]:
                del paths[path]

    def _overflowed(self, route: str, event: str | None, path: str) -> bool:
        base, cand, _, _ = self.fields[route, event, path]
        return base.overflow and cand.overflow

    def volatile(self, route: str, event: str | None, path: str) -> bool:
        """True for a watched field whose baseline values are mostly seen once (ids, clocks)."""
        sides = self.fields.get((route, event, path))
        if sides is None:
            return False
        base = sides[0]
        return base.overflow or (base.observations > 0 and base.unseen_mass() > 0.5)

    def findings(self) -> list[FieldFinding]:
        """Fields whose candidate values the baseline's distribution does not explain."""
        out = []
        for (route, event, path), (base, cand, first, again) in self.fields.items():
            if base.overflow or cand.overflow or not base.observations or not cand.observations:
                continue
            if again.observations and min(_tests(first, again)[:2]) < self.significance:
                continue  # differs between baseline runs too: noise
            p_new, p_gone, novel, gone, k_new, k_gone = _tests(base, cand)
            if min(p_new, p_gone) >= self.significance:
                continue
            actual_key = max(novel, key=lambda k: cand.counts[k]) if novel else None
            expected_pool = gone or list(base.counts)
            expected_key = max(expected_pool, key=lambda k: base.counts[k])
            sessions: list[str] = []
            for k in novel or list(cand.counts):
                for s in cand.sessions.get(k, ()):
                    if s not in sessions:
                        sessions.append(s)
            if p_new < self.significance and actual_key is not None:
                reason = (
                    f"the candidate produced {_show(cand.shown[actual_key])} "
                    f"in {k_new:,} of {cand.observations:,} observations; "
                    f"no baseline run ever did (p = {p_new:.2g})"
                )
            else:
                reason = (
                    f"every baseline run produced {_show(base.shown[expected_key])} "
                    f"({k_gone:,} of {base.observations:,} observations); "
                    f"the candidate never did (p = {p_gone:.2g})"
                )
            out.append(
                FieldFinding(
                    route,
                    event,
                    path,
                    base.shown[expected_key],
                    cand.shown[actual_key] if actual_key is not None else None,
                    tuple(sessions),
                    k_new if novel else cand.observations,
                    min(p_new, p_gone),
                    reason,
                )
            )
        return out


def _tests(
    base: _Side, cand: _Side
) -> tuple[float, float, list[str | bytes], list[str | bytes], int, int]:
    """Both tails: (p new in cand, p gone from cand, new values, gone values, their counts)."""
    if base.overflow or cand.overflow:
        return 1.0, 1.0, [], [], 0, 0
    novel = [k for k in cand.counts if k not in base.counts]
    gone = [k for k in base.counts if k not in cand.counts]
    k_new = sum(cand.counts[k] for k in novel)
    k_gone = sum(base.counts[k] for k in gone)
    p_new = binomial_tail(k_new, cand.observations, base.unseen_mass())
    p_gone = binomial_tail(k_gone, base.observations, cand.unseen_mass())
    return p_new, p_gone, novel, gone, k_new, k_gone


def _small(value: Any) -> Any:
    """``value``, or the start of its JSON when it is big (for examples only)."""
    if isinstance(value, str):
        return value if len(value) <= MAX_KEY else value[:MAX_KEY] + "…"
    if isinstance(value, dict | list):
        text = orjson.dumps(value, default=str).decode()
        return value if len(text) <= MAX_KEY else text[:MAX_KEY] + "…"
    return value


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:59] + "…"
