"""Merging captures: bring the runs of several machines (``--shard I/N``) together.

Each shard's capture holds the same recorded sessions and its share of a
run's replayed sessions. Merging copies every session into one capture
(a session already there, by id, is kept once) and combines runs of the
same name: earliest start, latest end, counts recomputed from the
sessions actually merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from wsshadow.replay.capture.model import Run
from wsshadow.replay.capture.store import CaptureStore

__all__ = ["MergeResult", "merge_captures"]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What a merge added: sessions copied, sessions already present, runs touched."""

    sessions: int
    duplicates: int
    runs: tuple[str, ...]


def _combine(a: Run | None, b: Run) -> Run:
    if a is None:
        return b
    starts = [t for t in (a.started_at, b.started_at) if t is not None]
    ends = [t for t in (a.ended_at, b.ended_at) if t is not None]
    settings = dict(a.settings)
    if settings.get("shard") != b.settings.get("shard"):
        settings["shard"] = None  # the merged run covers several shards
    return replace(
        a,
        settings=settings,
        started_at=min(starts) if starts else None,
        ended_at=max(ends) if ends else None,
    )


def merge_captures(out: CaptureStore, sources: Iterable[CaptureStore]) -> MergeResult:
    """Copy every session and run of ``sources`` into ``out``; returns what was added."""
    copied = duplicates = 0
    touched: dict[str, Run] = {}
    for source in sources:
        for run in source.runs():
            touched[run.name] = _combine(touched.get(run.name) or out.get_run(run.name), run)
            out.put_run(touched[run.name])  # the row must exist before its sessions
        batch = []
        for session in source.iter_all_sessions():
            batch.append(session)
            if len(batch) == 200:
                n = out.put_sessions(batch, on_conflict="skip")
                copied, duplicates = copied + n, duplicates + len(batch) - n
                batch = []
        n = out.put_sessions(batch, on_conflict="skip")
        copied, duplicates = copied + n, duplicates + len(batch) - n
    for name, run in touched.items():
        summaries = list(out.summaries(name))
        errors = sum(1 for s in summaries if s.close_error is not None or s.status != 101)
        out.put_run(replace(run, sessions=len(summaries), errors=errors))
    return MergeResult(copied, duplicates, tuple(touched))
