"""``wsshadow shadow``: replay to baseline and candidate at once, diff, report, exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Annotated

import typer

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.diff import emit_report
from wsshadow.replay.cli.options import (
    CaptureArg,
    ConfigOpt,
    DialectOpt,
    ReportFileOpt,
    ReportFormatOpt,
    ReportOutputOpt,
    with_dialects,
    with_replay_options,
)
from wsshadow.replay.cli.progress import ProgressBar
from wsshadow.replay.config import discover_config
from wsshadow.replay.engine.options import build_replay_options
from wsshadow.replay.engine.scenarios import scenario_notes
from wsshadow.replay.engine.targets import parse_route_map
from wsshadow.replay.errors import BadInput, Interrupted
from wsshadow.replay.options import NO_OVERRIDES, ReplayOverrides
from wsshadow.replay.shadow import RECORDED_BASELINE, shadow_capture

__all__ = ["shadow"]


@app.command("shadow")
@with_replay_options
def shadow(
    capture: CaptureArg,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            metavar="URL|recorded",
            help="Baseline URL (the legacy server), or 'recorded' to compare with the "
            "recording [default: [targets].baseline].",
            show_default=False,
        ),
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option(
            "--candidate",
            metavar="URL",
            help="Candidate URL (the new server) [default: [targets].candidate].",
            show_default=False,
        ),
    ] = None,
    noise_runs: Annotated[
        int | None,
        typer.Option(
            "--noise-runs",
            metavar="N",
            help="Extra baseline replays that teach what varies anyway "
            "[default: 1 with a baseline URL, 0 with 'recorded'].",
            show_default=False,
        ),
    ] = None,
    baseline_maps: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline-map",
            metavar="FROM=TO",
            help="Route map for the baseline only (rarely needed).",
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(
            "--run-prefix",
            metavar="PREFIX",
            help="Run names PREFIX-baseline, PREFIX-candidate, ...",
        ),
    ] = None,
    reports: ReportFileOpt = None,
    fmt: ReportFormatOpt = None,
    out: ReportOutputOpt = None,
    config: ConfigOpt = None,
    dialect: DialectOpt = None,
    *,
    overrides: ReplayOverrides = NO_OVERRIDES,
) -> int:
    """Replay every session to the baseline and the candidate concurrently, then diff.

    Exit 0 equivalent, 1 divergent, 2 bad input or an unreachable target,
    3 inconclusive (no difference, but the replay did not reproduce enough of
    the recording or noise made a route incomparable).
    Candidate maps (--map) apply to the candidate only.
    """
    settings = discover_config(config)
    baseline = baseline or settings.targets.baseline
    candidate = candidate or settings.targets.candidate
    if not baseline or not candidate:
        raise BadInput("shadow needs --baseline URL|recorded and --candidate URL")
    if noise_runs is not None and noise_runs < 0:
        raise BadInput("--noise-runs must be 0 or more")
    recorded = baseline == RECORDED_BASELINE
    noise = 0 if recorded else (1 if noise_runs is None else noise_runs)
    options = build_replay_options(
        settings,
        candidate,
        overrides,
        os.environ,
    )
    with CaptureStore.open(capture) as store, ProgressBar() as bar, _interruptible(store):
        for line in scenario_notes(store, options):
            console.note(line)
        result = asyncio.run(
            shadow_capture(
                store,
                baseline=baseline,
                candidate=candidate,
                options=options,
                config=with_dialects(settings.diff, dialect),
                noise_runs=noise,
                baseline_maps=tuple(parse_route_map(m) for m in baseline_maps or ()),
                prefix=prefix,
                progress=bar,
                verdict=settings.verdict,
            )
        )
    runs = [result.candidate_run]
    if result.baseline_run:
        runs.insert(0, result.baseline_run)
    console.note(f"runs stored in {capture}: {', '.join([*runs, *result.noise_runs])}")
    return emit_report(result.report, fmt, out, reports)


@contextlib.contextmanager
def _interruptible(store: CaptureStore) -> Iterator[None]:
    """Ctrl-C becomes one line naming the runs that kept their finished sessions."""
    before = {r.name for r in store.runs()}
    try:
        yield
    except KeyboardInterrupt:
        cut = [r for r in store.runs() if r.name not in before]
        if not cut:
            raise Interrupted("interrupted before any run started; nothing was stored") from None
        kept = ", ".join(
            f"{r.name} {r.sessions} of {r.settings.get('selected', r.sessions)}"
            + (" (marked interrupted)" if r.settings.get("interrupted") else "")
            for r in sorted(cut, key=lambda r: r.name)
        )
        raise Interrupted(
            f"interrupted: the runs keep the sessions that finished: {kept}, in {store.path}"
        ) from None
