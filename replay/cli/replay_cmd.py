"""``wsshadow replay``: replay a capture's client sides against a target, as a named run."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from replay import output
from replay.carryover import CarryRule
from replay.cli.app import app
from replay.cli.options import CaptureArg
from replay.credentials import parse_credential
from replay.engine import (
    ReplayObserver,
    ReplayOptions,
    RunResult,
    parse_header,
    parse_shard,
    replay_capture,
)
from replay.errors import BadInput, Unreachable
from replay.pacing import Pace
from replay.replay_output import FollowView, ProgressBar, print_run_summary
from replay.store import CaptureStore
from replay.targets import parse_route_map

__all__ = ["default_run_name", "replay"]

Many = list[str] | None


def default_run_name(store: CaptureStore, now: float) -> str:
    """``replay-YYYYMMDDTHHMMSSZ``, with ``-2``, ``-3`` ... when that name is taken."""
    base = "replay-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    name, n = base, 1
    while store.get_run(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _carry_rule(text: str) -> CarryRule:
    parts = text.split("=")
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"carry-over rule {text!r}: expected SERVER_PATH=CLIENT_PATH[@EVENT]")
    client, _, event = parts[1].partition("@")
    return CarryRule(parts[0], client, event or None)


@app.command("replay")
def replay(
    capture: CaptureArg,
    target: Annotated[str, typer.Option("--target", help="ws:// or wss:// URL to replay against.")],
    maps: Annotated[
        Many, typer.Option("--map", help="Route map FROM=TO, like /ws/factory=/ws?mode=factory.")
    ] = None,
    pace: Annotated[
        Pace, typer.Option("--pace", help="When to send client messages.")
    ] = Pace.CAUSAL,
    speed: Annotated[float, typer.Option("--speed", help="Time scale for --pace recorded.")] = 1.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Sessions at once.")] = 50,
    rate: Annotated[
        float, typer.Option("--rate", help="Sessions started per second (0: unlimited).")
    ] = 0.0,
    sessions: Annotated[
        Many, typer.Option("--session", help="Only this session id or prefix (repeatable).")
    ] = None,
    routes: Annotated[
        Many, typer.Option("--route", help="Only sessions whose route matches this glob.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run name (default replay-<UTC time>).")
    ] = None,
    headers: Annotated[
        Many, typer.Option("--header", help="'Name: value' replacing a recorded header.")
    ] = None,
    credentials: Annotated[
        Many,
        typer.Option("--credential", help="NAME=VALUE filling ${redacted:KIND:NAME}; ${VAR} ok."),
    ] = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="CA certificates (PEM) for a wss:// target.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="With one --session: live and recorded side by side.")
    ] = False,
    shard: Annotated[
        str | None, typer.Option("--shard", help="I/N: replay a stable 1/N of the sessions.")
    ] = None,
    causal_timeout: Annotated[
        float, typer.Option("--causal-timeout", help="Seconds past the recorded gap to wait.")
    ] = 2.0,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Server idle this long ends a session.")
    ] = 1.0,
    carry: Annotated[
        Many,
        typer.Option("--carry", help="Explicit carry-over SERVER_PATH=CLIENT_PATH[@EVENT]."),
    ] = None,
    no_carry_over: Annotated[
        bool, typer.Option("--no-carry-over", help="Replay client messages exactly as recorded.")
    ] = False,
) -> int:
    """Replay each recorded session's client side against TARGET and store the server's side."""
    if follow and len(sessions or ()) != 1:
        raise BadInput("--follow needs exactly one --session ID")
    options = ReplayOptions(
        target=target,
        maps=tuple(parse_route_map(m) for m in maps or ()),
        pace=pace,
        speed=speed,
        concurrency=concurrency,
        rate=rate,
        session_ids=tuple(sessions or ()),
        routes=tuple(routes or ()),
        headers=tuple(parse_header(h) for h in headers or ()),
        credentials=dict(parse_credential(c) for c in credentials or ()),
        env=dict(os.environ),
        ca=ca,
        causal_timeout=causal_timeout,
        idle_timeout=idle_timeout,
        shard=parse_shard(shard) if shard else None,
        follow=follow,
        carry_over=not no_carry_over,
        carry_rules=tuple(_carry_rule(c) for c in carry or ()),
    )
    with CaptureStore.open(capture) as store:
        name = run or default_run_name(store, time.time())
        result = _run(store, options, name)
    print_run_summary(result)
    if result.unreachable:
        raise Unreachable(
            f"{target}: the target accepted none of {result.sessions} sessions "
            f"({result.first_error()})"
        )
    output.note(
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
