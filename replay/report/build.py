"""The JSON report (schema_version 2): building it and its exit code.

``build_report`` assembles the contract of docs/report-schema.md from the
differ's computed parts; ``exit_status`` maps a report to the exit code.
Every rendering (terminal, JSON, JUnit, Markdown, HTML) lives in
``replay.reports`` and works from the report alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from wsshadow.replay.errors import ExitStatus

__all__ = [
    "SCHEMA_VERSION",
    "LatencyHistogram",
    "build_report",
    "exit_status",
]

SCHEMA_VERSION = 2


class LatencyHistogram:
    """Latencies in log-spaced buckets (1% wide): percentiles in constant memory."""

    _BASE = math.log(1.01)

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0

    def add(self, seconds: float) -> None:
        """Count one latency, in seconds."""
        ms = seconds * 1000.0
        b = -1 if ms < 0.001 else int(math.log(ms / 0.001) / self._BASE)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1

    def extend(self, values: Iterable[float]) -> None:
        """Count many latencies."""
        log, base, buckets = math.log, self._BASE, self.buckets
        for b in [-1 if v < 1e-6 else int(log(v * 1e6) / base) for v in values]:
            buckets[b] = buckets.get(b, 0) + 1
            self.count += 1

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (bucket midpoint), None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                if b < 0:
                    return 0.0
                return round(0.001 * math.exp((b + 0.5) * self._BASE), 3)
        return None  # pragma: no cover


def build_report(
    parts: Mapping[str, Any],
    *,
    capture: str,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    noise_runs: list[str],
    generated_at: float,
) -> dict[str, Any]:
    """The JSON report from ``DiffAccumulator.finish()``'s parts and the run names.

    Timing findings (``timing.findings``) make the verdict divergent only
    when ``timing.mode`` is ``gate`` (``[verdict] timing``).
    """
    from wsshadow.replay.version import __version__

    timing = parts.get("timing") or {}
    timing_gates = timing.get("mode") == "gate" and bool(timing.get("findings"))

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "wsshadow", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(generated_at)),
        "capture": capture,
        "verdict": parts.get("verdict")
        or ("divergent" if parts["differences"] or timing_gates else "equivalent"),
        "baseline": dict(baseline),
        "candidate": dict(candidate),
        "noise_runs": list(noise_runs),
        "fidelity": parts.get("fidelity") or {"measured": False},
        "sessions": parts["sessions"],
        "differences": parts["differences"],
        "noise": parts["noise"],
        "timing": parts["timing"],
        "session_details": parts["session_details"],
        "dialects": dict(parts.get("dialects", {})),
    }


_EXIT = {
    "equivalent": ExitStatus.EQUIVALENT,
    "divergent": ExitStatus.DIVERGENT,
    "inconclusive": ExitStatus.INCONCLUSIVE,
}


def exit_status(report: Mapping[str, Any]) -> ExitStatus:
    """The exit code of a report: 0 equivalent, 1 divergent, 3 inconclusive."""
    return _EXIT.get(report["verdict"], ExitStatus.DIVERGENT)
