"""Shadow mode: replay every session to the baseline and the candidate at once, then diff.

The baseline is replayed on the routes as recorded, the candidate through
the route maps (old routes to the consolidated one), and the baseline again
``noise_runs`` times so that the differ learns what varies anyway. All runs
go concurrently into the same capture, in lockstep: each recorded session
starts on every target at the same moment, the first target rotating, so
the machine's load falls on all targets alike (the report's
``timing.interleaving`` says so). Each run first replays ``warmup`` sessions
unrecorded. The report is the differ's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, VerdictConfig
from wsshadow.replay.diff.capture import RECORDED_BASELINE, diff_capture
from wsshadow.replay.engine.interleave import Lockstep
from wsshadow.replay.engine.run import ReplayObserver, ReplayOptions, RunResult, replay_capture
from wsshadow.replay.engine.scenarios import capture_links, with_scenarios
from wsshadow.replay.engine.targets import RouteMap
from wsshadow.replay.errors import BadInput, Unreachable

__all__ = [
    "DEFAULT_WARMUP",
    "RECORDED_BASELINE",
    "ShadowResult",
    "shadow_capture",
    "shadow_run_names",
]

DEFAULT_WARMUP = 5
"""Sessions each target is warmed up with when ``--warmup`` / ``[replay] warmup`` is not set."""

"""``--baseline recorded``: diff against the recording itself, no baseline replay."""


@dataclass(frozen=True)
class ShadowResult:
    """The report and the runs a shadow comparison made."""

    report: dict[str, Any]
    baseline_run: str | None
    candidate_run: str
    noise_runs: tuple[str, ...]
    runs: tuple[RunResult, ...]


def shadow_run_names(
    store: CaptureStore, prefix: str | None, noise_runs: int, now: float
) -> tuple[str, str, list[str]]:
    """Names for the baseline, candidate and noise runs, unused in ``store``.

    ``prefix`` defaults to ``shadow-<UTC time>``; ``-2``, ``-3`` ... is added
    when a name is taken.
    """
    base = prefix or "shadow-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    stem, n = base, 1
    while True:
        names = [f"{stem}-baseline", f"{stem}-candidate"]
        names += [f"{stem}-noise{i}" for i in range(1, noise_runs + 1)]
        if all(store.get_run(name) is None for name in names):
            return names[0], names[1], names[2:]
        if prefix:
            raise BadInput(f"{store.path}: runs named {prefix}-* exist already; choose another")
        n += 1
        stem = f"{base}-{n}"


async def shadow_capture(
    store: CaptureStore,
    *,
    baseline: str,
    candidate: str,
    options: ReplayOptions,
    config: DiffConfig,
    noise_runs: int = 1,
    baseline_maps: Sequence[RouteMap] = (),
    prefix: str | None = None,
    progress: ReplayObserver | None = None,
    session_details: bool = True,
    verdict: VerdictConfig | None = None,
) -> ShadowResult:
    """Replay ``store``'s sessions to ``baseline`` (a URL or ``"recorded"``) and ``candidate``.

    ``options`` is the replay template: its target is replaced by each side's
    URL; its maps apply to the candidate only (the baseline gets
    ``baseline_maps``, none by default). With a URL baseline, ``noise_runs``
    more baseline replays teach the differ what is noise; with
    ``"recorded"`` there is no baseline replay and no noise run.

    Raises Unreachable when a target accepted none of the sessions, BadInput
    for options the engine refuses.
    """
    recorded = baseline == RECORDED_BASELINE
    if recorded:
        noise_runs = 0
    if options.warmup is None:
        options = replace(options, warmup=DEFAULT_WARMUP)
    base_name, cand_name, noise_names = shadow_run_names(store, prefix, noise_runs, time.time())
    plans: list[tuple[str, ReplayOptions]] = [(cand_name, replace(options, target=candidate))]
    if not recorded:
        base_options = replace(options, target=baseline, maps=tuple(baseline_maps))
        plans.append((base_name, base_options))
        plans += [(name, base_options) for name in noise_names]
    gate = Lockstep([name for name, _ in plans])
    results = await asyncio.gather(
        *(
            replay_capture(store, opts, run=name, progress=progress, start_gate=gate)
            for name, opts in plans
        )
    )
    for (name, opts), result in zip(plans, results, strict=True):
        if result.unreachable:
            role = "candidate" if name == cand_name else "baseline"
            raise Unreachable(
                f"{role} {opts.target}: accepted none of {result.sessions} sessions "
                f"({result.first_error()})"
            )
    report = diff_capture(
        store,
        baseline=RECORDED_BASELINE if recorded else base_name,
        candidate=cand_name,
        noise_runs=noise_names,
        config=config,
        session_details=session_details,
        verdict=verdict,
    )
    report["timing"]["interleaving"] = gate.describe()
    report["timing"]["warmup"] = options.warmup
    if options.links:  # each session's scenario, for the report's filters
        report = with_scenarios(
            report, capture_links(store, options.event_keys, options.link_rules)
        )
    return ShadowResult(
        report=report,
        baseline_run=None if recorded else base_name,
        candidate_run=cand_name,
        noise_runs=tuple(noise_names),
        runs=tuple(results),
    )
