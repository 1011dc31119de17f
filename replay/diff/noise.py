"""Noise cancellation (pure): what differs between baseline runs is not a regression.

Per session, every signature found between the baseline and another
baseline run (a *noise run*) is noise for that session, and events whose
position varied are aligned unordered. Across sessions, a signature that
was ever seen in the noise is reported only when its candidate rate is
clearly above its noise rate: beyond Diffy's relative and absolute
thresholds *and* beyond what chance explains (a one-sided Fisher exact
test of the candidate count against the noise count inflated by those
thresholds), so a race that flips in about half the sessions of every run
is never reported, whatever the sample size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from math import comb

from wsshadow.replay.config import NoiseConfig
from wsshadow.replay.diff.compare import Finding

__all__ = ["NoiseModel", "SessionNoise", "clearly_above", "fisher_greater", "session_noise"]


def fisher_greater(a: int, n1: int, b: int, n2: int) -> float:
    """One-sided Fisher exact test: p that ``a`` of ``n1`` is this far above ``b`` of ``n2``.

    The probability, with the margins fixed, of seeing at least ``a``
    successes in the first group under the hypothesis that both groups
    share one rate. Exact integer arithmetic (``math.comb``).
    """
    if not (0 <= a <= n1 and 0 <= b <= n2):
        raise ValueError("counts must lie between 0 and their totals")
    total_n, successes = n1 + n2, a + b
    failures = total_n - successes
    hi = min(successes, n1)
    x = max(a, n1 - failures)
    if x > hi:
        return 0.0
    term = comb(successes, x) * comb(failures, n1 - x)
    tail = 0
    mode = (n1 + 1) * (successes + 1) // (total_n + 2)
    while True:
        tail += term
        if x >= hi:
            break
        # Exact: term(x+1) = term(x) * (K-x)(n1-x) / ((x+1)(F-n1+x+1)), always an integer.
        term = term * (successes - x) * (n1 - x) // ((x + 1) * (failures - n1 + x + 1))
        x += 1
        if x > mode and term * 10**18 < tail:
            break  # the rest of the tail cannot change a float
    return min(1.0, tail / comb(total_n, n1))


def clearly_above(
    candidate: int, candidate_total: int, noise: int, noise_total: int, config: NoiseConfig
) -> bool:
    """True when a candidate rate is beyond the noise rate by every test in ``config``."""
    if candidate_total == 0:
        return False
    rc = candidate / candidate_total
    rn = noise / noise_total if noise_total else 0.0
    if rc <= rn * (1 + config.relative) or rc - rn <= config.absolute:
        return False
    if noise_total == 0:
        return True
    # The null hypothesis is "within the thresholds of the noise", not "equal to it": the
    # test compares against the noise count inflated by both thresholds, so chance alone
    # must carry the candidate past the margins, which it does not for a 50% race.
    margin = noise * (1 + config.relative) + config.absolute * noise_total
    inflated = min(noise_total, math.ceil(margin))
    return fisher_greater(candidate, candidate_total, inflated, noise_total) < config.significance


@dataclass(slots=True)
class SessionNoise:
    """What varied between the baseline runs of one session."""

    signatures: set[str] = field(default_factory=set)
    unordered: set[str] = field(default_factory=set)
    runs: int = 0


def session_noise(route: str, comparisons: Iterable[list[Finding]]) -> SessionNoise:
    """Learn one session's noise from the findings of baseline-vs-noise-run comparisons."""
    noise = SessionNoise()
    for findings in comparisons:
        noise.runs += 1
        for f in findings:
            if f.whole_text:
                continue  # only a text's volatile tokens can be noise, never all of it
            noise.signatures.add(f.signature(route))
            if f.kind in ("reordered", "missing_event", "extra_event") and f.event is not None:
                noise.unordered.add(f.event)
    return noise


class NoiseModel:
    """Across sessions: how often each signature appeared in the noise and against the candidate.

    Memory grows with the number of distinct signatures, not of sessions.
    """

    def __init__(self, config: NoiseConfig) -> None:
        self.config = config
        self.noise_sessions: dict[str, int] = {}
        self.candidate_sessions: dict[str, int] = {}
        self.sessions_with_noise = 0
        self.sessions_compared = 0

    def add(self, noise: SessionNoise | None, candidate_signatures: Iterable[str]) -> None:
        """Count one compared session: its noise (if it had noise runs) and candidate findings."""
        self.sessions_compared += 1
        for sig in set(candidate_signatures):
            self.candidate_sessions[sig] = self.candidate_sessions.get(sig, 0) + 1
        if noise is not None and noise.runs:
            self.sessions_with_noise += 1
            for sig in noise.signatures:
                self.noise_sessions[sig] = self.noise_sessions.get(sig, 0) + 1

    def is_noise(self, sig: str) -> bool:
        """True when ``sig`` is seen in the noise and its candidate rate is not clearly above."""
        seen = self.noise_sessions.get(sig, 0)
        if seen == 0:
            return False
        return not clearly_above(
            self.candidate_sessions.get(sig, 0),
            self.sessions_compared,
            seen,
            self.sessions_with_noise,
            self.config,
        )
