"""`make bench`: run every benchmark script in bench/ and print one combined table.

Each script prints Markdown tables (medians, spreads, ratios against a
baseline measured in the same run) and `summary:` lines with its headline
figures. This runner prints the tables as they come, then one combined
table of the headline figures with their targets, and writes everything,
under a line naming the machine, to bench/results.md. Some scripts get
shorter settings here than their own defaults so that the whole run stays
under 15 minutes on a 2-core machine (ARGS below).

    .venv/bin/python bench/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._table import SUMMARY, machine_line  # noqa: E402

# Order: cheap first, so a partial run still says something.
ORDER = [
    "bench_reports",
    "store_write",
    "demo_e2e",
    "asgi_recorder",
    "replay",
    "replay_concurrency",
    "proxy",
    "diff",
    "scenarios",
]
# Settings for the combined run (each script's own defaults may run longer).
ARGS: dict[str, list[str]] = {
    "store_write": ["--runs", "5", "--frames", "100000", "--naive-frames", "2000"],
    "replay": ["--runs", "5"],
    "replay_concurrency": ["--runs", "5"],
    "proxy": ["--runs", "5"],
    "diff": ["--sessions", "10000", "--naive-sample", "100"],
}


def scripts(only: list[str]) -> list[Path]:
    found = {p.stem: p for p in HERE.glob("*.py") if not p.stem.startswith("_")}
    found.pop("run_all", None)
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return [found[n] for n in names if not only or n in only]


def replay_summary(stdout: str) -> list[str]:
    """bench/replay.py prints no summary line: take its wsshadow row's paired ratio."""
    for line in stdout.splitlines():
        if line.startswith("| wsshadow replay"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            ratio = float(cells[5].rstrip("x"))
            verdict = "met" if ratio >= 0.8 else "NOT met"
            return [f"replay | bench/replay.py: wsshadow vs minimal, concurrency 100 "
                    f"({cells[1]} sessions/s) | {cells[5]} | >= 0.8x | {verdict}"]  # fmt: skip
    return []


def combined(rows: list[str], took: dict[str, float], total: float) -> str:
    lines = [
        "| area | figure | value | target | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [c.strip() for c in row.split("|")]
        lines.append("| " + " | ".join(cells + [""] * (5 - len(cells))) + " |")
    times = ", ".join(f"{name} {secs:.0f} s" for name, secs in took.items())
    lines.append(f"\nTotal: {total / 60:.1f} min ({times}).")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()
    parts: list[str] = []
    rows: list[str] = []
    took: dict[str, float] = {}
    failed = []
    begin = time.perf_counter()
    for script in scripts(args.only):
        extra = ARGS.get(script.stem, [])
        print(f"== {script.name} {' '.join(extra)}".rstrip(), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script), *extra], capture_output=True, text=True, cwd=HERE.parent
        )
        took[script.stem] = time.perf_counter() - start
        shown = [ln for ln in proc.stdout.splitlines() if not ln.startswith(SUMMARY)]
        rows += [ln[len(SUMMARY) :] for ln in proc.stdout.splitlines() if ln.startswith(SUMMARY)]
        if script.stem == "replay":
            rows += replay_summary(proc.stdout)
        print("\n".join(shown), flush=True)
        command = f"`python bench/{script.name} {' '.join(extra)}`".replace(" `", "`")
        if proc.returncode != 0:
            failed.append(script.name)
            sys.stdout.write(proc.stderr[-2000:])
            rows.append(f"{script.stem} | FAILED (exit {proc.returncode}) | | |")
            parts.append(f"## {script.stem}\n\n{command}: FAILED (exit {proc.returncode}).\n")
            continue
        body = "\n".join(shown).strip()
        parts.append(f"## {script.stem} ({took[script.stem]:.0f} s)\n\n{command}\n\n{body}\n")
    total = time.perf_counter() - begin
    table = combined(rows, took, total)
    print("\n== combined\n")
    print(table)
    head = (
        f"# Benchmark results\n\nMachine: {machine_line()}, load average before the run "
        f"{os.getloadavg()[0]:.2f}. Client, server and proxy share the 2 cores, and single "
        "figures move by ±20% between runs on this machine: read the medians and the "
        "ratios, which are measured side by side in the same run. Loopback only. Produced "
        "by `make bench`.\n\n## Combined\n\n"
    )
    (HERE / "results.md").write_text(head + table + "\n" + "\n".join(parts))
    print(f"wrote {HERE / 'results.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
