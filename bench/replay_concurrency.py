"""Replay throughput as concurrency grows: wsshadow against a minimal websockets client.

The same workload as bench/replay.py (recorded sessions of EXCHANGES
request/response pairs of 100-byte JSON, a loopback echo server in its own
process), at concurrency 1, 10, 100 and 1,000. Session counts grow with the
concurrency so that each point takes a few seconds. wsshadow runs
``replay_capture`` (causal pacing, results stored in the capture); the
minimal client connects, sends, awaits each echo, closes, stores nothing.
Runs alternate between the two; the table holds medians, the median of
the paired ratios, and each client's CPU time per session (the client and the
echo server share the machine's cores, so the ratio follows the CPU ratio).

    .venv/bin/python bench/replay_concurrency.py [--runs 3] [--exchanges 20] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench._replay_kit import minimal_client, recorded, serve_echo, wsshadow_replay
from bench._table import median_spread, print_table, summary
from wsshadow.replay.capture.store import CaptureStore

# concurrency -> sessions per run (a few seconds each on a 2-core machine)
POINTS = {1: 60, 10: 250, 100: 600, 1000: 1500}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--exchanges", type=int, default=20)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every session count")
    args = ap.parse_args()
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_echo, args=(there,), daemon=True)
    server.start()
    rows = []
    ratios: list[tuple[int, float, float, float]] = []
    try:
        url = f"ws://127.0.0.1:{here.recv()}"
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency, base_count in POINTS.items():
                sessions = max(concurrency, int(base_count * args.scale))
                store = CaptureStore.open(Path(tmp) / f"c{concurrency}.db", create=True)
                store.put_sessions(recorded(i, args.exchanges) for i in range(sessions))
                times: dict[str, list[float]] = {"minimal": [], "wsshadow": []}
                cpu: dict[str, list[float]] = {"minimal": [], "wsshadow": []}
                for r in range(args.runs):
                    c = time.process_time()
                    times["minimal"].append(
                        asyncio.run(minimal_client(url, sessions, args.exchanges, concurrency))
                    )
                    cpu["minimal"].append(time.process_time() - c)
                    c = time.process_time()
                    times["wsshadow"].append(
                        asyncio.run(wsshadow_replay(store, url, concurrency, f"bench{r}"))
                    )
                    cpu["wsshadow"].append(time.process_time() - c)
                store.close()
                cpu_ms = {k: statistics.median(v) / sessions * 1000 for k, v in cpu.items()}
                per_session = args.exchanges * 2
                mini, mspread = median_spread([sessions / t for t in times["minimal"]])
                ours, ospread = median_spread([sessions / t for t in times["wsshadow"]])
                paired = statistics.median(
                    m / w for m, w in zip(times["minimal"], times["wsshadow"], strict=True)
                )
                rows.append(
                    (
                        f"{concurrency:,}",
                        f"{sessions:,}",
                        f"{mini:,.0f} (±{mspread * 50:.0f}%)",
                        f"{mini * per_session:,.0f}",
                        f"{ours:,.0f} (±{ospread * 50:.0f}%)",
                        f"{ours * per_session:,.0f}",
                        f"{paired:.2f}x",
                        f"{cpu_ms['minimal']:.2f} / {cpu_ms['wsshadow']:.2f}",
                    )
                )
                ratios.append((concurrency, paired, ours, ours * per_session))
                print(f"concurrency {concurrency}: done", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.join(5)
    print_table(
        f"Replay by concurrency: {args.exchanges} exchanges of 100-byte JSON per session, "
        f"loopback echo, medians of {args.runs} alternating runs (target: >= 0.8x)",
        [
            "concurrency",
            "sessions",
            "minimal sessions/s",
            "minimal msg/s",
            "wsshadow sessions/s",
            "wsshadow msg/s",
            "wsshadow vs minimal (paired)",
            "client CPU ms/session (minimal / wsshadow)",
        ],
        rows,
    )
    print("(messages counted both ways)")
    for concurrency, paired, rate, msgs in ratios:
        summary("replay", f"wsshadow vs minimal client, concurrency {concurrency:,} "
                f"({rate:,.0f} sessions/s, {msgs:,.0f} msg/s)", f"{paired:.2f}x", ">= 0.8x",
                paired >= 0.8)  # fmt: skip


if __name__ == "__main__":
    main()
