"""Diff a whole capture: ``diff_capture`` streams its sessions through the diff.

``diff_session`` (``session.py``) compares a recorded session's baseline
and candidate (with its noise runs) and returns a ``SessionResult``;
``DiffAccumulator`` (``accumulate.py``) folds results into per-signature
groups, noise and session details while keeping memory flat.
``diff_capture`` reads the sessions through a ``SessionSource`` (the caller
opens the capture) and returns the JSON report (``report/build.py``).
Those names are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from wsshadow.replay.capture.model import Run, Session
from wsshadow.replay.config import DiffConfig, RouteDiffConfig, VerdictConfig
from wsshadow.replay.diff.accumulate import (
    MAX_DETAIL_DIFFERENCES,
    MAX_GROUP_SESSIONS,
    MAX_ROWS,
    DiffAccumulator,
    fold_across_events,
)
from wsshadow.replay.diff.dialects import check_dialect_names
from wsshadow.replay.diff.normalize import Normalizer
from wsshadow.replay.diff.session import SessionResult, diff_session, unmasked_normalizer
from wsshadow.replay.errors import BadInput
from wsshadow.replay.report.build import build_report

__all__ = [
    "MAX_DETAIL_DIFFERENCES",
    "MAX_GROUP_SESSIONS",
    "MAX_ROWS",
    "RECORDED_BASELINE",
    "DiffAccumulator",
    "SessionResult",
    "SessionSource",
    "diff_capture",
    "diff_session",
    "fold_across_events",
    "unmasked_normalizer",
]

RECORDED_BASELINE = "recorded"
"""The baseline name for the recorded sessions themselves."""

# ---- a whole capture -----------------------------------------------------------


def _check_run(store: SessionSource, name: str, role: str) -> None:
    if store.get_run(name) is None and store.count_sessions(name) == 0:
        raise BadInput(f"{store.path}: no run called {name!r} (for the {role})")


class SessionSource(Protocol):
    """Where ``diff_capture`` reads sessions from; ``CaptureStore`` is one.

    The diff never opens a capture itself: whoever calls it does.
    """

    @property
    def path(self) -> Path: ...

    def get_run(self, name: str) -> Run | None: ...

    def count_sessions(self, run: str | None = None) -> int: ...

    def get_session(self, session_id: str) -> Session: ...

    def matched_replays(
        self, runs: Sequence[str]
    ) -> Iterable[tuple[str, str, list[str | None]]]: ...


def diff_capture(
    store: SessionSource,
    baseline: str = RECORDED_BASELINE,
    candidate: str = "",
    noise_runs: Sequence[str] = (),
    config: DiffConfig | None = None,
    *,
    now: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    session_details: bool = True,
    verdict: VerdictConfig | None = None,
) -> dict[str, Any]:
    """Diff a capture's baseline (a run name or ``"recorded"``) with a candidate run.

    Replayed sessions are matched to recorded ones by ``provenance.origin``;
    ``noise_runs`` are more runs against the baseline, used to learn noise.
    Sessions are streamed one at a time; the sessions that get aligned rows
    in ``session_details`` are diffed again once the verdicts are known, so
    memory holds per-signature aggregates and one small entry per session
    (none with ``session_details=False``, which leaves that list empty).
    When the baseline is a run, each session's baseline replay is also
    compared with the recording (fidelity); ``verdict`` holds the thresholds
    an ``equivalent`` verdict must meet (``[verdict]``).
    ``verdict.timing`` says whether timing findings make the report divergent.
    Returns the JSON report (a dict, docs/report-schema.md). Raises BadInput
    for an unknown run name, CaptureError for an unreadable capture.
    """
    config = config if config is not None else DiffConfig()
    check_dialect_names(config)  # an unknown name is bad input before any work, not halfway
    if not candidate or candidate == RECORDED_BASELINE:
        raise BadInput("the candidate must be a replay run of the capture")
    for name, role in ((baseline, "baseline"), (candidate, "candidate")):
        if name != RECORDED_BASELINE:
            _check_run(store, name, role)
    for name in noise_runs:
        _check_run(store, name, "noise")
    runs = [candidate] + ([baseline] if baseline != RECORDED_BASELINE else []) + list(noise_runs)
    acc = DiffAccumulator(config, keep_details=session_details, verdict=verdict)
    normalizers: dict[str, tuple[RouteDiffConfig, Normalizer, Normalizer]] = {}

    def for_route(route: str) -> tuple[RouteDiffConfig, Normalizer, Normalizer]:
        if route not in normalizers:
            rc = config.for_route(route)
            normalizers[route] = (rc, Normalizer(rc), unmasked_normalizer(rc))
        return normalizers[route]

    def get(session_id: str | None) -> Session | None:
        return store.get_session(session_id) if session_id is not None else None

    total = store.count_sessions()
    for done, (recorded_id, route, ids) in enumerate(store.matched_replays(runs), 1):
        rc, norm, raw = for_route(route)
        cand = store.get_session(ids[0]) if ids[0] is not None else None
        rest = ids[1:]
        recorded: Session | None = store.get_session(recorded_id)
        if baseline == RECORDED_BASELINE:
            base: Session | None = recorded
            recorded = None
        else:
            base = store.get_session(rest[0]) if rest[0] is not None else None
            rest = rest[1:]
        noise = [store.get_session(i) for i in rest if i is not None]
        acc.add(diff_session(recorded_id, route, base, cand, noise, rc, norm, raw, recorded))
        if progress is not None:
            progress(done, total)
    parts = acc.finish()
    for index in acc.rows_wanted():
        d = acc.details[index]
        rc, norm, raw = for_route(d["route"])
        again = diff_session(
            d["session"],
            d["route"],
            get(d["baseline_session"]),
            get(d["candidate_session"]),
            [s for s in map(get, d["noise_sessions"]) if s is not None],
            rc,
            norm,
            raw,
        )
        acc.attach_rows(index, again)

    def target(name: str) -> str | None:
        if name == RECORDED_BASELINE:
            return None
        run = store.get_run(name)
        return run.target if run is not None else None

    return build_report(
        parts,
        capture=str(store.path),
        baseline={"target": target(baseline), "run": baseline},
        candidate={"target": target(candidate), "run": candidate},
        noise_runs=list(noise_runs),
        generated_at=time.time() if now is None else now,
    )
