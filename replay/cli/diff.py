"""``wsshadow diff``: compare a candidate run with the baseline in a capture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import app
from wsshadow.replay.cli.options import (
    CaptureArg,
    ConfigOpt,
    DialectOpt,
    ReportFileOpt,
    ReportFormat,
    ReportFormatOpt,
    ReportOutputOpt,
    read_capture,
    repeatable,
    with_dialects,
)
from wsshadow.replay.config import discover_config
from wsshadow.replay.diff.capture import diff_capture
from wsshadow.replay.errors import BadInput
from wsshadow.replay.report.build import exit_status
from wsshadow.replay.report.render import format_for_path, render, write_report

__all__ = ["diff", "emit_report"]


def emit_report(
    report: dict[str, Any],
    fmt: ReportFormat | None = None,
    out: Path | None = None,
    reports: list[Path] | None = None,
) -> int:
    """Write a report as ``diff`` and ``shadow`` do; returns the exit code (0, 1 or 3).

    Each of ``reports`` gets the format its extension names. The report in
    ``fmt`` (default text, or what ``out``'s extension names) goes to ``out``
    or to stdout, where text has colour only on a terminal. Raises BadInput
    for an unknown extension or an unwritable file.
    """
    for path in reports or ():
        write_report(report, path)
        console.note(f"report written to {path}")
    name = fmt.value if fmt is not None else (format_for_path(out) if out else "text")
    if out is None:
        color, width = console.report_style()
        console.write_text(render(report, name, color=color, width=width))
    else:
        write_report(report, out, name)
        console.note(f"{report['verdict']}: report written to {out}")
    return int(exit_status(report))


@app.command("diff")
def diff(
    capture: CaptureArg,
    baseline: Annotated[
        str,
        typer.Option(
            "--baseline", metavar="RUN", help="Baseline run name, or 'recorded' for the recording."
        ),
    ] = "recorded",
    candidate: Annotated[
        str,
        typer.Option("--candidate", metavar="RUN", help="Candidate run name.", show_default=False),
    ] = "",
    noise: Annotated[
        list[str] | None,
        repeatable(
            "--noise", "RUN", "Another baseline run, to learn what varies anyway (repeatable)."
        ),
    ] = None,
    config: ConfigOpt = None,
    dialect: DialectOpt = None,
    fmt: ReportFormatOpt = None,
    out: ReportOutputOpt = None,
    reports: ReportFileOpt = None,
) -> int:
    """Diff the candidate run's server streams against the baseline's.

    Exit 0 equivalent, 1 divergent, 3 inconclusive (see ``shadow``).
    """
    if not candidate:
        raise BadInput("diff needs --candidate RUN")
    settings = discover_config(config)
    if not capture.exists():
        raise BadInput(f"{capture}: no such capture file")
    with read_capture(capture) as store, console.progress("diffing") as tick:
        report = diff_capture(
            store,
            baseline=baseline,
            candidate=candidate,
            noise_runs=list(noise or ()),
            config=with_dialects(settings.diff, dialect),
            progress=tick,
            verdict=settings.verdict,
        )
    return emit_report(report, fmt, out, reports)
