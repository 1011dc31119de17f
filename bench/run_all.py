"""`make bench`: run every benchmark script in bench/ and collect one results file.

Each script prints Markdown tables (medians, spreads, ratios against a
baseline measured in the same run). This runner prints them as they come
and writes them, under a line naming the machine, to bench/results.md.

    .venv/bin/python bench/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._table import machine_line  # noqa: E402

# Order: cheap first, so a partial run still says something.
ORDER = ["store_write", "diff", "replay", "proxy", "demo_e2e"]


def scripts(only: list[str]) -> list[Path]:
    found = {p.stem: p for p in HERE.glob("*.py") if not p.stem.startswith("_")}
    found.pop("run_all", None)
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return [found[n] for n in names if not only or n in only]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()
    parts = [
        f"# Benchmark results\n\nMachine: {machine_line()}. Loopback only; medians of "
        "several runs; ratios are measured in the same run.\n"
    ]
    failed = []
    for script in scripts(args.only):
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, cwd=HERE.parent
        )
        took = time.perf_counter() - start
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failed.append(script.name)
            sys.stdout.write(proc.stderr[-2000:])
            parts.append(f"## {script.stem}\n\nFAILED (exit {proc.returncode}).\n")
            continue
        parts.append(f"## {script.stem} ({took:.0f} s)\n\n{proc.stdout.strip()}\n")
    (HERE / "results.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'results.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
