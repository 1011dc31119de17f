"""``wsshadow report``: re-render a saved JSON report in another format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.options import ReportFormatOpt, ReportOutputOpt
from wsshadow.replay.report.render import format_for_path, load_report, render, write_report

__all__ = ["report"]


@app.command("report")
def report(
    source: Annotated[
        Path, typer.Argument(help="A JSON report (from diff or shadow).", show_default=False)
    ],
    fmt: ReportFormatOpt = None,
    out: ReportOutputOpt = None,
) -> None:
    """Render a saved JSON report as text, json, junit, markdown or html.

    Without --format the format is text on stdout, or the --output file's
    extension (.json .xml .md .html .txt).

    Exits 0 once the report is rendered, whatever its verdict (the verdict's
    exit code belongs to diff and shadow); 2 when the file is not a report.
    """
    data = load_report(source)
    # No --format: the --output file's extension decides, else text.
    name = fmt.value if fmt is not None else (format_for_path(out) if out else "text")
    if out is not None:
        write_report(data, out, name)
        console.note(f"wrote the {name} report to {out}")
        return
    color, width = console.report_style() if name == "text" else (False, 100)
    console.write_text(render(data, name, color=color, width=width))
