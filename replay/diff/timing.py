"""Timing findings from latency distributions, not from single examples (pure).

Every server message's latency (seconds from the client message that
triggered it) is a sample for its (route, event key), kept per side:
baseline, candidate and the noise runs (more baseline replays). Samples
are kept in capped reservoirs, so memory stays flat however large the
capture.

A (route, event) gets a timing finding only when all of these hold:

1. both sides have at least ``min_samples`` samples;
2. the candidate is slower than the baseline with statistical
   significance: a one-sided Mann-Whitney U test (normal approximation,
   tie correction, continuity correction) gives ``p < significance``;
3. the effect passes the thresholds on the *medians*:
   ``candidate > ratio x baseline`` and ``candidate - baseline >= floor_ms``;
4. the candidate's shift is clearly more than the noise runs' own shift
   from the baseline for the same event: more than ``noise_margin`` times
   ``|median(noise) - median(baseline)|``;
5. the slowdown holds across sessions, not in one: the median over
   sessions of each session's median latency passes the same ``ratio`` and
   ``floor_ms`` (one session that streams many slow messages moves the
   pooled median, not this one).

A few slow sessions (a cold cache, a scheduler hiccup) move neither the
medians nor the per-session medians, so they never make a finding.
"""

from __future__ import annotations

import math
import random
import statistics
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from wsshadow.replay.config import TimingConfig

__all__ = [
    "MAX_SAMPLES",
    "MAX_TRACKED",
    "METHOD",
    "LatencySamples",
    "Reservoir",
    "mann_whitney_greater",
    "quantile",
]

MAX_SAMPLES = 2000
"""Samples kept per (route, event, side); past this a uniform reservoir sample."""
MAX_TRACKED = 1000
"""(route, event) pairs measured; later ones are counted in ``events_untracked`` only.

With 8-byte samples that bounds the memory at 1000 x 5 x 2000 x 8 bytes (80 MB)
for a capture with absurdly many event keys, and a few hundred KB for a usual one.
"""
MAX_EVENTS = 200
"""Events listed in the report's per-event table (findings always are)."""
METHOD = "mann-whitney-u"
"""The significance test, as the report names it."""


class Reservoir:
    """Up to ``cap`` floats: every value until full, then a uniform sample (Algorithm R).

    Seeded, so the same capture gives the same report.
    """

    __slots__ = ("cap", "rng", "seen", "values")

    def __init__(self, cap: int = MAX_SAMPLES, seed: int = 0) -> None:
        self.cap = cap
        self.values = array("d")
        self.seen = 0
        self.rng = random.Random(seed)

    def add(self, value: float) -> None:
        """Offer one value."""
        self.seen += 1
        if len(self.values) < self.cap:
            self.values.append(value)
            return
        j = self.rng.randrange(self.seen)
        if j < self.cap:
            self.values[j] = value

    def extend(self, values: Iterable[float]) -> None:
        """Offer many values."""
        for v in values:
            self.add(v)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, linear between ranks."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no values")
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def mann_whitney_greater(base: Sequence[float], cand: Sequence[float]) -> tuple[float, float]:
    """One-sided Mann-Whitney U: is ``cand`` stochastically greater than ``base``?

    Returns ``(U, p)`` with U the candidate's statistic (the number of
    (base, cand) pairs where the candidate is larger, ties counting half)
    and p from the normal approximation with tie and continuity
    corrections. p is 1.0 when either side is empty or every value ties.
    """
    n1, n2 = len(base), len(cand)
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    tagged = sorted([(v, 0) for v in base] + [(v, 1) for v in cand])
    n = n1 + n2
    rank_sum_cand = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and tagged[j + 1][0] == tagged[i][0]:
            j += 1
        avg_rank = (i + j) / 2.0 + 1.0  # ranks i+1 .. j+1
        t = j - i + 1
        if t > 1:
            tie_term += t**3 - t
        rank_sum_cand += avg_rank * sum(1 for k in range(i, j + 1) if tagged[k][1] == 1)
        i = j + 1
    u = rank_sum_cand - n2 * (n2 + 1) / 2.0
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u, 1.0
    z = (u - mean - 0.5) / math.sqrt(var)
    return u, 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(slots=True)
class _Event:
    base: Reservoir
    cand: Reservoir
    noise: Reservoir
    base_sessions: Reservoir
    cand_sessions: Reservoir


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class LatencySamples:
    """Latency samples per (route, event key) and side, in capped reservoirs."""

    def __init__(self, cap: int = MAX_SAMPLES) -> None:
        self.cap = cap
        self.events: dict[tuple[str, str], _Event] = {}
        self.untracked: set[tuple[str, str]] = set()

    def _event(self, route: str, event: str) -> _Event | None:
        e = self.events.get((route, event))
        if e is None:
            if len(self.events) >= MAX_TRACKED:
                if len(self.untracked) < MAX_TRACKED:
                    self.untracked.add((route, event))
                return None
            seed = 5 * len(self.events)
            e = self.events[route, event] = _Event(
                *(Reservoir(self.cap, seed + i) for i in range(5))
            )
        return e

    def add(
        self,
        route: str,
        base: dict[str, list[float]],
        cand: dict[str, list[float]],
        noise: Iterable[dict[str, list[float]]] = (),
    ) -> None:
        """One recorded session's latencies (seconds) by event key, per side."""
        for event, values in base.items():
            e = self._event(route, event)
            if e is not None and values:
                e.base.extend(values)
                e.base_sessions.add(statistics.median(values))
        for event, values in cand.items():
            e = self._event(route, event)
            if e is not None and values:
                e.cand.extend(values)
                e.cand_sessions.add(statistics.median(values))
        for by_event in noise:
            for event, values in by_event.items():
                e = self._event(route, event)
                if e is not None:
                    e.noise.extend(values)

    def summary(self, config: TimingConfig, mode: str) -> dict[str, Any]:
        """The report's timing findings and per-event table under ``config``.

        Keys: ``mode``, ``method``, thresholds, ``findings`` (the events that
        pass every test) and ``events`` (up to MAX_EVENTS rows, findings
        first, then by how much slower the candidate's median is).
        """
        rows: list[dict[str, Any]] = []
        for (route, event), e in self.events.items():
            row = self._row(route, event, e, config)
            if row is not None:
                rows.append(row)
        rows.sort(key=lambda r: (not r["finding"], -(r["delta_ms"] or 0.0), r["signature"]))
        findings = [r for r in rows if r["finding"]]
        return {
            "mode": mode,
            "method": METHOD,
            "significance": config.significance,
            "min_samples": config.min_samples,
            "ratio": config.ratio,
            "floor_ms": config.floor_ms,
            "noise_margin": config.noise_margin,
            "findings": findings,
            "events": rows[: max(MAX_EVENTS, len(findings))],
            "events_truncated": len(rows) > max(MAX_EVENTS, len(findings)),
            "events_untracked": len(self.untracked),
        }

    @staticmethod
    def _row(route: str, event: str, e: _Event, config: TimingConfig) -> dict[str, Any] | None:
        base, cand, noise = sorted(e.base.values), sorted(e.cand.values), sorted(e.noise.values)
        if not base or not cand:
            return None
        mb, mc = quantile(base, 0.5), quantile(cand, 0.5)
        mn = quantile(noise, 0.5) if noise else None
        _, p = mann_whitney_greater(base, cand)
        delta = mc - mb
        noise_delta = abs(mn - mb) if mn is not None else None
        reasons = []
        if len(base) < config.min_samples or len(cand) < config.min_samples:
            reasons.append(f"fewer than {config.min_samples} samples")
        if p >= config.significance:
            reasons.append(f"not significant (p >= {config.significance:g})")
        if not (mc > config.ratio * mb and delta * 1000.0 >= config.floor_ms):
            reasons.append(f"median not {config.ratio:g}x and {config.floor_ms:g} ms slower")
        if noise_delta is not None and not delta > config.noise_margin * noise_delta:
            reasons.append("within the noise runs' own shift")
        sb, sc = (
            statistics.median(e.base_sessions.values),
            statistics.median(e.cand_sessions.values),
        )
        if not (sc > config.ratio * sb and (sc - sb) * 1000.0 >= config.floor_ms):
            reasons.append("not slower across sessions (the per-session medians do not move)")
        return {
            "signature": f"timing {route} {event}",
            "route": route,
            "event": event,
            "baseline": {"median_ms": _ms(mb), "p95_ms": _ms(quantile(base, 0.95)),
                         "samples": e.base.seen, "sessions": e.base_sessions.seen,
                         "session_median_ms": _ms(sb)},
            "candidate": {"median_ms": _ms(mc), "p95_ms": _ms(quantile(cand, 0.95)),
                          "samples": e.cand.seen, "sessions": e.cand_sessions.seen,
                          "session_median_ms": _ms(sc)},
            "noise": (
                {"median_ms": _ms(mn), "p95_ms": _ms(quantile(noise, 0.95)),
                 "samples": e.noise.seen} if mn is not None else None
            ),
            "delta_ms": _ms(delta),
            "p_value": float(f"{p:.3g}"),
            "significant": p < config.significance,
            "finding": not reasons,
            "why_not": reasons,
            "plot": {"baseline": _bins(base), "candidate": _bins(cand)} if not reasons else None,
        }  # fmt: skip


def _bins(sorted_values: Sequence[float], points: int = 21) -> list[float]:
    """Quantiles 0, 5%, ..., 100% in ms: enough to draw a distribution."""
    return [_ms(quantile(sorted_values, i / (points - 1))) for i in range(points)]
