"""Helpers every renderer shares: safe text, JSON views with field paths, examples.

Pure functions over the report dict; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Example",
    "JsonLine",
    "clean_text",
    "compact",
    "count_word",
    "details_by_session",
    "dialects_text",
    "example_for",
    "fidelity_reasons",
    "is_marked",
    "p_text",
    "path_tokens",
    "pretty_lines",
    "share",
    "side_stats",
    "side_value",
    "sorted_groups",
    "timing_events",
    "timing_finding_text",
    "timing_findings",
    "timing_gates",
    "timing_headline",
    "timing_method",
    "truncate",
]

# Characters that must never reach a terminal, an XML file or a PR comment raw:
# C0/C1 controls, bidi overrides (Trojan Source), line/paragraph separators,
# lone surrogates and non-characters.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2028\u2029"
    "\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff]"
)


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean_text(text: str, *, keep_newlines: bool = False) -> str:
    """Text with control, bidi and invalid characters shown as ``\\xNN`` / ``\\uNNNN`` escapes.

    Tabs are kept; newlines and carriage returns are escaped unless ``keep_newlines``.
    """
    text = _UNSAFE.sub(_escape_char, text)
    if not keep_newlines:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def compact(value: Any, limit: int | None = None) -> str:
    """A one-line, safe view of a JSON value (``None`` shows as ``(absent)``)."""
    if value is None:
        return "(absent)"
    text = clean_text(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))
    return truncate(text, limit) if limit else text


def count_word(n: int, word: str, plural: str | None = None) -> str:
    """``1 session`` / ``2 sessions``."""
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def share(count: int, total: int) -> str:
    """A percentage with one decimal (``-`` when there is no total)."""
    return "-" if total <= 0 else f"{100.0 * count / total:.1f}%"


def sorted_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Difference or noise groups, most sessions first, then by signature (stable)."""
    return sorted(
        groups,
        key=lambda g: (
            -int(g.get("count") or 0),
            -int(g.get("occurrences") or 0),
            str(g.get("signature")),
        ),
    )


def fidelity_reasons(report: dict[str, Any]) -> list[str]:
    """Why the evidence falls short of equivalence (``fidelity.reasons``; none in version 1)."""
    f = report.get("fidelity")
    if not isinstance(f, dict):
        return []
    return [str(r) for r in f.get("reasons") or [] if isinstance(r, str)]


def details_by_session(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``session_details`` keyed by recorded session id."""
    return {d["session"]: d for d in report.get("session_details") or [] if "session" in d}


_TOKEN = re.compile(r"[^.\[\]]+")


def path_tokens(path: str | None) -> tuple[str, ...]:
    """``data.items[0].name`` -> ``("data", "items", "0", "name")``; ``None`` -> ``()``."""
    return tuple(_TOKEN.findall(path or ""))


def is_marked(path: tuple[str, ...], fields: list[tuple[str, ...]]) -> bool:
    """True when ``path`` is one of the differing fields or inside one."""
    return any(path[: len(f)] == f for f in fields)


@dataclass(frozen=True)
class JsonLine:
    """One line of a pretty-printed JSON value and the field path it shows."""

    text: str
    path: tuple[str, ...]


def pretty_lines(value: Any, indent: int = 2) -> list[JsonLine]:
    """``value`` pretty-printed as JSON lines, each tagged with its field path."""
    out: list[JsonLine] = []

    def scalar(v: Any) -> str:
        return clean_text(json.dumps(v, ensure_ascii=False))

    def walk(v: Any, path: tuple[str, ...], depth: int, prefix: str, comma: str) -> None:
        pad = " " * (indent * depth)
        if isinstance(v, dict) and v:
            out.append(JsonLine(f"{pad}{prefix}{{", path))
            items = list(v.items())
            for i, (k, child) in enumerate(items):
                walk(
                    child,
                    (*path, str(k)),
                    depth + 1,
                    scalar(str(k)) + ": ",
                    "," if i < len(items) - 1 else "",
                )
            out.append(JsonLine(f"{pad}}}{comma}", path))
        elif isinstance(v, list) and v:
            out.append(JsonLine(f"{pad}{prefix}[", path))
            for i, child in enumerate(v):
                walk(child, (*path, str(i)), depth + 1, "", "," if i < len(v) - 1 else "")
            out.append(JsonLine(f"{pad}]{comma}", path))
        else:
            out.append(JsonLine(f"{pad}{prefix}{scalar(v)}{comma}", path))

    walk(value, (), 0, "", "")
    return out


def side_value(side: dict[str, Any] | None) -> Any:
    """The value to show for one side of an aligned row (``None`` when absent)."""
    if not side:
        return None
    payload = side.get("payload")
    if side.get("format") == "binary" and isinstance(payload, str):
        try:
            size = len(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            return f"<binary> {payload}"
        return f"<binary {size} bytes> {payload}"
    return payload


@dataclass(frozen=True)
class Example:
    """An example of a difference group: both sides and the differing fields."""

    session: str | None
    where: str
    expected: Any
    actual: Any
    fields: list[tuple[str, ...]] = field(default_factory=list)
    expected_present: bool = True
    actual_present: bool = True


def example_for(group: dict[str, Any], details: dict[str, dict[str, Any]]) -> Example:
    """The first example of a group, as whole messages from ``rows`` when the report has them.

    A group's ``examples`` hold the differing values; the session's aligned row
    holds the whole messages and ``fields``, which read better side by side.
    """
    examples = group.get("examples") or []
    first = examples[0] if examples and isinstance(examples[0], dict) else {}
    sessions = group.get("sessions") or []
    sid = first.get("session") or (sessions[0] if sessions else None)
    signature = group.get("signature")
    kind = group.get("kind")
    gpath = path_tokens(group.get("path"))
    detail = details.get(sid) if isinstance(sid, str) else None
    if detail is not None:
        rows = detail.get("rows") or []
        for diff in detail.get("differences") or []:
            idx = diff.get("row")
            if diff.get("signature") != signature or not isinstance(idx, int):
                continue
            if 0 <= idx < len(rows):
                row = rows[idx]
                b, c = row.get("baseline"), row.get("candidate")
                fields = [path_tokens(f) for f in row.get("fields") or []]
                if not fields and b and c:
                    fields = [gpath] if gpath else [()]
                return Example(
                    sid,
                    f"row {idx}, {row.get('status', '?')}",
                    side_value(b),
                    side_value(c),
                    fields,
                    b is not None,
                    c is not None,
                )
        if kind in ("handshake", "close") and isinstance(detail.get(kind), dict):
            pair = detail[kind]
            return Example(
                sid, kind, pair.get("baseline"), pair.get("candidate"), [gpath] if gpath else [()]
            )
    expected, actual = first.get("expected"), first.get("actual")
    return Example(sid, "example", expected, actual, [()], expected is not None, actual is not None)


def dialects_text(report: dict[str, Any]) -> str | None:
    """``"/socket.io/ socketio · /ws json"``: each route's dialect(s), None when the report
    names none (reports from before dialects)."""
    dialects = report.get("dialects")
    if not isinstance(dialects, dict) or not dialects:
        return None
    parts = []
    for route, names in sorted(dialects.items()):
        shown = ", ".join(str(n) for n in names) if isinstance(names, list) else str(names)
        parts.append(f"{route} {shown}")
    return clean_text(" · ".join(parts))


# ---- timing findings (diff/timing.py) ------------------------------------------


def timing_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's timing findings (``timing.findings``), empty for an older report."""
    timing = report.get("timing")
    found = timing.get("findings") if isinstance(timing, dict) else None
    if not isinstance(found, list):
        return []
    return [f for f in found if isinstance(f, dict) and isinstance(f.get("signature"), str)]


def timing_events(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-event latency rows (``timing.events``), empty for an older report."""
    timing = report.get("timing")
    rows = timing.get("events") if isinstance(timing, dict) else None
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("signature"), str)]


def timing_gates(report: dict[str, Any]) -> bool:
    """Whether timing findings make this report divergent (``[verdict] timing = "gate"``)."""
    timing = report.get("timing")
    return isinstance(timing, dict) and timing.get("mode") == "gate"


def _num(v: Any) -> str:
    return f"{v:,.1f}" if isinstance(v, int | float) and not isinstance(v, bool) else "-"


def side_stats(row: dict[str, Any], side: str) -> tuple[str, str, str]:
    """(median ms, p95 ms, samples) of one side of a timing row, as text."""
    s = row.get(side)
    if not isinstance(s, dict):
        return "-", "-", "-"
    n = s.get("samples")
    return _num(s.get("median_ms")), _num(s.get("p95_ms")), f"{n:,}" if isinstance(n, int) else "-"


def p_text(row: dict[str, Any]) -> str:
    """The p-value of a timing row, as text."""
    p = row.get("p_value")
    return f"{p:.2g}" if isinstance(p, int | float) and not isinstance(p, bool) else "-"


def timing_finding_text(f: dict[str, Any]) -> str:
    """One line for a timing finding: medians, p95s, samples and p-value."""
    bm, bp, bn = side_stats(f, "baseline")
    cm, cp, cn = side_stats(f, "candidate")
    return clean_text(
        f"{f['signature']}: median {bm} → {cm} ms, p95 {bp} → {cp} ms, "
        f"samples {bn} / {cn}, p = {p_text(f)}"
    )


def timing_headline(report: dict[str, Any]) -> str | None:
    """``N timing findings (gating|not gating: ...)``, None when there are none."""
    found = timing_findings(report)
    if not found:
        return None
    how = "gating" if timing_gates(report) else "reported, not gating"
    return f"{count_word(len(found), 'timing finding')} ({how})"


def timing_method(report: dict[str, Any]) -> str | None:
    """How timing findings were decided and replays interleaved, None for an older report."""
    timing = report.get("timing")
    if not isinstance(timing, dict) or "method" not in timing:
        return None
    parts = [
        f"one-sided Mann-Whitney U, p < {timing.get('significance')}, "
        f"at least {timing.get('min_samples')} samples a side, median x{timing.get('ratio')} "
        f"and {timing.get('floor_ms')} ms slower, more than x{timing.get('noise_margin')} "
        "the noise runs' own shift"
    ]
    if isinstance(timing.get("interleaving"), str):
        parts.append(f"replays: {timing['interleaving']}")
    if isinstance(timing.get("warmup"), int):
        parts.append(f"warm-up: {count_word(timing['warmup'], 'session')} per target")
    return clean_text("; ".join(parts))
