"""``wsshadow serve``: play a capture's server side to real clients (a mock server)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Annotated

import typer

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.options import (
    CaptureArg,
    ConfigOpt,
    DialectOpt,
    read_capture,
    repeatable,
    with_dialects,
)
from wsshadow.replay.config import discover_config
from wsshadow.replay.errors import BadInput
from wsshadow.replay.serve.plan import MatchMode, OnMismatch, Pace, ServeOptions, select_sessions
from wsshadow.replay.serve.server import DEFAULT_PORT, MockServer, parse_listen, running_server

__all__ = ["serve"]


@app.command("serve")
def serve(
    capture: CaptureArg,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help=f"Address to listen on (':0' picks a free port) [default: 127.0.0.1:{DEFAULT_PORT}].",
            show_default=False,
        ),
    ] = f"127.0.0.1:{DEFAULT_PORT}",
    session: Annotated[
        list[str] | None,
        repeatable(
            "--session", "ID", "Serve only this recorded session (an id prefix; repeatable)."
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        repeatable("--route", "GLOB", "Serve only routes matching this glob (repeatable)."),
    ] = None,
    match: Annotated[
        MatchMode,
        typer.Option(
            "--match",
            help="strict: client messages equal the recorded ones after "
            "normalization; key: same event keys; loose: anything.",
        ),
    ] = MatchMode.STRICT,
    pace: Annotated[
        Pace,
        typer.Option(
            "--pace",
            help="recorded: keep the recorded gaps; asap: send each server "
            "message as soon as the client messages before it came.",
        ),
    ] = Pace.ASAP,
    speed: Annotated[
        float,
        typer.Option("--speed", metavar="X", help="With --pace recorded: gaps divided by X."),
    ] = 1.0,
    on_mismatch: Annotated[
        OnMismatch,
        typer.Option(
            "--on-mismatch",
            help="close: end the connection with 1008; skip: drop "
            "the client message; continue: accept it as the recorded one.",
        ),
    ] = OnMismatch.CLOSE,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse",
            help="Serve any matching session to any number of clients "
            "(default: each recorded session once).",
        ),
    ] = False,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="NAME",
            help="Store the served connections as this run [default: serve-<time>].",
            show_default=False,
        ),
    ] = None,
    no_record: Annotated[
        bool,
        typer.Option("--no-record", help="Do not store the served connections in the capture."),
    ] = False,
    config: ConfigOpt = None,
    dialect: DialectOpt = None,
) -> int:
    """Serve a capture's recorded server side to real clients, as a mock server."""
    if not speed > 0:
        raise BadInput(f"--speed {speed}: expected a number above 0")
    host, port = parse_listen(listen)
    settings = discover_config(config)
    diff_config = with_dialects(settings.diff, dialect)
    options = ServeOptions(match, pace, speed, on_mismatch, reuse)
    if not capture.exists():
        raise BadInput(f"{capture}: no such capture file")
    with (read_capture(capture) if no_record else CaptureStore.open(capture)) as store:
        sessions = select_sessions(store.iter_sessions(), session or (), route or ())
        if not sessions:
            raise BadInput(f"{capture}: no recorded session matches the filters")
        name = None if no_record else (run or time.strftime("serve-%Y%m%dT%H%M%SZ", time.gmtime()))
        if name is not None and store.get_run(name) is not None:
            raise BadInput(f"{capture}: a run called {name!r} exists already (choose --run NAME)")
        server = MockServer(
            sessions,
            config=diff_config,
            options=options,
            store=None if no_record else store,
            run=name,
            log=console.note,
        )
        asyncio.run(_serve(server, host, port, len(sessions)))
        stats = server.stats
        console.note(
            f"served {stats.connections} connection(s), {stats.messages_served} message(s), "
            f"{len(stats.mismatches)} mismatch(es)"
            + (f"; stored as run {name}" if name is not None else "")
        )
    return 0


async def _serve(server: MockServer, host: str, port: int, count: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with running_server(server, host, port) as url:
        routes = ", ".join(server.pool.routes)
        console.note(f"serving {count} recorded session(s) on {routes}")
        typer.echo(url, nl=True)
        await stop.wait()
    console.note("stopped")
