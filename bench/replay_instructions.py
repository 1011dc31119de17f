"""Replay's cost in instructions: wsshadow against the minimal client, counted by valgrind.

Wall-clock ratios on a shared 2-core machine move by ±20% between runs;
instruction counts move by well under 1%, so this is the figure to compare
before and after a change to replay's hot path. The workload is
bench/replay.py's (SESSIONS recorded sessions of 20 exchanges of 100-byte
JSON, an echo server in its own process, not under valgrind). The client
process runs four times under ``valgrind --tool=callgrind``: set-up only
(imports, the capture), the minimal websockets client, and
``replay_capture`` with link discovery on and off; each client's cost is its run minus the set-up run,
per session. Counts cover every thread (wsshadow's writer thread too), so
the ratio is of the work done, not of the wall time (which also depends on
how much of it overlaps and on the echo server's share of the cores).
About 50x slower than a plain run: a few minutes for 300 sessions.

    .venv/bin/python bench/replay_instructions.py [--sessions 300] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._replay_kit import minimal_client, recorded, serve_echo, wsshadow_replay
from bench._table import print_table, summary
from wsshadow.replay.capture.store import CaptureStore

MODES = ("set-up only", "minimal", "wsshadow", "wsshadow --no-links")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def child(mode: str, url: str, sessions: int, concurrency: int) -> None:
    """One measured process: build the capture, then run ``mode``'s client."""
    with tempfile.TemporaryDirectory() as tmp:
        store = CaptureStore.open(Path(tmp) / "bench.db", create=True)
        store.put_sessions(recorded(i, 20) for i in range(sessions))
        if mode == "minimal":
            asyncio.run(minimal_client(url, sessions, 20, concurrency))
        elif mode.startswith("wsshadow"):
            links = mode != "wsshadow --no-links"
            asyncio.run(wsshadow_replay(store, url, concurrency, "bench", links=links))
        store.close()


def count(valgrind: str, mode: str, url: str, sessions: int, concurrency: int) -> int:
    """Instructions the client process executed in ``mode`` (all threads)."""
    args = [sys.executable, __file__, "--child", mode, url, str(sessions), str(concurrency)]
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{mode} under valgrind failed: {tail[0]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--child", nargs=4, metavar=("MODE", "URL", "SESSIONS", "CONCURRENCY"))
    args = ap.parse_args()
    if args.child:
        mode, url, sessions, concurrency = args.child
        child(mode, url, int(sessions), int(concurrency))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("replay_instructions: valgrind is not installed (apt-get install valgrind); skipped")
        return
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_echo, args=(there,), daemon=True)
    server.start()
    try:
        url = f"ws://127.0.0.1:{here.recv()}"
        counts = {m: count(valgrind, m, url, args.sessions, args.concurrency) for m in MODES}
    finally:
        server.terminate()
        server.join(5)
    base = counts["set-up only"]
    per = {m: (counts[m] - base) / args.sessions for m in MODES[1:]}
    rows = [
        ("minimal websockets client (send, await echo)", f"{per['minimal'] / 1e6:.2f} M", "1.00x"),
        (
            "wsshadow replay (causal, results stored)",
            f"{per['wsshadow'] / 1e6:.2f} M",
            f"{per['minimal'] / per['wsshadow']:.2f}x",
        ),
        (
            "wsshadow replay --no-links (no link discovery)",
            f"{per['wsshadow --no-links'] / 1e6:.2f} M",
            f"{per['minimal'] / per['wsshadow --no-links']:.2f}x",
        ),
    ]
    print_table(
        f"Replay in instructions: {args.sessions} sessions x 20 exchanges, concurrency "
        f"{args.concurrency}, callgrind (set-up run: {base / 1e6:,.0f} M, subtracted)",
        ["client", "instructions per session", "minimal / wsshadow"],
        rows,
    )
    ratio = per["minimal"] / per["wsshadow"]
    summary(
        "replay",
        "instructions per session, minimal / wsshadow (callgrind, all threads)",
        f"{ratio:.2f}x ({per['minimal'] / 1e6:.2f} M vs {per['wsshadow'] / 1e6:.2f} M)",
        "",
        None,
    )
    links = per["wsshadow"] / per["wsshadow --no-links"]
    summary(
        "replay",
        "instructions per session, link discovery on vs --no-links (callgrind)",
        f"{links:.3f}x",
        "",
        None,
    )


if __name__ == "__main__":
    main()
