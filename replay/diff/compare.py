"""Compare one baseline session with one candidate session (pure).

The server streams are normalized, aligned, and each aligned pair is
compared: first the raw texts, then both parsed values walked together
with masks and ignore rules applied only where they differ (equal
messages cost almost nothing), then the canonical JSON of the masked
values, and only when those differ field by field with deepdiff. The
handshake (status, selected subprotocol, chosen response headers), the
close (code, reason, who closed) and timing (latency of each server
message from the client message that triggered it) are compared too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from deepdiff import DeepDiff

from wsshadow.replay.capture.model import Direction, Opcode, Session
from wsshadow.replay.config import RouteDiffConfig
from wsshadow.replay.diff.align import Pair, align_correlated
from wsshadow.replay.diff.dialects import Dialect
from wsshadow.replay.diff.masks import hex_shaped_equal
from wsshadow.replay.diff.normalize import (
    Normalized,
    Normalizer,
    ParseCache,
    display_payload,
    text_tokens,
    unnumbered,
)

__all__ = [
    "KINDS",
    "Finding",
    "SessionComparison",
    "compare_sessions",
    "compare_text",
    "compare_values",
    "latencies",
    "signature",
]

KINDS = (
    "missing_event",
    "extra_event",
    "changed_value",
    "type_changed",
    "reordered",
    "handshake",
    "close",
    "timing",
    "error",
)
"""Every kind of difference the report can hold."""

_TEXT_LIMIT = 500
_DATA = frozenset((Opcode.TEXT, Opcode.BINARY))
_CONTROL = frozenset((Opcode.PING, Opcode.PONG))


def signature(kind: str, route: str, event: str | None, path: str | None) -> str:
    """``"<kind> <route> <event>[ <path>]"``, event ``-`` when there is none."""
    sig = f"{kind} {route} {event if event is not None else '-'}"
    return f"{sig} {path}" if path is not None else sig


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between a baseline and a candidate session.

    ``expected`` / ``actual`` are JSON-ready values (None when absent);
    ``row`` indexes the alignment row it belongs to, if any. ``whole_text``
    marks a text that changed beyond its volatile tokens: never learned as
    noise, so that a volatile token cannot hide the rest of the text.
    """

    kind: str
    event: str | None
    path: str | None
    expected: Any = None
    actual: Any = None
    row: int | None = None
    whole_text: bool = False

    def signature(self, route: str) -> str:
        """This finding's group signature on ``route``."""
        return signature(self.kind, route, self.event, self.path)


@dataclass(slots=True)
class SessionComparison:
    """Everything one baseline/candidate comparison found, with the alignment.

    ``fields`` maps a row index to the differing field paths of that row.
    """

    findings: list[Finding]
    pairs: list[Pair]
    base: list[Normalized]
    cand: list[Normalized]
    fields: dict[int, list[str]] = field(default_factory=dict)
    base_latencies: list[float] = field(default_factory=list)
    cand_latencies: list[float] = field(default_factory=list)
    base_by_event: dict[str, list[float]] = field(default_factory=dict)
    cand_by_event: dict[str, list[float]] = field(default_factory=dict)


def _by_event(stream: list[Normalized], lat: dict[int, float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for n in stream:
        v = lat.get(n.seq)
        if v is not None:
            out.setdefault(n.event if n.event is not None else "-", []).append(v)
    return out


def latencies(session: Session, control: bool = False) -> dict[int, float]:
    """Seconds from the last client message to each later server message, by seq."""
    out: dict[int, float] = {}
    last_client: float | None = None
    client = Direction.CLIENT
    counted = _DATA | _CONTROL if control else _DATA
    for m in session.messages:
        if m.direction is client:
            if m.opcode in _DATA:
                last_client = m.t
        elif last_client is not None and m.opcode in counted:
            out[m.seq] = max(0.0, m.t - last_client)
    return out


def _json_value(v: Any) -> Any:
    if type(v).__name__ == "NotPresent":
        return None
    if isinstance(v, bytes):
        return _bytes_value(v)
    return v


def _bytes_value(data: bytes) -> str:
    if len(data) <= 96:
        return base64.b64encode(data).decode("ascii")
    return f"<{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}>"


def _text_value(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "…"


def _dotted(parts: Sequence[Any]) -> str | None:
    return ".".join(str(p) for p in parts) if parts else None


_SCALARS = (str, int, float, bool, type(None))
_PLAIN = (*_SCALARS, dict, list)


def _differences(
    a: Any, b: Any, path: list[Any], out: list[tuple[str, str | None, Any, Any]]
) -> None:
    """Append DeepDiff's (kind, path, expected, actual) findings for ``a`` and ``b``.

    Walks dicts with the same keys and lists of the same length that hold
    containers itself, comparing leaves directly; DeepDiff answers the rest
    (added or removed keys, lists of scalars, compared position by position,
    1 vs true) for that subtree only, its paths prefixed with ``path``.
    """
    ta = type(a)
    if ta is type(b):
        if ta is dict:
            if a.keys() == b.keys():
                for k, v in a.items():
                    _differences(v, b[k], [*path, k], out)
                return
        elif ta is list:
            if len(a) == len(b) and not (_all_scalars(a) and _all_scalars(b)):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    _differences(x, y, [*path, i], out)
                return
        elif ta in _SCALARS and not (ta is float and (a != a or b != b)):
            if a != b:
                out.append(("changed_value", _dotted(path), a, b))
            return
    elif ta in _PLAIN and type(b) in _PLAIN and a != b:
        out.append(("type_changed", _dotted(path), a, b))
        return
    if a == b and ta is type(b) and ta in _SCALARS:
        return
    # zip_ordered_iterables: lists compare position by position, so diff(a, b) and
    # diff(b, a) mirror each other (a sequence matcher pairs items asymmetrically).
    found = DeepDiff(a, b, view="tree", threshold_to_diff_deeper=0, zip_ordered_iterables=True)
    for report_type, levels in found.items():
        kind = "type_changed" if report_type == "type_changes" else "changed_value"
        for level in levels:
            where = _dotted([*path, *level.path(output_format="list")])
            out.append((kind, where, _json_value(level.t1), _json_value(level.t2)))


def _all_scalars(items: list[Any]) -> bool:
    return all(type(v) in _SCALARS for v in items)


def compare_values(a: Any, b: Any) -> list[tuple[str, str | None, Any, Any]]:
    """Field-by-field differences of two JSON values: (kind, path, expected, actual)."""
    out: list[tuple[str, str | None, Any, Any]] = []
    # DeepDiff costs ~0.1 ms per call even on small values, and learning noise
    # from a baseline run compares nearly every message: walk the common
    # shapes here and hand DeepDiff only the subtrees whose shapes differ
    # (a property test checks the answers are DeepDiff's).
    _differences(a, b, [], out)
    out.sort(key=lambda f: (f[1] or "", f[0]))
    if not out:  # values deepdiff considers equal but JSON does not (1 vs true)
        out.append(("type_changed", None, a, b))
    return out


def _same_json(a: Any, b: Any) -> bool:
    """Whether two values serialize to the same canonical JSON (keys sorted)."""
    try:
        return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            b, option=orjson.OPT_SORT_KEYS
        )
    except TypeError:  # integers past 64 bits, and the like
        return _canonical(a) == _canonical(b)


def _canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _compare_pair(
    b: Normalized, c: Normalized, row: int, norm: Normalizer, tokens: bool = True
) -> list[Finding]:
    if norm.equivalent(b, c):
        return []
    if b.format != c.format:
        return [Finding("type_changed", b.event, None, _display(b), _display(c), row)]
    if b.format == "text":
        assert isinstance(b.raw, str) and isinstance(c.raw, str)
        if not tokens:  # the raw dialect: payloads compared whole, as they are
            return [Finding("changed_value", b.event, None, _text_value(b.raw),
                            _text_value(c.raw), row, whole_text=True)]  # fmt: skip
        return compare_text(b, c, row, norm)
    if b.format == "binary":
        assert isinstance(b.value, bytes) and isinstance(c.value, bytes)
        return [Finding("changed_value", b.event, None, _bytes_value(b.value),
                        _bytes_value(c.value), row)]  # fmt: skip
    va, vb = norm.comparable(b), norm.comparable(c)
    if _same_json(va, vb):
        return []
    return [
        Finding(kind, b.event, path, exp, act, row)
        for kind, path, exp, act in compare_values(va, vb)
        if not (type(exp) is str and type(act) is str and hex_shaped_equal(exp, act))
    ]


def compare_text(b: Normalized, c: Normalized, row: int, norm: Normalizer) -> list[Finding]:
    """Text that no dialect decodes, compared token by token where only tokens differ.

    When both texts are the same once their volatile tokens (uuids, times,
    hex ids, custom masks) are set aside, each differing token is its own
    finding, its path naming the token (``<uuid>2``: the second token);
    otherwise the whole text is one finding, marked ``whole_text``.
    """
    assert isinstance(b.raw, str) and isinstance(c.raw, str)
    skel_b, tokens_b = text_tokens(b.raw, norm.text_masks)
    skel_c, tokens_c = text_tokens(c.raw, norm.text_masks)
    if skel_b != skel_c or len(tokens_b) != len(tokens_c):
        return [Finding("changed_value", b.event, None, _text_value(b.raw), _text_value(c.raw),
                        row, whole_text=True)]  # fmt: skip
    return [
        Finding("changed_value", b.event, f"{name}{i}", old, new, row)
        for i, ((name, old), (_, new)) in enumerate(zip(tokens_b, tokens_c, strict=True), 1)
        if old != new and _masked_differ(norm, old, new)
    ]


def _masked_differ(norm: Normalizer, old: str, new: str) -> bool:
    """Whether two text tokens still differ once masked (an id the hex mask let through on
    one side only included: ``hex_shaped_equal``)."""
    a, b = norm.mask_text(old), norm.mask_text(new)
    return a != b and not hex_shaped_equal(a, b)


def _display(n: Normalized) -> Any:
    if n.format == "text":
        assert isinstance(n.raw, str)
        return _text_value(n.raw)
    if n.format == "binary":
        assert isinstance(n.raw, bytes)
        return _bytes_value(n.raw)
    return display_payload(n)


def _handshake_close(base: Session, cand: Session, config: RouteDiffConfig) -> list[Finding]:
    out: list[Finding] = []
    hb, hc = base.handshake, cand.handshake
    if hb.status != hc.status:
        out.append(Finding("handshake", None, "status", hb.status, hc.status))
    # A placeholder's number (which recorded value it was) is no difference of the target's.
    if unnumbered(hb.subprotocol) != unnumbered(hc.subprotocol):
        out.append(Finding("handshake", None, "subprotocol", hb.subprotocol, hc.subprotocol))
    for name in config.compare_headers:
        vb, vc = hb.response_header(name), hc.response_header(name)
        if unnumbered(vb) != unnumbered(vc):
            out.append(Finding("handshake", None, f"headers.{name.lower()}", vb, vc))
    cb, cc = base.close, cand.close
    for attr in ("code", "reason", "by"):
        vb = getattr(cb, attr) if cb is not None else None
        vc = getattr(cc, attr) if cc is not None else None
        if attr == "by":
            vb = vb.value if vb is not None else None
            vc = vc.value if vc is not None else None
        if unnumbered(vb) != unnumbered(vc):
            out.append(Finding("close", None, attr, vb, vc))
    return out


def compare_sessions(
    base: Session,
    cand: Session,
    norm: Normalizer,
    config: RouteDiffConfig,
    unordered: Collection[str] = (),
    base_stream: list[Normalized] | None = None,
    cache: ParseCache | None = None,
    dialect: Dialect | None = None,
    *,
    timing_findings: bool = True,
) -> SessionComparison:
    """Every difference between two sessions of the same recorded session.

    ``unordered`` adds event keys aligned without regard to their position
    (learned from baseline runs); ``base_stream`` reuses a normalized stream
    and ``cache`` the parses of the baseline's messages; ``dialect`` decodes
    both sessions (None: plain JSON). Replies are aligned with their
    requests' replies by correlation id: the order in which they complete
    is never a difference, and a request answered in the baseline but not
    at all in the candidate is one ``missing_event`` named after it.
    ``timing_findings`` False leaves out the per-message timing findings (a
    whole capture's timing is judged on distributions, ``diff/timing.py``);
    the latencies are kept by event key either way.
    """
    if cache is None:
        cache = {}
    bs = base_stream if base_stream is not None else norm.stream(base, cache, dialect)
    cs = norm.stream(cand, cache, dialect)
    tokens = dialect is None or dialect.name != "raw"
    loose = {k for k, rule in config.background.items() if rule.unordered} | set(unordered)
    optional = {k for k, rule in config.background.items() if rule.optional}
    pairs = align_correlated(bs, cs, config.ordering, loose)
    base_corrs = {n.corr for n in bs if n.corr is not None}
    cand_corrs = {n.corr for n in cs if n.corr is not None}
    unanswered: set[str] = set()
    findings: list[Finding] = []
    fields: dict[int, list[str]] = {}
    lat_b = latencies(base, norm.compare_control)
    lat_c = latencies(cand, norm.compare_control)
    timing = config.timing
    for row, p in enumerate(pairs):
        if p.base is None:
            assert p.cand is not None
            c = cs[p.cand]
            if c.corr is not None and c.corr not in base_corrs:
                if c.corr not in unanswered:  # a whole exchange the baseline never had
                    unanswered.add(c.corr)
                    findings.append(Finding("extra_event", c.request or c.event, None, None,
                                            _display(c), row))  # fmt: skip
            elif c.key not in optional:
                findings.append(Finding("extra_event", c.event, None, None, _display(c), row))
            continue
        b = bs[p.base]
        if p.cand is None:
            if b.corr is not None and b.corr not in cand_corrs:
                if b.corr not in unanswered:  # the request got no reply at all
                    unanswered.add(b.corr)
                    findings.append(Finding("missing_event", b.request or b.event, None,
                                            _display(b), None, row))  # fmt: skip
            elif b.key not in optional:
                findings.append(Finding("missing_event", b.event, None, _display(b), None, row))
            continue
        c = cs[p.cand]
        if p.moved:
            findings.append(Finding("reordered", b.event, None, p.base, p.cand, row))
        pair_findings = _compare_pair(b, c, row, norm, tokens)
        if pair_findings:
            findings.extend(pair_findings)
            fields[row] = [f.path or "" for f in pair_findings]
        lb, lc = lat_b.get(b.seq), lat_c.get(c.seq)
        if (
            timing_findings
            and lb is not None
            and lc is not None
            and lc > timing.ratio * lb
            and (lc - lb) * 1000.0 >= timing.floor_ms
        ):
            findings.append(
                Finding("timing", b.event, None, round(lb * 1000, 3), round(lc * 1000, 3), row)
            )
    findings.extend(_handshake_close(base, cand, config))
    return SessionComparison(
        findings=findings,
        pairs=pairs,
        base=bs,
        cand=cs,
        fields=fields,
        base_latencies=[lat_b[n.seq] for n in bs if n.seq in lat_b],
        cand_latencies=[lat_c[n.seq] for n in cs if n.seq in lat_c],
        base_by_event=_by_event(bs, lat_b),
        cand_by_event=_by_event(cs, lat_c),
    )
