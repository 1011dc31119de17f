"""``wsshadow record``: the recording proxy in front of a legacy WebSocket server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.options import CaptureArg, NoRedact, RedactField, make_redactor, repeatable
from wsshadow.replay.errors import BadInput

__all__ = ["record"]

_FileOpt = Annotated[Path | None, typer.Option(show_default=False)]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (about 1.3x the relay's throughput), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@app.command("record")
def record(
    capture: CaptureArg,
    upstream: Annotated[
        str,
        typer.Option(
            "--upstream", metavar="URL", help="Legacy server, ws://HOST:PORT or wss://..."
        ),
    ],
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Address to listen on, HOST:PORT.")
    ] = "127.0.0.1:8765",
    route: Annotated[
        list[str] | None,
        repeatable("--route", "PATH=UPSTREAM_PATH", "Map a client path to an upstream path."),
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            metavar="URL",
            help="Candidate server to mirror live traffic to (run 'mirror').",
        ),
    ] = None,
    max_message_size: Annotated[
        int,
        typer.Option("--max-message-size", help="Largest message in bytes; bigger closes 1009."),
    ] = 16 * 2**20,
    stall_timeout: Annotated[
        float,
        typer.Option(
            "--stall-timeout",
            help="Seconds a peer may leave data unread before its session is cut.",
        ),
    ] = 60.0,
    handshake_read_timeout: Annotated[
        float,
        typer.Option(
            "--handshake-read-timeout",
            help="Seconds a client has to send its whole request head (then 408).",
        ),
    ] = 10.0,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            help="Open connections at most (more get 503) [default: (open-file limit - 64) / 3].",
            show_default=False,
        ),
    ] = None,
    upstream_ca: Annotated[
        Path | None, typer.Option("--upstream-ca", help="CA bundle to verify a wss:// upstream.")
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Certificate to serve TLS (wss://).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Key of --tls-cert.")] = None,
    no_redact: NoRedact = False,
    redact_field: RedactField = None,
) -> None:
    """Proxy WebSocket clients to UPSTREAM and record every session into CAPTURE.

    Runs until SIGINT or SIGTERM, then closes clients with 1001, writes
    everything and prints what it recorded.
    """
    for option, path in (
        ("--upstream-ca", upstream_ca),
        ("--tls-cert", tls_cert),
        ("--tls-key", tls_key),
    ):
        if path is not None and not path.is_file():
            raise BadInput(f"{option} {path}: no such file")
    # Imported here: aiohttp and the proxy cost every other command half a second.
    from wsshadow.recorders.proxy import (
        RecordingProxy,
        parse_listen,
        parse_routes,
        serve_until_signalled,
    )

    proxy = RecordingProxy(
        upstream,
        capture,
        listen=parse_listen(listen),
        routes=parse_routes(route or ()),
        mirror=mirror,
        max_message_size=max_message_size,
        stall_timeout=stall_timeout,
        handshake_read_timeout=handshake_read_timeout,
        max_connections=max_connections,
        upstream_ca=upstream_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        redactor=make_redactor(no_redact, redact_field),
    )

    def ready(p: RecordingProxy) -> None:
        extra = f", mirroring to {mirror}" if mirror else ""
        console.note(f"recording {p.url} -> {upstream} into {capture}{extra}")

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            stats = runner.run(serve_until_signalled(proxy, ready))
    except OSError as e:
        raise BadInput(f"--listen {listen}: cannot listen ({e.strerror or e})") from None
    line = (
        f"recorded {stats.sessions} sessions, {stats.messages} messages, "
        f"{stats.bytes} bytes, {stats.dropped} dropped"
    )
    if mirror:
        line += (
            f"; mirror: {stats.mirror_sessions} sessions, {stats.mirror_errors} errors, "
            f"{stats.mirror_dropped} dropped"
        )
    if stats.handshake_timeouts or stats.refused_connections:
        line += (
            f"; {stats.handshake_timeouts} connections timed out before their handshake, "
            f"{stats.refused_connections} refused at the connection limit"
        )
    console.note(line)
