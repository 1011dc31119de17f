"""Wall time of `wsshadow demo` end to end, and of its phases.

End to end: the real command (`python -m replay demo --out TMP --seed 7`, a
fresh process each time, imports included), median of --runs. Phases: the
same ``run_demo`` called in-process with the CLI's recorder wrapped to note
when recording starts and stops: start-up (servers, capture), recording the
scripted traffic through the proxy, and shadow (three replays, diff, the four
reports).

    .venv/bin/python bench/demo_e2e.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import median_spread, print_table, summary
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli.demo import _recorder
from wsshadow.replay.demo.run import run_demo


def end_to_end(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "replay", "demo", "--out", str(out), "--seed", "7"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    return time.perf_counter() - start


def phases(out: Path) -> tuple[float, float, float]:
    marks: list[float] = []

    @contextlib.asynccontextmanager
    async def timed(upstream: str, store: CaptureStore) -> AsyncIterator[object]:
        async with _recorder(upstream, store) as proxy:
            marks.append(time.perf_counter())
            yield proxy
        marks.append(time.perf_counter())

    start = time.perf_counter()
    asyncio.run(run_demo(out, timed, seed=7))  # type: ignore[arg-type]
    end = time.perf_counter()
    return marks[0] - start, marks[1] - marks[0], end - marks[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("aiohttp.websocket").setLevel(logging.ERROR)
    walls: list[float] = []
    parts: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            walls.append(end_to_end(Path(tmp) / f"cli{r}"))
            parts.append(phases(Path(tmp) / f"lib{r}"))
    wall, spread = median_spread(walls)
    rows = [("`wsshadow demo` end to end (new process)", f"{wall:.2f}", f"±{spread * 50:.0f}%")]
    names = (
        "start-up: servers and capture",
        "recording the scripted traffic",
        "shadow: 3 replays, diff, 4 reports",
    )
    for i, name in enumerate(names):
        med, sp = median_spread([p[i] for p in parts])
        rows.append((f"phase: {name}", f"{med:.2f}", f"±{sp * 50:.0f}%"))
    med, sp = median_spread([sum(p) for p in parts])
    rows.append(("phases total (in-process `run_demo`)", f"{med:.2f}", f"±{sp * 50:.0f}%"))
    summary("demo", "`wsshadow demo` end to end", f"{wall:.1f} s")
    print_table(
        f"Demo: wall time, seconds, median of {args.runs} (seed 7, temp dir)",
        ["what", "seconds", "spread"],
        rows,
    )


if __name__ == "__main__":
    main()
