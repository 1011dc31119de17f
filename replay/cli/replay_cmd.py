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
    CaOpt,
    CaptureArg,
    CarryOpt,
    CausalTimeoutOpt,
    ConcurrencyOpt,
    ConfigOpt,
    CredentialOpt,
    HeaderOpt,
    IdleTimeoutOpt,
    MapOpt,
    NoCarryOverOpt,
    PaceOpt,
    RateOpt,
    RouteOpt,
    SessionOpt,
    ShardOpt,
    SpeedOpt,
)
from wsshadow.replay.cli.progress import FollowView, ProgressBar, print_run_summary
from wsshadow.replay.config import discover_config
from wsshadow.replay.engine.options import ReplayOverrides, build_replay_options
from wsshadow.replay.engine.run import ReplayObserver, ReplayOptions, RunResult, replay_capture
from wsshadow.replay.errors import BadInput, Interrupted, Unreachable

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
def replay(
    capture: CaptureArg,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="ws:// or wss:// URL to replay against [default: [targets].candidate].",
            show_default=False,
        ),
    ] = None,
    maps: MapOpt = None,
    pace: PaceOpt = None,
    speed: SpeedOpt = None,
    concurrency: ConcurrencyOpt = None,
    rate: RateOpt = None,
    sessions: SessionOpt = None,
    routes: RouteOpt = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run name (default replay-<UTC time>).")
    ] = None,
    headers: HeaderOpt = None,
    credentials: CredentialOpt = None,
    ca: CaOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="With one --session: live and recorded side by side.")
    ] = False,
    shard: ShardOpt = None,
    causal_timeout: CausalTimeoutOpt = None,
    idle_timeout: IdleTimeoutOpt = None,
    carry: CarryOpt = None,
    no_carry_over: NoCarryOverOpt = False,
    config: ConfigOpt = None,
) -> int:
    """Replay each recorded session's client side against TARGET and store the server's side."""
    if follow and len(sessions or ()) != 1:
        raise BadInput("--follow needs exactly one --session ID")
    settings = discover_config(config)
    target = target or settings.targets.candidate
    if not target:
        raise BadInput("replay needs --target URL (or [targets].candidate in the config)")
    options = build_replay_options(
        settings,
        target,
        ReplayOverrides(
            maps=tuple(maps) if maps is not None else None,
            pace=pace,
            speed=speed,
            concurrency=concurrency,
            rate=rate,
            headers=tuple(headers) if headers is not None else None,
            credentials=tuple(credentials or ()),
            ca=ca,
            causal_timeout=causal_timeout,
            idle_timeout=idle_timeout,
            carry=tuple(carry or ()),
            no_carry_over=no_carry_over,
            session_ids=tuple(sessions or ()),
            routes=tuple(routes or ()),
            shard=shard,
            follow=follow,
        ),
        os.environ,
    )
    with CaptureStore.open(capture) as store:
        name = run or default_run_name(store, time.time())
        try:
            result = _run(store, options, name)
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


def _run(store: CaptureStore, options: ReplayOptions, name: str) -> RunResult:
    observer: ReplayObserver
    if options.follow:
        observer = FollowView()
        return asyncio.run(replay_capture(store, options, run=name, progress=observer))
    with ProgressBar() as bar:
        return asyncio.run(replay_capture(store, options, run=name, progress=bar))
