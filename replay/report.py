"""The JSON report (schema_version 1) and what is derived from it alone.

``build_report`` assembles the contract of docs/report-schema.md from the
differ's computed parts; ``exit_status`` maps a report to the exit code;
``render_text`` is the plain terminal summary; ``RENDERERS`` maps a format
name to a function report -> text, so other renderers (JUnit, Markdown,
HTML) register here and ``write_report`` picks one by file extension.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from replay.errors import BadInput, ExitStatus

__all__ = [
    "RENDERERS",
    "SCHEMA_VERSION",
    "LatencyHistogram",
    "build_report",
    "exit_status",
    "format_for_path",
    "render_json",
    "render_text",
    "write_report",
]

SCHEMA_VERSION = 1


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
    """The JSON report from ``DiffAccumulator.finish()``'s parts and the run names."""
    from replay import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "wsshadow", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(generated_at)),
        "capture": capture,
        "verdict": "divergent" if parts["differences"] else "equivalent",
        "baseline": dict(baseline),
        "candidate": dict(candidate),
        "noise_runs": list(noise_runs),
        "sessions": parts["sessions"],
        "differences": parts["differences"],
        "noise": parts["noise"],
        "timing": parts["timing"],
        "session_details": parts["session_details"],
    }


def exit_status(report: Mapping[str, Any]) -> ExitStatus:
    """0 for an equivalent report, 1 for a divergent one."""
    return ExitStatus.EQUIVALENT if report["verdict"] == "equivalent" else ExitStatus.DIVERGENT


def render_json(report: Mapping[str, Any]) -> str:
    """The report as JSON text."""
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(report: Mapping[str, Any]) -> str:
    """A plain summary: verdict, counts, one line per group, the noise count."""
    s = report["sessions"]
    b, c = report["baseline"], report["candidate"]
    lines = [
        f"verdict: {report['verdict']}",
        f"baseline {b['run']} vs candidate {c['run']}"
        + (f" (noise runs: {', '.join(report['noise_runs'])})" if report["noise_runs"] else ""),
        f"sessions: {s['total']} total, {s['equivalent']} equivalent, "
        f"{s['divergent']} divergent, {s['errored']} errored",
    ]
    diffs = report["differences"]
    if diffs:
        lines.append("")
        width = max(len(d["signature"]) for d in diffs)
        lines.append(f"{'sessions':>8}  {'signature':<{width}}  example (expected -> actual)")
        for d in diffs:
            ex = d["examples"][0] if d["examples"] else None
            example = (
                f"{_short(ex['expected'])} -> {_short(ex['actual'])}" if ex is not None else ""
            )
            lines.append(f"{d['count']:>8}  {d['signature']:<{width}}  {example}")
    noise = report["noise"]
    lines.append("")
    lines.append(
        f"noise: {len(noise)} signatures suppressed"
        + (f" ({sum(n['occurrences'] for n in noise)} findings)" if noise else "")
    )
    for n in noise[:10]:
        lines.append(f"  {n['count']:>6}  {n['signature']}  ({n['reason']})")
    if len(noise) > 10:
        lines.append(f"  ... and {len(noise) - 10} more")
    t = report["timing"]
    if t.get("baseline_p50_ms") is not None:
        lines.append(
            f"latency p50 {t['baseline_p50_ms']} -> {t['candidate_p50_ms']} ms, "
            f"p95 {t['baseline_p95_ms']} -> {t['candidate_p95_ms']} ms"
        )
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "json": render_json,
    "text": render_text,
}
"""Format name -> renderer; other report formats register themselves here."""

_EXTENSIONS = {".json": "json", ".txt": "text", ".xml": "junit", ".md": "markdown",
               ".html": "html", ".htm": "html"}  # fmt: skip


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The report format a file name asks for (by extension); raises BadInput."""
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None or fmt not in RENDERERS:
        known = ", ".join(sorted(e for e, f in _EXTENSIONS.items() if f in RENDERERS))
        raise BadInput(f"{path}: no report format for this file name (known: {known})")
    return fmt


def write_report(report: Mapping[str, Any], path: str | os.PathLike[str],
                 fmt: str | None = None) -> None:  # fmt: skip
    """Render ``report`` in ``fmt`` (default: by extension) to ``path``, atomically."""
    fmt = fmt or format_for_path(path)
    if fmt not in RENDERERS:
        raise BadInput(f"unknown report format {fmt!r} (known: {', '.join(sorted(RENDERERS))})")
    text = RENDERERS[fmt](report)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"{path}: cannot write ({e.strerror})") from None
