"""Options shared by several commands, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

import typer

from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.config import DiffConfig, RouteOverride
from wsshadow.replay.diff.dialects import get_dialect
from wsshadow.replay.engine.pacing import Pace
from wsshadow.replay.errors import BadInput

__all__ = [
    "CaOpt",
    "CaptureArg",
    "CarryOpt",
    "CausalTimeoutOpt",
    "ConcurrencyOpt",
    "ConfigOpt",
    "CredentialOpt",
    "DialectOpt",
    "HeaderOpt",
    "IdleTimeoutOpt",
    "MapOpt",
    "NoCarryOverOpt",
    "NoRedact",
    "PaceOpt",
    "RateOpt",
    "RedactField",
    "ReportFileOpt",
    "ReportFormat",
    "ReportFormatOpt",
    "ReportOutputOpt",
    "RouteOpt",
    "RunOpt",
    "SessionOpt",
    "ShardOpt",
    "SpeedOpt",
    "make_redactor",
    "with_dialects",
]

CaptureArg = Annotated[Path, typer.Argument(help="Capture file (SQLite).", show_default=False)]
NoRedact = Annotated[
    bool,
    typer.Option(
        "--no-redact",
        help="Keep credentials (Authorization, cookies, tokens) in the capture. Off by default.",
    ),
]
RedactField = Annotated[
    list[str] | None,
    typer.Option(
        "--redact-field",
        help="Another JSON field / query parameter name to redact (repeatable).",
        show_default=False,
    ),
]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", help="A replay run's sessions instead of the recorded ones."),
]

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (default: ./wsshadow.toml, else [tool.wsshadow] in ./pyproject.toml).",
        show_default=False,
    ),
]


class ReportFormat(StrEnum):
    """The formats ``--format`` accepts."""

    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"


ReportFormatOpt = Annotated[
    ReportFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Report format [default: text, or the --output file's extension].",
        case_sensitive=False,
        show_default=False,
    ),
]
ReportOutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the report to this file instead of stdout."),
]
ReportFileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--report",
        help="Also write the report to FILE, format from the extension: "
        ".json .xml (JUnit) .md .html .txt (repeatable).",
        show_default=False,
    ),
]


DialectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dialect",
        help="ROUTE=NAME: decode ROUTE's messages as NAME (socketio, graphql, jsonrpc, stomp, "
        "phoenix, signalr, actioncable, mqtt, generic, json, raw) instead of detecting it "
        "per session; NAME alone for every route (repeatable).",
        show_default=False,
    ),
]


def with_dialects(diff: DiffConfig, items: list[str] | None) -> DiffConfig:
    """``diff`` with ``--dialect ROUTE=NAME`` overrides; raises BadInput for an unknown name."""
    if not items:
        return diff
    routes = dict(diff.routes)
    default = diff.dialect
    for item in items:
        route, sep, name = item.rpartition("=")
        get_dialect(name)
        if not sep:
            default = name
            continue
        if not route.startswith("/"):
            raise BadInput(f"--dialect {item!r}: expected ROUTE=NAME with ROUTE starting with /")
        routes[route] = replace(routes.get(route, RouteOverride()), dialect=name)
    return replace(diff, routes=MappingProxyType(routes), dialect=default)


# ---- replay settings, shared by `replay` and `shadow` (None: take the config's value) ----

Many = list[str] | None
MapOpt = Annotated[
    Many, typer.Option("--map", help="Route map FROM=TO, like /ws/factory=/ws?mode=factory.")
]
PaceOpt = Annotated[
    Pace | None,
    typer.Option(
        "--pace", help="When to send client messages [default: causal].", show_default=False
    ),
]
SpeedOpt = Annotated[
    float | None, typer.Option("--speed", help="Time scale for --pace recorded [default: 1].")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", help="Sessions at once [default: 50].")
]
RateOpt = Annotated[
    float | None,
    typer.Option("--rate", help="Sessions started per second [default: 0, unlimited]."),
]
SessionOpt = Annotated[
    Many, typer.Option("--session", help="Only this session id or prefix (repeatable).")
]
RouteOpt = Annotated[
    Many, typer.Option("--route", help="Only sessions whose route matches this glob.")
]
HeaderOpt = Annotated[
    Many, typer.Option("--header", help="'Name: value' replacing a recorded header.")
]
CredentialOpt = Annotated[
    Many,
    typer.Option("--credential", help="NAME=VALUE filling ${redacted:KIND:NAME}; ${VAR} ok."),
]
CaOpt = Annotated[
    Path | None, typer.Option("--ca", help="CA certificates (PEM) for a wss:// target.")
]
ShardOpt = Annotated[
    str | None, typer.Option("--shard", help="I/N: replay a stable 1/N of the sessions.")
]
CausalTimeoutOpt = Annotated[
    float | None,
    typer.Option("--causal-timeout", help="Seconds past the recorded gap to wait [default: 2]."),
]
IdleTimeoutOpt = Annotated[
    float | None,
    typer.Option("--idle-timeout", help="Server idle this long ends a session [default: 1]."),
]
CarryOpt = Annotated[
    Many,
    typer.Option("--carry", help="Explicit carry-over SERVER_PATH=CLIENT_PATH[@EVENT]."),
]
NoCarryOverOpt = Annotated[
    bool, typer.Option("--no-carry-over", help="Replay client messages exactly as recorded.")
]


def make_redactor(no_redact: bool, fields: list[str] | None) -> Redactor:
    """The redactor the redaction options ask for."""
    return Redactor(enabled=not no_redact, extra_fields=tuple(fields or ()))
