"""One recorded session diffed: its baseline against its candidate, noise learned from
the noise runs, fidelity against the recording (``diff_session``). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wsshadow.replay.capture.model import Session
from wsshadow.replay.config import RouteDiffConfig
from wsshadow.replay.diff.compare import (
    Finding,
    SessionComparison,
    compare_sessions,
)
from wsshadow.replay.diff.dialects import session_dialect
from wsshadow.replay.diff.fidelity import (
    SessionFidelity,
    failed_fidelity,
    session_fidelity,
)
from wsshadow.replay.diff.noise import SessionNoise, session_noise
from wsshadow.replay.diff.normalize import Normalized, Normalizer, ParseCache

__all__ = ["SessionResult", "diff_session", "unmasked_normalizer"]


@dataclass(slots=True)
class SessionResult:
    """The outcome of diffing one recorded session."""

    session: str
    route: str
    baseline_session: str | None
    candidate_session: str | None
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    noise: SessionNoise | None = None
    comparison: SessionComparison | None = None
    handshake: dict[str, Any] | None = None
    close: dict[str, Any] | None = None
    noise_sessions: list[str] = field(default_factory=list)
    noise_latencies: list[dict[str, list[float]]] = field(default_factory=list)
    dialect: str | None = None
    fidelity: SessionFidelity | None = None
    """How much of the recording the baseline replay reproduced (None: not measured)."""
    noise_streams: list[list[Normalized]] = field(default_factory=list)
    """The noise runs' normalized server streams (unmasked)."""
    varying: set[tuple[str | None, str]] = field(default_factory=set)
    """(event, path) of every field some comparison of this session found different."""
    normalizer: Normalizer | None = None


_FIELD_KINDS = ("changed_value", "type_changed")


def _failure(side: str, s: Session | None) -> str | None:
    if s is None:
        return f"no {side} session"
    if s.handshake.status is None:
        why = s.close.error if s.close is not None and s.close.error else "no answer"
        return f"{side} unreachable: {why}"
    if s.close is not None and s.close.error and s.close.error.startswith("flooded"):
        # Cut off at replay's message cap: what it holds is a prefix, not an answer.
        return f"{side} {s.close.error}"
    return None


def _ends(base: Session | None, cand: Session | None) -> tuple[dict[str, Any], dict[str, Any]]:
    def hs(s: Session | None) -> dict[str, Any] | None:
        return None if s is None else {"status": s.handshake.status,
                                       "subprotocol": s.handshake.subprotocol}  # fmt: skip

    def cl(s: Session | None) -> dict[str, Any] | None:
        if s is None or s.close is None:
            return None
        return {"code": s.close.code, "reason": s.close.reason, "by": s.close.by.value}

    return (
        {"baseline": hs(base), "candidate": hs(cand)},
        {"baseline": cl(base), "candidate": cl(cand)},
    )


def unmasked_normalizer(config: RouteDiffConfig) -> Normalizer:
    """A normalizer for ``config`` without masks (ignore rules still apply): for learning noise.

    Custom masks stay known (not applied), so that text is still split into
    its volatile tokens (``text_tokens``)."""
    return Normalizer(replace(config, masks=()))


def diff_session(
    recorded_id: str,
    route: str,
    baseline: Session | None,
    candidate: Session | None,
    noise: Sequence[Session],
    config: RouteDiffConfig,
    normalizer: Normalizer | None = None,
    noise_normalizer: Normalizer | None = None,
    recorded: Session | None = None,
) -> SessionResult:
    """Compare one recorded session's baseline and candidate, learning noise from ``noise``.

    With ``recorded`` (the recorded session, when the baseline is a replay)
    the result also says how much of it the baseline replay reproduced
    (``fidelity``), compared with the same normalizer and the learned noise.

    Noise is learned on unmasked values: a field whose raw value differs
    between two baseline runs is noise for this session even where a mask
    happens to hide one value and not the other (a random hex id that comes
    out all digits, say). A missing or unreachable baseline or candidate
    makes the result errored (``error`` set, one ``error`` finding).
    """
    norm = normalizer if normalizer is not None else Normalizer(config)
    raw_norm = noise_normalizer if noise_normalizer is not None else unmasked_normalizer(config)
    handshake, close = _ends(baseline, candidate)
    result = SessionResult(
        session=recorded_id,
        route=route,
        baseline_session=baseline.id if baseline is not None else None,
        candidate_session=candidate.id if candidate is not None else None,
        handshake=handshake,
        close=close,
        noise_sessions=[n.id for n in noise],
        normalizer=norm,
    )
    dialect = session_dialect(config, baseline, candidate)
    result.dialect = dialect.name if dialect is not None else None
    base_error = _failure("baseline", baseline)
    error = base_error or _failure("candidate", candidate)
    if base_error is not None and recorded is not None:
        result.fidelity = failed_fidelity(recorded, norm, base_error, dialect)
    if base_error is not None:
        result.error = error
        result.findings = [Finding("error", None, None, None, error)]
        return result
    assert baseline is not None
    cache: ParseCache = {}
    base_stream = norm.stream(baseline, cache, dialect)
    comparisons = []
    live_noise = [other for other in noise if _failure("noise", other) is None]
    if live_noise:
        raw_cache: ParseCache = {}
        raw_base = raw_norm.stream(baseline, raw_cache, dialect)
        noise_comps = [
            compare_sessions(
                baseline,
                other,
                raw_norm,
                config,
                base_stream=raw_base,
                cache=raw_cache,
                dialect=dialect,
                timing_findings=False,
            )
            for other in live_noise
        ]
        comparisons = [c.findings for c in noise_comps]
        result.noise_latencies = [c.cand_by_event for c in noise_comps]
        result.noise_streams = [c.cand for c in noise_comps]
    learned = session_noise(route, comparisons) if comparisons else None
    if recorded is not None:
        result.fidelity = session_fidelity(
            recorded, baseline, norm, config, route, learned, base_stream, cache, dialect
        )
    if error is not None:
        result.error = error
        result.findings = [Finding("error", None, None, None, error)]
        return result
    assert candidate is not None
    for findings in comparisons:
        result.varying.update(
            (f.event, f.path) for f in findings if f.kind in _FIELD_KINDS and f.path is not None
        )
    comp = compare_sessions(
        baseline,
        candidate,
        norm,
        config,
        unordered=learned.unordered if learned is not None else (),
        base_stream=base_stream,
        cache=cache,
        dialect=dialect,
        timing_findings=False,
    )
    result.findings = comp.findings
    result.noise = learned
    result.comparison = comp
    result.varying.update(
        (f.event, f.path) for f in comp.findings if f.kind in _FIELD_KINDS and f.path is not None
    )
    return result
