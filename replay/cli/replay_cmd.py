"""``wsshadow replay``: replay a capture's client sides against a target, as a named run."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated

import typer

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.options import (
    CaptureArg,
    ConfigOpt,
    with_replay_options,
)
from wsshadow.replay.cli.progress import FollowView, ProgressBar, print_run_summary
from wsshadow.replay.config import DiffConfig, discover_config
from wsshadow.replay.engine.options import build_replay_options
from wsshadow.replay.engine.run import ReplayObserver, ReplayOptions, RunResult, replay_capture
from wsshadow.replay.engine.scenarios import scenario_notes
from wsshadow.replay.errors import BadInput, Interrupted, Unreachable
from wsshadow.replay.options import NO_OVERRIDES, ReplayOverrides

__all__ = ["default_run_name", "interrupted_run", "replay"]


def interrupted_run(store: CaptureStore, name: str) -> Interrupted:
    """The one line for a replay stopped by Ctrl-C: what its run kept."""
    row = store.get_run(name)
    if row is None:
        return Interrupted("interrupted before the run started; nothing was stored")
    total = row.settings.get("selected", row.sessions)
    return Interrupted(
        f"interrupted: run {name!r} keeps the {row.sessions} of {total} sessions that "
        f"finished, marked interrupted in {store.path}"
    )


def default_run_name(store: CaptureStore, now: float) -> str:
    """``replay-YYYYMMDDTHHMMSSZ``, with ``-2``, ``-3`` ... when that name is taken."""
    base = "replay-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    name, n = base, 1
    while store.get_run(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


@app.command("replay")
@with_replay_options
def replay(
    capture: CaptureArg,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="URL",
            help="ws:// or wss:// URL to replay against [default: [targets].candidate].",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="NAME", help="Run name (default replay-<UTC time>)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="With one --session: live and recorded side by side.")
    ] = False,
    *,
    overrides: ReplayOverrides = NO_OVERRIDES,
    config: ConfigOpt = None,
) -> int:
    """Replay each recorded session's client side against TARGET and store the server's side."""
    if follow and len(overrides.get("session_ids", ())) != 1:
        raise BadInput("--follow needs exactly one --session ID")
    settings = discover_config(config)
    target = target or settings.targets.candidate
    if not target:
        raise BadInput("replay needs --target URL (or [targets].candidate in the config)")
    options = build_replay_options(
        settings,
        target,
        ReplayOverrides(overrides.values, follow=follow),
        os.environ,
    )
    with CaptureStore.open(capture) as store:
        name = run or default_run_name(store, time.time())
        for line in scenario_notes(store, options):
            console.note(line)
        try:
            result = _run(store, options, name, settings.diff)
        except KeyboardInterrupt:
            raise interrupted_run(store, name) from None
    print_run_summary(result)
    if result.unreachable:
        raise Unreachable(
            f"{target}: the target accepted none of {result.sessions} sessions "
            f"({result.first_error()})"
        )
    console.note(
        f"stored as run {name!r} in {capture} (wsshadow captures ls {capture} --run {name})"
    )
    return 0


def _run(store: CaptureStore, options: ReplayOptions, name: str, diff: DiffConfig) -> RunResult:
    observer: ReplayObserver
    if options.follow:
        observer = FollowView(config=diff)
        return asyncio.run(replay_capture(store, options, run=name, progress=observer))
    with ProgressBar() as bar:
        return asyncio.run(replay_capture(store, options, run=name, progress=bar))
