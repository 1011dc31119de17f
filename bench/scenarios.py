"""Scenarios: link discovery at scale, a scenario's replay against its recording, links' cost.

1. Link discovery (``engine/links.py``) over a synthetic capture of SESSIONS
   sessions x 40 messages (mostly independent request/response sessions that
   echo their own server-issued ids, plus 1 % in three-session rooms joined
   with a server-issued code and broadcast to). Times the discovery straight
   from the capture file (``capture_links``: the query and the scan) and
   reports the process's peak RSS. Targets: < 30 s and < 1 GB at 100,000.
2. A two-player game with two spectators and a three-user chat room
   (tests/engine/scenario_apps.py), recorded through the recording proxy,
   replayed as scenarios under causal pacing: the replay's duration next to
   the recorded one (first start to last close). No timeout wait: replay is
   at most about the recorded duration.
3. Replaying 1,000 independent echo sessions with discovery on and with
   ``links=False``, alternating, same run. Target: <= 1.10x.

    .venv/bin/python bench/scenarios.py [--sessions 100000] [--replay-sessions 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._replay_kit import recorded, serve_echo
from bench._table import print_table, summary
from tests.engine.scenario_apps import (
    ChatServer,
    GameServer,
    chat_room,
    play_game,
    record,
    running,
)
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.engine.links import discover_links
from wsshadow.replay.engine.run import ReplayOptions, replay_capture

T0 = 1_700_000_000.0


def synthetic(i: int) -> Session:
    """Session ``i``: 20 exchanges; every 100th trio of sessions shares a room."""
    start = T0 + i * 0.05
    msgs: list[Message] = []

    def add(t: float, d: Direction, doc: dict[str, object]) -> None:
        payload = json.dumps(doc, separators=(",", ":"))
        msgs.append(Message(len(msgs), t, d, Opcode.TEXT, payload))

    room = i // 3 if i % 300 < 3 else None
    token = f"tok-{i:08d}x"
    add(0.001, Direction.SERVER, {"type": "hello", "session_id": token, "user_id": 10_000 + i})
    if room is not None:
        code = f"R-{room:07d}q"
        if i % 3 == 0:
            add(0.002, Direction.CLIENT, {"type": "open"})
            add(0.003, Direction.SERVER, {"type": "room", "room_code": code})
        else:
            add(0.5 * (i % 3), Direction.CLIENT, {"type": "enter", "room_code": code})
            add(0.5 * (i % 3) + 0.001, Direction.SERVER, {"type": "welcome"})
    while len(msgs) < 40:
        n = len(msgs)
        t = 2.0 + n * 0.3
        add(t, Direction.CLIENT, {"type": "ask", "session_id": token, "n": n, "q": f"question {n}"})
        add(t + 0.01, Direction.SERVER, {"type": "answer", "n": n, "text": f"answer {n} for you"})
    return Session(
        f"s{i:06d}",
        start,
        Handshake("/ws"),
        tuple(msgs[:40]),
        Close(1000, "", Closer.CLIENT, t=30.0),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def discovery(sessions: int, tmp: Path) -> list[object]:
    path = tmp / "synthetic.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(synthetic(i) for i in range(sessions))
    gc.collect()
    rss_before = peak_rss_mb()
    with CaptureStore.open(path) as store:
        start, cpu = time.perf_counter(), time.process_time()
        graph = discover_links(store.data_frames_by_session())
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
    rooms = sum(1 for i in range(sessions) if i % 300 == 0)
    found = len(graph.scenarios)
    what = f"link discovery from the capture, {sessions:,} sessions x 40 messages"
    summary("scenarios", what, f"{took:.1f} s wall, {cpu:.1f} s CPU", "< 30 s", took < 30)
    rss = peak_rss_mb()
    summary("scenarios", "link discovery: peak RSS", f"{rss:.0f} MB", "< 1024 MB", rss < 1024)
    return [f"{sessions:,} x 40", f"{took:.1f} s", f"{cpu:.1f} s", f"{peak_rss_mb():.0f} MB", f"{rss_before:.0f} MB",
            f"{found} (expected {rooms})", len(graph.links)]  # fmt: skip


async def scenario_replay(tmp: Path) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, server, script in (
        ("game", GameServer, play_game),
        ("chat room", ChatServer, chat_room),
    ):
        capture = tmp / f"{name}.db"
        async with running(server().handler) as upstream:
            await record(upstream, capture, script)
        with CaptureStore.open(capture) as store:
            sessions = list(store.iter_sessions())
            span = max(s.started_at + (s.duration or 0.0) for s in sessions) - min(
                s.started_at for s in sessions
            )
            async with running(server().handler) as target:
                took, waits = {}, {}
                for links in (True, False):
                    start = time.perf_counter()
                    result = await replay_capture(
                        store, ReplayOptions(target, links=links), run=f"r{links}"
                    )
                    took[links] = time.perf_counter() - start
                    waits[links] = result.causal_timeouts
                    if result.completed != result.sessions:
                        raise SystemExit(f"{name}: replay failed: {result.first_error()}")
        rows.append([name, len(sessions), f"{span:.2f} s", f"{took[True]:.2f} s",
                     f"{took[True] / span:.2f}x", waits[True], f"{took[False]:.2f} s",
                     waits[False]])  # fmt: skip
        summary("scenarios", f"the {name} scenario replayed together (causal) vs recorded "
                f"{span:.2f} s", f"{took[True]:.2f} s ({took[True] / span:.2f}x)",
                "about its recorded duration or less", took[True] <= span * 1.1)  # fmt: skip
    return rows


async def replay_pair(store: CaptureStore, url: str, run: int) -> tuple[float, float]:
    out = []
    for links in (True, False) if run % 2 == 0 else (False, True):
        options = ReplayOptions(url, concurrency=100, open_timeout=60.0, links=links)
        start = time.perf_counter()
        result = await replay_capture(store, options, run=f"x{run}-{links}")
        out.append((links, time.perf_counter() - start))
        if result.completed != result.sessions:
            raise SystemExit(f"replay failed: {result.first_error()}")
    d = dict(out)
    return d[True], d[False]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--replay-sessions", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = asyncio.run(scenario_replay(tmp))
        print_table(
            "A scenario's replay (causal pacing) next to its recording",
            ["scenario", "sessions", "recorded", "replayed together", "ratio", "timed-out waits",
             "replayed alone (--no-links)", "timed-out waits alone"],
            rows,
        )  # fmt: skip
        here, there = multiprocessing.Pipe()
        server = multiprocessing.Process(target=serve_echo, args=(there,), daemon=True)
        server.start()
        try:
            url = f"ws://127.0.0.1:{here.recv()}"
            with CaptureStore.open(tmp / "echo.db", create=True) as store:
                store.put_sessions(recorded(i, 20) for i in range(args.replay_sessions))
                pairs = [asyncio.run(replay_pair(store, url, r)) for r in range(args.runs)]
        finally:
            server.terminate()
            server.join()
        on = statistics.median(p[0] for p in pairs)
        off = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print_table(
            f"Replaying {args.replay_sessions} independent sessions: links on vs --no-links",
            ["links on (median)", "--no-links (median)", "median of paired ratios", "target"],
            [[f"{on:.2f} s", f"{off:.2f} s", f"{ratio:.3f}x", "<= 1.10x"]],
        )
        summary("scenarios", f"replaying {args.replay_sessions:,} independent sessions: links on "
                "vs --no-links (median of paired ratios)", f"{ratio:.3f}x", "<= 1.10x",
                ratio <= 1.10)  # fmt: skip
        row = discovery(args.sessions, tmp)
        print_table(
            "Link discovery over a synthetic capture",
            ["sessions", "discovery (wall)", "CPU", "peak RSS", "RSS before", "scenarios", "links"],
            [row],
        )


if __name__ == "__main__":
    main()
