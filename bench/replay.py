"""Replay throughput: wsshadow's engine against a minimal hand-written websockets client.

A loopback echo server (its own process) answers every message. The capture
holds SESSIONS recorded sessions of EXCHANGES request/response pairs of
100-byte JSON. wsshadow replays them with ``replay_capture`` (causal pacing,
carry-over planning, credential filling, results stored in the capture); the
minimal client connects, sends each message, waits for its echo, closes, and
stores nothing. Both run at the same concurrency in one event loop. Prints
medians of several alternating runs, the ratio of the medians, the median of
the ratios of back-to-back pairs (steadier on a shared machine), and the
client process's CPU time per session (independent of the machine's load).
Target: wsshadow at >= 0.8x the minimal client.

    .venv/bin/python bench/replay.py [--sessions 1000] [--exchanges 20] [--concurrency 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench._replay_kit import minimal_client, recorded, serve_echo, wsshadow_replay
from bench._table import median_spread, print_table
from wsshadow.replay.capture.store import CaptureStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--exchanges", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_echo, args=(there,), daemon=True)
    server.start()
    load_before = os.getloadavg()[0]
    try:
        url = f"ws://127.0.0.1:{here.recv()}"
        times: dict[str, list[float]] = {"minimal": [], "wsshadow": []}
        cpu: dict[str, list[float]] = {"minimal": [], "wsshadow": []}
        with tempfile.TemporaryDirectory() as tmp:
            store = CaptureStore.open(Path(tmp) / "bench.db", create=True)
            store.put_sessions(recorded(i, args.exchanges) for i in range(args.sessions))
            for r in range(args.runs):
                c = time.process_time()
                times["minimal"].append(
                    asyncio.run(
                        minimal_client(url, args.sessions, args.exchanges, args.concurrency)
                    )
                )
                cpu["minimal"].append(time.process_time() - c)
                c = time.process_time()
                times["wsshadow"].append(
                    asyncio.run(wsshadow_replay(store, url, args.concurrency, f"bench{r}"))
                )
                cpu["wsshadow"].append(time.process_time() - c)
            store.close()
    finally:
        server.terminate()
        server.join(5)
    messages = args.sessions * args.exchanges * 2
    base, _ = median_spread([args.sessions / t for t in times["minimal"]])
    rows = []
    for name, label in (
        ("minimal", "minimal websockets client (send, await echo)"),
        ("wsshadow", "wsshadow replay (causal, results stored)"),
    ):
        rates = [args.sessions / t for t in times[name]]
        med, spread = median_spread(rates)
        paired = statistics.median(
            m / t for m, t in zip(times["minimal"], times[name], strict=True)
        )
        cpu_ms = statistics.median(cpu[name]) / args.sessions * 1000
        rows.append(
            (
                label,
                f"{med:,.0f}",
                f"{med * messages / args.sessions:,.0f}",
                f"±{spread * 50:.0f}%",
                f"{med / base:.2f}x",
                f"{paired:.2f}x",
                f"{cpu_ms:.2f}",
            )
        )
    print_table(
        f"Replay: {args.sessions} sessions x {args.exchanges} exchanges, concurrency "
        f"{args.concurrency}, loopback echo, median of {args.runs}",
        [
            "client",
            "sessions/s",
            "messages/s (both ways)",
            "spread",
            "vs minimal",
            "paired ratio",
            "client CPU ms/session",
        ],
        rows,
    )
    # The ratio depends on who is the bottleneck: on a quiet machine the client
    # (ratio ~ CPU ratio), on a busy one the echo server (ratio closer to 1).
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
