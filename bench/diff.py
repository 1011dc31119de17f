"""Benchmark the diff engine against a naive DeepDiff over whole sessions.

Generates N sessions x 100 server messages per run (baseline, a noise run,
candidate) in memory: timestamps, uuids, hex run ids, ISO times and a
heartbeat racing the welcome vary in every run, and 1% of the candidate
sessions carry a planted difference (a changed field, a missing event or a
close code). Sessions are generated one at a time, so memory measures the
engine, not the data set. Timing covers the diff only, not the generation.

    python bench/diff.py                  # 10,000 sessions (about 1-2 minutes)
    python bench/diff.py --sessions 1000

The naive approach (one DeepDiff over each session's whole list of parsed
messages, with exclude paths for the volatile fields) is timed on a sample
and extrapolated: running it on every session would take many minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepdiff import DeepDiff  # noqa: E402

from replay.config import DiffConfig  # noqa: E402
from replay.differ import DiffAccumulator, diff_session  # noqa: E402
from replay.model import (  # noqa: E402
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
    Source,
)
from replay.normalize import Normalizer  # noqa: E402

SERVER_MESSAGES = 100
EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
ROUTE = "/ws"


def _session(
    rng: random.Random, sid: str, run: str | None, index: int, plant: str | None
) -> Session:
    now = 1764150000.0 + index
    msgs: list[Message] = []
    seq = 0
    t = 0.0

    def add(direction: Direction, payload: object) -> None:
        nonlocal seq, t
        t += 0.001 + rng.random() * 0.0005
        msgs.append(Message(seq, t, direction, Opcode.TEXT, json.dumps(payload)))
        seq += 1

    heartbeat = {"type": "ping", "data": {"timestamp": now + rng.random()}}
    welcome = {
        "type": "system_message",
        "data": {
            "event": "connection_established",
            "connection_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "user_id": f"user-{index}",
            "server_time": f"2026-11-26T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        },
    }
    for payload in (heartbeat, welcome) if rng.random() < 0.5 else (welcome, heartbeat):
        add(Direction.SERVER, payload)
    sent = 2
    turn = 0
    while sent < SERVER_MESSAGES:
        add(Direction.CLIENT, {"type": "user_message", "payload": {"text": f"q{turn}"}})
        run_id = f"{rng.getrandbits(64):016x}"
        for k, event in enumerate(EVENTS):
            if sent >= SERVER_MESSAGES:
                break
            if plant == "missing" and turn == 3 and event == "agent_thinking":
                sent += 1
                continue
            content = f"answer {index}-{turn}-{k}"
            if plant == "changed" and turn == 5 and event == "tool_completed":
                content = "something else"
            add(
                Direction.SERVER,
                {
                    "type": event,
                    "agent_name": "ChatAgent",
                    "run_id": run_id,
                    "thread_id": f"t-{index}",
                    "timestamp": now + t,
                    "payload": {"content": content, "step": k, "turn": turn},
                },
            )
            sent += 1
        turn += 1
    code = 1008 if plant == "close" else 1000
    return Session(
        id=sid,
        started_at=now,
        handshake=Handshake(route=ROUTE),
        messages=tuple(msgs),
        close=Close(code, "", Closer.SERVER, t=t + 0.01),
        provenance=Provenance(source=Source.REPLAY, run=run, origin=f"s{index}"),
    )


def sessions(n: int, seed: int = 1) -> Iterator[tuple[int, Session, Session, Session]]:
    """(index, baseline, noise run, candidate) for n sessions, 1% with a planted difference."""
    rng = random.Random(seed)
    for i in range(n):
        plant = ("changed", "missing", "close")[i // 100 % 3] if i % 100 == 37 else None
        yield (
            i,
            _session(rng, f"b-{i}", "baseline-1", i, None),
            _session(rng, f"n-{i}", "baseline-2", i, None),
            _session(rng, f"c-{i}", "candidate-1", i, plant),
        )


EXCLUDE = [
    r"root\[\d+\]\['timestamp'\]",
    r"root\[\d+\]\['run_id'\]",
    r"root\[\d+\]\['data'\]\['(timestamp|connection_id|server_time)'\]",
]


def naive_diff(base: Session, cand: Session) -> int:
    """One DeepDiff over each session's whole list of parsed server messages."""
    a = [json.loads(m.payload) for m in base.server_messages()]
    b = [json.loads(m.payload) for m in cand.server_messages()]
    return len(DeepDiff(a, b, exclude_regex_paths=EXCLUDE, threshold_to_diff_deeper=0))


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(n: int, noise: bool) -> dict[str, float | int]:
    """Diff n sessions with wsshadow's engine; returns seconds (diff only) and findings."""
    config = DiffConfig()
    rc = config.for_route(ROUTE)
    norm = Normalizer(rc)
    acc = DiffAccumulator(config)
    spent = 0.0
    rss_start = rss_mb()
    for i, base, other, cand in sessions(n):
        start = time.perf_counter()
        acc.add(diff_session(f"s{i}", ROUTE, base, cand, [other] if noise else [], rc, norm))
        spent += time.perf_counter() - start
    start = time.perf_counter()
    parts = acc.finish()
    spent += time.perf_counter() - start
    return {
        "seconds": spent,
        "rss_start_mb": rss_start,
        "rss_peak_mb": rss_mb(),
        "divergent": parts["sessions"]["divergent"],
        "groups": len(parts["differences"]),
        "noise": len(parts["noise"]),
    }


def run_naive(n: int) -> float:
    """Seconds the naive approach takes for n sessions."""
    spent = 0.0
    for _, base, _, cand in sessions(n):
        start = time.perf_counter()
        naive_diff(base, cand)
        spent += time.perf_counter() - start
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.sessions
    if args.memory_only:
        print(json.dumps(run_engine(n, noise=True)))
        return
    messages = n * SERVER_MESSAGES
    print(f"diff benchmark: {n:,} sessions x {SERVER_MESSAGES} server messages, "
          f"1% planted differences, noisy runs")  # fmt: skip
    engine = run_engine(n, noise=False)
    with_noise = run_engine(n, noise=True)
    sample = min(n, args.naive_sample)
    naive_sample = run_naive(sample)
    naive = naive_sample * n / sample
    naive_note = f" (measured on {sample} sessions, extrapolated)" if sample < n else ""
    # Memory: the same engine (with a noise run) on a tenth of the sessions, in a fresh process.
    small = max(1, n // 10)
    child = subprocess.run(
        [sys.executable, __file__, "--sessions", str(small), "--memory-only"],
        capture_output=True,
        text=True,
        check=True,
    )
    small_mem = json.loads(child.stdout)

    def growth(r: dict[str, float | int]) -> float:
        return float(r["rss_peak_mb"]) - float(r["rss_start_mb"])

    rows = [
        ("naive DeepDiff per session" + naive_note, naive, None),
        ("wsshadow (baseline vs candidate)", float(engine["seconds"]), engine),
        ("wsshadow + 1 noise run", float(with_noise["seconds"]), with_noise),
    ]
    print()
    print(f"{'approach':<62} {'seconds':>9} {'messages/s':>12} {'speed-up':>9}")
    for name, seconds, _ in rows:
        print(f"{name:<62} {seconds:>9.1f} {messages / seconds:>12,.0f} {naive / seconds:>8.1f}x")
    print()
    print(f"findings: {with_noise['divergent']} divergent sessions of {n:,} "
          f"(planted: {len(range(37, n, 100))}), {with_noise['groups']} groups, "
          f"{with_noise['noise']} noise signatures suppressed")  # fmt: skip
    print(f"peak memory growth during the diff (RSS): {growth(small_mem):.1f} MB for "
          f"{small:,} sessions, {growth(with_noise):.1f} MB for {n:,} sessions")  # fmt: skip
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus)")


if __name__ == "__main__":
    main()
