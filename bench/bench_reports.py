"""Benchmark: rendering a synthetic 10,000-session report in every format.

Prints the median of 5 runs per format and its ratio to rendering the JSON
itself (json.dumps of the same dict), measured in the same run.
Run: .venv/bin/python bench/bench_reports.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

# The repository first, so that tests.report (the fixture reports) imports.
sys.path[0:1] = [str(Path(__file__).resolve().parents[1])]

from bench._table import summary  # noqa: E402
from tests.report.report_fixtures import large_report  # noqa: E402
from wsshadow.replay.report.render import render  # noqa: E402

RUNS = 5


def main() -> None:
    report = large_report(10_000)
    results = {}
    for fmt in ("json", "text", "junit", "markdown", "html"):
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            text = render(report, fmt)
            times.append(time.perf_counter() - start)
        results[fmt] = (statistics.median(times), len(text))
    base = results["json"][0]
    print(f"{'format':<10}{'median':>10}{'× json':>9}{'size':>12}   (10,000 sessions, {RUNS} runs)")
    for fmt, (median, size) in results.items():
        print(f"{fmt:<10}{median * 1000:>8.0f}ms{median / base:>9.2f}{size:>12,}")
    html = results["html"]
    summary(
        "reports",
        "HTML report of 10,000 sessions",
        f"{html[0] * 1000:.0f} ms, {html[1] / 1e6:.1f} MB",
    )


if __name__ == "__main__":
    main()
