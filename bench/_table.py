"""Small helpers shared by the bench scripts: medians, spreads and a plain table."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["SUMMARY", "machine_line", "median_spread", "print_table", "repeat", "summary"]

SUMMARY = "summary: "


def repeat(fn: Callable[[], float], runs: int) -> list[float]:
    """Call ``fn`` (which returns a rate or a time) ``runs`` times and collect the results."""
    return [fn() for _ in range(runs)]


def median_spread(values: Sequence[float]) -> tuple[float, float]:
    """The median and the spread (max - min) / median, as a fraction."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return med, spread


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print a Markdown table (readable on a terminal too) and return it."""
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def machine_line() -> str:
    """Cores, Python and date, for the top of a results file."""
    import os

    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def summary(area: str, what: str, figure: str, target: str = "", met: bool | None = None) -> None:
    """Print one headline figure; bench/run_all.py gathers these into the combined table."""
    verdict = "" if met is None else ("met" if met else "NOT met")
    print(f"{SUMMARY}{area} | {what} | {figure} | {target} | {verdict}", flush=True)
