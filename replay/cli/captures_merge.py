"""``wsshadow captures merge``: combine the captures of several shards into one."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from wsshadow.replay.capture.merge import merge_captures
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import captures_app
from wsshadow.replay.cli.options import read_capture
from wsshadow.replay.errors import BadInput

__all__ = ["captures_merge"]


@captures_app.command("merge")
def captures_merge(
    out: Annotated[Path, typer.Argument(help="Capture to merge into (created if missing).")],
    inputs: Annotated[
        list[Path], typer.Argument(metavar="IN", help="Captures to merge from.", show_default=False)
    ],
) -> None:
    """Copy the sessions and runs of several captures into OUT (runs of one name are combined)."""
    if any(p.resolve() == out.resolve() for p in inputs if p.exists()):
        raise BadInput(f"{out}: cannot merge a capture into itself")
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(read_capture(p)) for p in inputs]
        target = stack.enter_context(CaptureStore.open(out, create=True))
        result = merge_captures(target, sources)
    runs = ", ".join(result.runs) or "none"
    console.note(
        f"merged {result.sessions} sessions into {out} ({result.duplicates} already there); "
        f"runs: {runs}"
    )
