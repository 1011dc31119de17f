"""The typer applications every command module registers on."""

from __future__ import annotations

import typer

__all__ = ["app", "captures_app"]

app = typer.Typer(
    name="wsshadow",
    help="Record WebSocket sessions, replay them against a new server, diff the event streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
captures_app = typer.Typer(
    help="List, show, import and export the sessions in a capture.",
    no_args_is_help=True,
)
app.add_typer(captures_app, name="captures")
