"""Options shared by several commands, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from replay.redact import Redactor

__all__ = [
    "CaptureArg",
    "ConfigOpt",
    "NoRedact",
    "RedactField",
    "ReportFileOpt",
    "ReportFormat",
    "ReportFormatOpt",
    "ReportOutputOpt",
    "RunOpt",
    "make_redactor",
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


def make_redactor(no_redact: bool, fields: list[str] | None) -> Redactor:
    """The redactor the redaction options ask for."""
    return Redactor(enabled=not no_redact, extra_fields=tuple(fields or ()))
