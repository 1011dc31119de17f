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
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepdiff import DeepDiff

from bench._table import print_table, summary
from wsshadow.replay.capture.model import (
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
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.diff.capture import DiffAccumulator, diff_session, unmasked_normalizer
from wsshadow.replay.diff.normalize import Normalizer

SERVER_MESSAGES = 100
EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
ROUTE = "/ws"


_EVENT = (
    '{"type": "%s", "agent_name": "ChatAgent", "run_id": "%s", "thread_id": "t-%d", '
    '"timestamp": %.4f, "payload": {"content": "%s", "step": %d, "turn": %d}}'
)
_PING = '{"type": "ping", "data": {"timestamp": %.4f}}'
_WELCOME = (
    '{"type": "system_message", "data": {"event": "connection_established", '
    '"connection_id": "%s", "user_id": "user-%d", "server_time": "2026-11-26T10:%02d:%02dZ"}}'
)
_ASK = '{"type": "user_message", "payload": {"text": "q%d"}}'


def _session(
    rng: random.Random, sid: str, run: str | None, index: int, plant: str | None
) -> Session:
    now = 1764150000.0 + index
    jitter = rng.random() * 0.0005
    msgs: list[Message] = []

    def add(direction: Direction, text: str) -> None:
        seq = len(msgs)
        msgs.append(Message(seq, 0.001 * (seq + 1) + jitter, direction, Opcode.TEXT, text))

    heartbeat = _PING % (now + rng.random())
    welcome = _WELCOME % (
        uuid.UUID(int=rng.getrandbits(128)),
        index,
        rng.randrange(60),
        rng.randrange(60),
    )
    for text in (heartbeat, welcome) if rng.random() < 0.5 else (welcome, heartbeat):
        add(Direction.SERVER, text)
    sent = 2
    turn = 0
    while sent < SERVER_MESSAGES:
        add(Direction.CLIENT, _ASK % turn)
        run_id = f"{rng.getrandbits(64):016x}"
        for k, event in enumerate(EVENTS):
            if sent >= SERVER_MESSAGES:
                break
            sent += 1
            if plant == "missing" and turn == 3 and event == "agent_thinking":
                continue
            content = f"answer {index}-{turn}-{k}"
            if plant == "changed" and turn == 5 and event == "tool_completed":
                content = "something else"
            stamp = now + len(msgs) * 0.001 + jitter
            add(Direction.SERVER, _EVENT % (event, run_id, index, stamp, content, k, turn))
        turn += 1
    code = 1008 if plant == "close" else 1000
    return Session(
        id=sid,
        started_at=now,
        handshake=Handshake(route=ROUTE),
        messages=tuple(msgs),
        close=Close(code, "", Closer.SERVER, t=len(msgs) * 0.001 + 0.01),
        provenance=Provenance(source=Source.REPLAY, run=run, origin=f"s{index}"),
    )


def sessions(n: int, seed: int = 1) -> Iterator[tuple[int, Session, Session, Session, Session]]:
    """(index, recorded, baseline, noise run, candidate) for n sessions, 1% with a planted
    difference."""
    rng = random.Random(seed)
    for i in range(n):
        plant = ("changed", "missing", "close")[i // 100 % 3] if i % 100 == 37 else None
        yield (
            i,
            _session(rng, f"s{i}", None, i, None),
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


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes held by an object graph (sys.getsizeof over everything reachable once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, a), seen) for a in obj.__slots__ if hasattr(obj, a))
    return size


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engines(
    n: int, keep_details: bool = False, naive_sample: int = 0, noisy_pass: bool = True
) -> dict[str, float | int]:
    """Diff n sessions twice over (baseline vs candidate; the same plus a noise run).

    Returns the seconds each spent diffing (generation not counted), the
    findings, and how much the peak RSS grew while diffing. ``keep_details``
    keeps the report's one-entry-per-session ``session_details``. The naive
    approach is timed on ``naive_sample`` sessions spread over the run,
    interleaved, so that both see the same machine load.
    """
    config = DiffConfig()
    rc = config.for_route(ROUTE)
    norm = Normalizer(rc)
    plain = DiffAccumulator(config, keep_details=keep_details)
    noisy = DiffAccumulator(config, keep_details=keep_details)
    spent_plain = spent_noisy = spent_naive = 0.0
    rss_start = rss_mb()
    clock = time.perf_counter
    for i, recorded, base, other, cand in sessions(n):
        start = clock()
        plain.add(diff_session(f"s{i}", ROUTE, base, cand, [], rc, norm, recorded=recorded))
        middle = clock()
        if noisy_pass:
            noisy.add(
                diff_session(f"s{i}", ROUTE, base, cand, [other], rc, norm, recorded=recorded)
            )
        spent_plain += middle - start
        spent_noisy += clock() - middle
        if naive_sample and i % max(1, n // naive_sample) == 0:
            start = clock()
            naive_diff(base, cand)
            spent_naive += clock() - start
    rss_growth = rss_mb() - rss_start
    state_kb = (deep_size(plain) + deep_size(noisy)) / 1024
    start = clock()
    parts_plain = plain.finish()
    middle = clock()
    parts = noisy.finish()
    spent_plain += middle - start
    spent_noisy += clock() - middle
    return {
        "sessions": n,
        "messages": n * SERVER_MESSAGES,
        "naive_measured": len(range(0, n, max(1, n // naive_sample))) if naive_sample else 0,
        "peak_rss_mb": rss_mb(),
        "plain_seconds": spent_plain,
        "naive_seconds": spent_naive,
        "noisy_seconds": spent_noisy,
        "rss_growth_mb": rss_growth,
        "state_kb": state_kb,
        "plain_divergent": parts_plain["sessions"]["divergent"],
        "divergent": parts["sessions"]["divergent"],
        "groups": len(parts["differences"]),
        "noise": len(parts["noise"]),
        "details_bytes_per_session": len(json.dumps(parts["session_details"])) / n,
        "reproduced": parts_plain["fidelity"]["sessions"]["reproduced"],
        "verdict": parts["verdict"] if noisy_pass else parts_plain["verdict"],
    }


def as_socketio(session: Session) -> Session:
    """The same session spoken as Socket.IO: each ``{"type": E, ...}`` becomes ``42["E", {...}]``."""
    messages = []
    for m in session.messages:
        doc = json.loads(m.payload)
        event = doc.pop("type")
        messages.append(replace(m, payload="42" + json.dumps([event, doc])))
    return replace(session, messages=tuple(messages),
                   handshake=replace(session.handshake, route="/socket.io/"))  # fmt: skip


def run_socketio(n: int) -> dict[str, float]:
    """Diff n sessions as plain JSON and the same payloads as Socket.IO, interleaved.

    Both with a noise run, each through its own normalizers; the Socket.IO
    sessions are built before the clock starts. Returns the seconds each took.
    """
    config = DiffConfig()
    json_route, sio_route = config.for_route(ROUTE), config.for_route("/socket.io/")
    norms = {
        ROUTE: (json_route, Normalizer(json_route), unmasked_normalizer(json_route)),
        "/socket.io/": (sio_route, Normalizer(sio_route), unmasked_normalizer(sio_route)),
    }
    spent = {ROUTE: 0.0, "/socket.io/": 0.0}
    found = {ROUTE: DiffAccumulator(config, False), "/socket.io/": DiffAccumulator(config, False)}
    clock = time.perf_counter
    for i, _recorded, base, other, cand in sessions(n):
        sio = [as_socketio(s) for s in (base, other, cand)]
        order = [(ROUTE, (base, other, cand)), ("/socket.io/", sio)]
        for route, (b, o, c) in order if i % 2 else order[::-1]:
            rc, norm, raw = norms[route]
            start = clock()
            result = diff_session(f"s{i}", route, b, c, [o], rc, norm, raw)
            spent[route] += clock() - start
            found[route].add(result)
    divergent = {route: acc.finish()["sessions"]["divergent"] for route, acc in found.items()}
    return {"json_seconds": spent[ROUTE], "socketio_seconds": spent["/socket.io/"],
            "json_divergent": divergent[ROUTE], "socketio_divergent": divergent["/socket.io/"]}  # fmt: skip


def run_capture(n: int) -> dict[str, float]:
    """Write n recorded sessions and three runs to a temporary capture, then diff_capture it."""
    import tempfile

    from wsshadow.replay.capture.store import CaptureStore
    from wsshadow.replay.diff.capture import diff_capture

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        start = time.perf_counter()
        with CaptureStore.open(path, create=True) as store:

            def rows() -> Iterator[Session]:
                for _, recorded, base, other, cand in sessions(n):
                    yield replace(recorded, provenance=Provenance(source=Source.PROXY))
                    yield base
                    yield other
                    yield cand

            store.put_sessions(rows())
        written = time.perf_counter() - start
        with CaptureStore.open(path) as store:
            start = time.perf_counter()
            report = diff_capture(store, "baseline-1", "candidate-1", ["baseline-2"])
            diffed = time.perf_counter() - start
    return {"write_seconds": written, "diff_seconds": diffed,
            "divergent": report["sessions"]["divergent"]}  # fmt: skip


def scaling(sizes: list[int], per_session: int, naive_sample: int) -> None:
    """Time and peak memory of baseline-vs-candidate diffs as sessions grow, a process each."""
    rows = []
    results: list[dict[str, float]] = []
    first: dict[str, float] = {}
    for n in sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--engine-only", "--plain-only", "--sessions", str(n),
             "--messages", str(per_session), "--naive-sample", str(naive_sample),
             "--scaling", ""],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(child.stdout)
        results.append(r)
        rate = r["messages"] / r["plain_seconds"]
        naive_rate = r["naive_measured"] * per_session / r["naive_seconds"]
        first = first or {"seconds": r["plain_seconds"], "n": n}
        rows.append(
            (
                f"{n:,}",
                f"{r['messages']:,}",
                f"{r['plain_seconds']:.1f}",
                f"{r['plain_seconds'] / first['seconds'] / (n / first['n']):.2f}",
                f"{rate:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['rss_growth_mb']:.1f}",
                f"{r['state_kb']:,.0f}",
                f"{naive_rate:,.0f} ({r['naive_measured']})",
                f"{rate / naive_rate:.0f}x",
            )
        )
    last, head = results[-1], results[0]
    per_msg_growth = (last["plain_seconds"] / last["messages"]) / (
        head["plain_seconds"] / head["messages"]
    )
    summary("diff", f"scaling {sizes[0]:,} -> {sizes[-1]:,} sessions: time per message",
            f"{per_msg_growth:.2f}x", "linear (about 1x)", per_msg_growth < 1.5)  # fmt: skip
    summary("diff", f"scaling: RSS growth while diffing, {sizes[-1]:,} sessions "
            f"(state {last['state_kb']:,.0f} KB)", f"{last['rss_growth_mb']:.1f} MB",
            "flat", last["rss_growth_mb"] < 50)  # fmt: skip
    print_table(
        f"Diff scaling: baseline vs candidate, {per_session} server messages per session "
        f"(fewer than the 100 above so that 100,000 sessions fit the time budget), "
        "a fresh process per size",
        ["sessions", "messages", "seconds", "time per session vs first", "messages/s",
         "peak RSS MB", "RSS growth while diffing MB", "diff state KB",
         "naive messages/s (sessions timed, extrapolated)", "vs naive"],
        rows,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=200)
    parser.add_argument("--engine-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=100, help="server messages per session")
    parser.add_argument(
        "--scaling",
        default="1000,10000,100000",
        help="session counts for the scaling table (fresh process each; '' to skip)",
    )
    parser.add_argument(
        "--scaling-messages",
        type=int,
        default=20,
        help="server messages per session in the scaling table",
    )
    parser.add_argument(
        "--capture",
        type=int,
        default=0,
        metavar="N",
        help="also diff_capture N sessions stored in a temporary SQLite capture",
    )
    parser.add_argument(
        "--socketio",
        type=int,
        default=1000,
        metavar="N",
        help="sessions for the Socket.IO row (the same payloads as Socket.IO; 0 to skip)",
    )
    args = parser.parse_args()
    global SERVER_MESSAGES
    SERVER_MESSAGES = args.messages
    n = args.sessions
    if args.engine_only:
        sample = min(n, args.naive_sample) if args.plain_only else 0
        print(json.dumps(run_engines(n, naive_sample=sample, noisy_pass=not args.plain_only)))
        return
    if args.scaling:
        scaling([int(x) for x in args.scaling.split(",")], args.scaling_messages, args.naive_sample)
    messages = n * SERVER_MESSAGES
    print(f"diff benchmark: {n:,} sessions x {SERVER_MESSAGES} server messages, "
          f"1% planted differences, noisy runs")  # fmt: skip
    sample = min(n, args.naive_sample)
    engine = run_engines(n, naive_sample=sample)
    measured = len(range(0, n, max(1, n // sample))) if sample else 0
    naive = float(engine["naive_seconds"]) * n / measured
    naive_note = f" (on {measured} sessions, extrapolated)" if measured < n else ""
    # The same engine work on a tenth of the sessions, in a fresh process, for memory.
    small = max(1, n // 10)
    child = subprocess.run(
        [sys.executable, __file__, "--sessions", str(small), "--engine-only", "--scaling", ""],
        capture_output=True,
        text=True,
        check=True,
    )
    small_run = json.loads(child.stdout)
    detailed = run_engines(200, keep_details=True)
    rows = [
        ("naive: one DeepDiff per session" + naive_note, naive),
        ("wsshadow, baseline vs candidate + fidelity", float(engine["plain_seconds"])),
        ("wsshadow, the same + 1 noise run", float(engine["noisy_seconds"])),
    ]
    print()
    print(f"{'approach':<58} {'seconds':>8} {'messages/s':>11} {'vs naive':>9}")
    for name, seconds in rows:
        print(f"{name:<58} {seconds:>8.1f} {messages / seconds:>11,.0f} {naive / seconds:>8.1f}x")
    plain_x = naive / float(engine["plain_seconds"])
    noisy_x = naive / float(engine["noisy_seconds"])
    summary("diff", f"baseline vs candidate, fidelity and field checks on, vs naive DeepDiff, "
            f"{n:,} x {SERVER_MESSAGES} ({messages / float(engine['plain_seconds']):,.0f} msg/s)",
            f"{plain_x:.0f}x", ">= 15x", plain_x >= 15)  # fmt: skip
    summary("diff", f"with 1 noise run vs naive ({messages / float(engine['noisy_seconds']):,.0f}"
            " msg/s)", f"{noisy_x:.0f}x")  # fmt: skip
    print()
    planted = len(range(37, n, 100))
    print(f"findings with the noise run: {engine['divergent']} divergent sessions of {n:,} "
          f"(planted: {planted}), {engine['groups']} groups, {engine['noise']} noise "
          f"signatures suppressed; without it: {engine['plain_divergent']} divergent "
          f"(the heartbeat race); {engine['reproduced']:,} of {n:,} sessions reproduced by "
          f"the baseline (fidelity), verdict {engine['verdict']}")  # fmt: skip
    print(f"peak RSS growth while diffing (both passes; a fresh process for each size): "
          f"{small_run['rss_growth_mb']:.1f} MB for {small:,} sessions, "
          f"{engine['rss_growth_mb']:.1f} MB for {n:,} sessions")  # fmt: skip
    print(f"diff state retained (deep size of both accumulators): "
          f"{small_run['state_kb']:,.0f} KB after {small:,} sessions, "
          f"{engine['state_kb']:,.0f} KB after {n:,}")  # fmt: skip
    print(f"(without session_details; the report's one entry per session adds about "
          f"{detailed['details_bytes_per_session']:,.0f} bytes of JSON per session, "
          f"rows excluded)")  # fmt: skip
    if args.socketio:
        sio = run_socketio(args.socketio)
        ratio = sio["socketio_seconds"] / sio["json_seconds"]
        print(f"Socket.IO dialect: {args.socketio:,} sessions, the same payloads as plain JSON "
              f"and as 42[\"event\", {{...}}], interleaved: {sio['json_seconds']:.1f} s vs "
              f"{sio['socketio_seconds']:.1f} s ({sio['json_divergent']} and "
              f"{sio['socketio_divergent']} divergent sessions)")  # fmt: skip
        summary("diff", "Socket.IO decoding over the same payloads as plain JSON, same run",
                f"{ratio:.2f}x", "<= 1.30x", ratio <= 1.30)  # fmt: skip
    if args.capture:
        c = run_capture(args.capture)
        print(f"diff_capture over a SQLite capture of {args.capture:,} sessions x 3 runs "
              f"(session_details and rows included): {c['diff_seconds']:.1f} s, "
              f"{args.capture * SERVER_MESSAGES / c['diff_seconds']:,.0f} messages/s "
              f"({c['divergent']} divergent)")  # fmt: skip
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus; timings cover diffing only)")


if __name__ == "__main__":
    main()
