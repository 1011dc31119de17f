"""Check one live replay against its recording (pure): the pytest plugin's verdict.

``check_session`` compares the server stream a target sent during a replay
(``live``) with the RECORDED server stream, under one route's diff config.
With a single target there is no second baseline run to learn noise from, so
noise is learned from the target itself: ``again`` are more replays of the
same session against the same target, and whatever differs between ``live``
and one of them (generated ids, races, timing jitter) is noise for this
session, suppressed and listed, never silently dropped. Declared ignore
rules, masks and background events apply as everywhere else.

The result groups what is left by signature (kind, route, event, path) with
one expected/actual example each, and renders as the one message a failing
test shows (``ReplayCheck.explain``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wsshadow.replay.capture.model import Session, unmet_links
from wsshadow.replay.config import RouteDiffConfig
from wsshadow.replay.diff.compare import compare_sessions
from wsshadow.replay.diff.dialects import session_dialect
from wsshadow.replay.diff.noise import session_noise
from wsshadow.replay.diff.normalize import Normalizer

__all__ = ["Difference", "ReplayCheck", "check_session", "live_failure"]

_VALUE_LIMIT = 240


@dataclass(frozen=True, slots=True)
class Difference:
    """One group of differences in a session: same signature, ``count`` occurrences.

    ``expected`` / ``actual`` are the first occurrence's recorded and live
    values (JSON-ready; None when absent).
    """

    kind: str
    signature: str
    event: str | None
    path: str | None
    count: int
    expected: Any
    actual: Any


@dataclass(frozen=True)
class ReplayCheck:
    """A replayed session checked against its recording.

    ``live`` is the replayed session (None when it was not replayed);
    ``noise`` lists the signatures suppressed because they also varied between
    two replays against the target; ``error`` says why there is no verdict.
    """

    recorded: Session
    live: Session | None
    target: str
    differences: tuple[Difference, ...] = ()
    noise: tuple[str, ...] = ()
    error: str | None = None
    again: tuple[Session, ...] = ()
    """The extra replays noise was learned from."""

    @property
    def equivalent(self) -> bool:
        """True when the target answered and no difference survived."""
        return self.error is None and not self.differences

    @property
    def signatures(self) -> tuple[str, ...]:
        """The signatures of the differences, in order."""
        return tuple(d.signature for d in self.differences)

    def explain(self) -> str:
        """The failure message: the grouped differences with expected vs actual."""
        head = f"session {self.recorded.id} on {self.recorded.route} (target {self.target})"
        if self.error is not None:
            return f"{head}: {self.error}"
        if not self.differences:
            return f"{head}: equivalent to the recording"
        n = sum(d.count for d in self.differences)
        lines = [
            f"{head} differs from the recording: {n} difference{'s' * (n != 1)} "
            f"in {len(self.differences)} group{'s' * (len(self.differences) != 1)}"
        ]
        for d in self.differences:
            times = f"  (x{d.count})" if d.count > 1 else ""
            lines.append(f"  {d.signature}{times}")
            lines.append(f"      expected: {_show(d.expected)}")
            lines.append(f"      actual:   {_show(d.actual)}")
        if self.noise:
            lines.append(f"  noise (varies between replays, ignored): {', '.join(self.noise)}")
        if self.live is not None:  # a scenario's replay: what the other sessions never provided
            lines.extend(f"  unmet link: {link}" for link in unmet_links(self.live.provenance.tags))
        return "\n".join(lines)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 3] + "..."


def live_failure(live: Session | None) -> str | None:
    """Why a replayed session has no server stream to compare (None when it has one)."""
    if live is None:
        return "not replayed"
    if live.handshake.status is None:
        close = live.close
        return close.error if close is not None and close.error else "the target did not answer"
    return None


def check_session(
    recorded: Session,
    live: Session | None,
    again: Sequence[Session],
    config: RouteDiffConfig,
    target: str = "",
    *,
    timing: bool = False,
) -> ReplayCheck:
    """Compare ``live`` with ``recorded``, learning noise from ``live`` vs each of ``again``.

    Replays in ``again`` that got no answer are left out. ``timing`` keeps
    latency differences (off by default: the recording's latencies were
    measured on another machine under another load, so against a single
    target they say more about the test machine than about the server). Pure.
    """
    error = live_failure(live)
    if error is not None:
        return ReplayCheck(recorded, live, target, error=error, again=tuple(again))
    assert live is not None
    route = recorded.route
    norm = Normalizer(config)
    dialect = session_dialect(config, recorded, live)
    comparisons = [
        compare_sessions(live, other, norm, config, dialect=dialect).findings
        for other in again
        if live_failure(other) is None
    ]
    learned = session_noise(route, comparisons)
    comp = compare_sessions(recorded, live, norm, config, unordered=learned.unordered,
                            dialect=dialect)  # fmt: skip
    groups: dict[str, Difference] = {}
    suppressed: dict[str, None] = {}
    for f in comp.findings:
        if f.kind == "timing" and not timing:
            continue
        sig = f.signature(route)
        if sig in learned.signatures:
            suppressed[sig] = None
            continue
        g = groups.get(sig)
        if g is None:
            groups[sig] = Difference(f.kind, sig, f.event, f.path, 1, f.expected, f.actual)
        else:
            groups[sig] = Difference(
                g.kind, sig, g.event, g.path, g.count + 1, g.expected, g.actual
            )
    return ReplayCheck(
        recorded,
        live,
        target,
        differences=tuple(groups.values()),
        noise=tuple(sorted(suppressed)),
        again=tuple(again),
    )
