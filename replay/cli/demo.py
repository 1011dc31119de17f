"""``wsshadow demo``: the four-routes-to-one consolidation, recorded, shadowed and reported."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.report.render import render

if TYPE_CHECKING:
    from wsshadow.recorders.proxy import RecordingProxy

__all__ = ["demo"]


def _recorder(upstream: str, store: CaptureStore) -> RecordingProxy:
    from wsshadow.recorders.proxy import RecordingProxy  # aiohttp: loaded only when the demo runs

    return RecordingProxy(upstream, store, listen=("127.0.0.1", 0))


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for the capture and the reports.")
    ] = Path("wsshadow-demo"),
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the demo's wsshadow.toml and exit.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", help="Fix the scripted traffic (random by default)."),
    ] = None,
    causal_timeout: Annotated[
        float | None,
        typer.Option(
            "--causal-timeout",
            metavar="SECONDS",
            min=0.0,
            help="Seconds past the recorded gap a replayed message waits for the server "
            "(default: the demo config's 0.5; more on a loaded machine).",
        ),
    ] = None,
) -> int:
    """Record a chat backend's legacy routes, shadow its consolidated rewrite, report.

    Exits 0 when the demo ran: the divergent verdict is the demo's finding.
    """
    # The demo's servers (aiohttp) load only when the demo runs, not for every command.
    from wsshadow.replay.demo import demo_config_path, demo_config_text

    if show_config:
        console.write_text(demo_config_text())
        return 0
    # The legacy factory route never selects a subprotocol, on purpose; aiohttp
    # warns about that on every such connection, which is noise in the demo.
    logging.getLogger("aiohttp.websocket").setLevel(logging.ERROR)
    console.note("starting the legacy and the consolidated chat servers on 127.0.0.1")
    from wsshadow.replay.demo.run import run_demo

    result = asyncio.run(run_demo(out, _recorder, seed=seed, causal_timeout=causal_timeout))
    t = result.traffic
    console.note(
        f"recorded {len(t.sessions)} sessions ({t.messages_sent} client and "
        f"{t.messages_received} server messages) through the proxy in front of "
        f"{result.legacy_url}"
    )
    runs = [result.shadow.baseline_run, result.shadow.candidate_run, *result.shadow.noise_runs]
    console.note(
        f"shadow-replayed them against {result.consolidated_url} and twice against the "
        f"legacy server (runs {', '.join(r for r in runs if r)})"
    )
    color, width = console.report_style()
    console.write_text(render(result.report, "text", color=color, width=width))
    console.write_text(
        "\nFiles:\n"
        + "".join(f"  {name:<12} {path}\n" for name, path in result.files.items())
        + f"  {'config':<12} {demo_config_path()}  (wsshadow demo --show-config)\n"
        + f"\nOpen {result.files['report.html']} in a browser for the side-by-side streams.\n"
    )
    return 0
