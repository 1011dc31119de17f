"""The typer applications every command module registers on, and how their help reads.

``WorkflowGroup`` lists the commands in the order a user runs them, gives
each its whole one-line summary, and names every value with a word
(``FILE``, ``URL``, ``FROM=TO``), never a type such as ``<list[str]>``.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated

import typer
from typer import _click as click
from typer.core import TyperGroup

from wsshadow.replay.version import __version__

__all__ = ["WORKFLOW", "WorkflowGroup", "app", "captures_app"]

WORKFLOW = (
    "record", "replay", "shadow", "diff", "report", "serve", "captures", "demo",
    "ls", "show", "scenarios", "export", "import", "merge",
)  # fmt: skip
"""Commands in the order of the pipeline (then ``captures``' own); others follow, by name."""

_WORDS = {"path": "FILE", "str": "TEXT", "int": "N", "float": "NUMBER"}


def _word_metavars(command: click.Command) -> None:
    """Give each option and argument without a metavar a word for its value.

    typer shows a value's Python type (``<list[str]>``) unless told a
    metavar; the declarations that do not give one get FILE, TEXT, N, NUMBER
    or the parameter's name. Choices keep their ``[a|b|c]``.
    """
    for param in command.params:
        desc = getattr(param, "type_descriptor", None)
        if desc is not None and param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            # typer lists an argument as "CAPTURE <path>": the word says it, not the type
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
            continue
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if desc is None or desc.is_choice:
            continue
        annotation = desc.annotation
        if desc.is_list:
            (annotation,) = typing.get_args(annotation)
        is_path = desc.is_path or (isinstance(annotation, type) and issubclass(annotation, Path))
        kind = "path" if is_path else getattr(annotation, "__name__", "")
        param.metavar = _WORDS.get(kind, (param.name or "value").upper())


class WorkflowGroup(TyperGroup):
    """A command group whose help lists commands in workflow order, summaries uncut."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        order = {name: i for i, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda n: (order.get(n, len(WORKFLOW)), n))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _word_metavars(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=300)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


_CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="wsshadow",
    cls=WorkflowGroup,
    help="Record WebSocket sessions, replay them against a new server, diff the event streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
captures_app = typer.Typer(
    cls=WorkflowGroup,
    help="List, show, import, export and merge the sessions in a capture.",
    no_args_is_help=True,
    context_settings=_CONTEXT,
)
app.add_typer(captures_app, name="captures")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wsshadow {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Record WebSocket sessions, replay them against a new server, diff the event streams.

    Exit codes: 0 equivalent, 1 divergent, 2 bad input or an unreachable target.
    """
