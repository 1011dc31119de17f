"""``wsshadow diff``: compare a candidate run with the baseline in a capture."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from replay import output
from replay.cli.app import app
from replay.cli.options import CaptureArg, ConfigOpt, FormatOpt, OutputOpt, ReportOpt
from replay.config import discover_config
from replay.differ import diff_capture
from replay.errors import BadInput
from replay.report import RENDERERS, exit_status, write_report
from replay.store import CaptureStore

__all__ = ["diff", "emit_report"]


def emit_report(
    report: dict[str, Any],
    fmt: str = "text",
    out: Path | None = None,
    reports: list[Path] | None = None,
) -> int:
    """Write a report as ``diff`` and ``shadow`` do; returns the exit code (0 or 1).

    ``fmt`` goes to stdout, or to ``out``; each of ``reports`` gets the format
    its extension names. Raises BadInput for an unknown format or an
    unwritable file.
    """
    if fmt not in RENDERERS:
        raise BadInput(f"--format: expected one of {', '.join(sorted(RENDERERS))}, got {fmt!r}")
    for path in reports or ():
        write_report(report, path)
    if out is None:
        sys.stdout.write(RENDERERS[fmt](report))
        sys.stdout.flush()
    else:
        write_report(report, out, fmt)
        output.note(f"{report['verdict']}: report written to {out}")
    return int(exit_status(report))


@app.command("diff")
def diff(
    capture: CaptureArg,
    baseline: Annotated[
        str,
        typer.Option("--baseline", help="Baseline run name, or 'recorded' for the recording."),
    ] = "recorded",
    candidate: Annotated[
        str, typer.Option("--candidate", help="Candidate run name.", show_default=False)
    ] = "",
    noise: Annotated[
        list[str] | None,
        typer.Option(
            "--noise",
            help="Another baseline run, to learn what varies anyway (repeatable).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = "text",
    out: OutputOpt = None,
    reports: ReportOpt = None,
) -> int:
    """Diff the candidate run's server streams against the baseline's; exit 0 equivalent, 1 divergent."""
    if not candidate:
        raise BadInput("diff needs --candidate RUN")
    if fmt not in RENDERERS:
        raise BadInput(f"--format: expected one of {', '.join(sorted(RENDERERS))}, got {fmt!r}")
    settings = discover_config(config)
    if not capture.exists():
        raise BadInput(f"{capture}: no such capture file")
    with CaptureStore.open(capture) as store, output.progress("diffing") as tick:
        report = diff_capture(
            store,
            baseline=baseline,
            candidate=candidate,
            noise_runs=list(noise or ()),
            config=settings.diff,
            progress=tick,
        )
    return emit_report(report, fmt, out, reports)
