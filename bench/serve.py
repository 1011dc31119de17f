"""Mock-server throughput: ``wsshadow serve`` against the demo's legacy server, same clients.

The same 100 concurrent websockets clients (each: connect to ``/ws/factory``
with a token, send MESSAGES ``user_message``s, wait for the five agent events
of each, close) run against the demo's legacy server (its own process), then
against ``wsshadow serve`` (the real command, its own process) serving a
capture the first legacy round recorded (client side of the bench). Rounds
alternate; medians of served server messages per second and their ratio to
the legacy server. The legacy server pauses 2-6 ms between an agent run's
events (the demo's default; ``--pace recorded`` reproduces those gaps); the
"no pauses" row turns them off for a CPU-bound comparison.

    .venv/bin/python bench/serve.py [--clients 100] [--messages 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import connect

from bench._table import median_spread, print_table, summary
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

EVENTS = 5
AUTH = [("Authorization", "Bearer user-bench")]


def _legacy(pipe: Connection, pauses: bool) -> None:
    from wsshadow.replay.demo.legacy import create_legacy_app
    from wsshadow.replay.demo.running import serve_app

    async def main() -> None:
        delay = (0.002, 0.006) if pauses else (0.0, 0.0)
        async with serve_app(create_legacy_app(seed=1, step_delay=delay)) as url:
            pipe.send(url)
            await asyncio.Event().wait()

    asyncio.run(main())


async def _client(url: str, n: int, messages: int, record: list[Session] | None) -> int:
    got = 0
    frames: list[Message] = []
    loop = asyncio.get_running_loop()
    opened = loop.time()

    def note(direction: Direction, payload: str) -> None:
        if record is not None:
            frames.append(Message(len(frames), loop.time() - opened, direction, Opcode.TEXT,
                                  payload))  # fmt: skip

    async with connect(url + "/ws/factory", additional_headers=AUTH, max_size=None) as ws:
        for i in range(messages):
            text = json.dumps({"type": "user_message",
                               "payload": {"text": f"question {i}", "thread_id": f"t-{i}"}})  # fmt: skip
            await ws.send(text)
            note(Direction.CLIENT, text)
            for _ in range(EVENTS):
                reply = await ws.recv()
                assert isinstance(reply, str)
                note(Direction.SERVER, reply)
                got += 1
        await ws.close()
    if record is not None:
        record.append(Session(
            id=f"bench-{n:04d}", started_at=time.time(),
            handshake=Handshake("/ws/factory", request_headers=tuple(AUTH)),
            messages=tuple(frames), close=Close(1000, "", Closer.CLIENT, t=loop.time() - opened),
        ))  # fmt: skip
    return got


def _round(url: str, clients: int, messages: int, record: list[Session] | None = None) -> float:
    async def main() -> tuple[int, float]:
        start = time.perf_counter()
        counts = await asyncio.gather(*(_client(url, n, messages, record) for n in range(clients)))
        return sum(counts), time.perf_counter() - start

    served, elapsed = asyncio.run(main())
    assert served == clients * messages * EVENTS, served
    return served / elapsed


def _start_serve(capture: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsshadow", "serve", str(capture), "--listen", "127.0.0.1:0",
         "--reuse", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("ws://"):
        proc.kill()
        raise SystemExit(f"wsshadow serve did not start: {proc.communicate()[1]}")
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    servers = []
    urls = {}
    for name, pauses in (("legacy", True), ("legacy-fast", False)):
        here, there = multiprocessing.Pipe()
        p = multiprocessing.Process(target=_legacy, args=(there, pauses), daemon=True)
        p.start()
        servers.append(p)
        urls[name] = here.recv()
    procs: list[subprocess.Popen[str]] = []
    rates: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            capture = Path(tmp) / "bench.db"
            recorded: list[Session] = []
            rates["legacy"] = [_round(urls["legacy"], args.clients, args.messages, recorded)]
            with CaptureStore.open(capture, create=True) as store:
                store.put_sessions(recorded)
            modes = {
                "serve": ("--no-record",),
                "serve-stored": ("--run", "bench"),
                "serve-paced": ("--no-record", "--pace", "recorded"),
            }
            for name, extra in modes.items():
                proc, urls[name] = _start_serve(capture, *extra)
                procs.append(proc)
            for r in range(args.runs):
                for name in ("legacy", "legacy-fast", *modes):
                    if name == "legacy" and r == 0:
                        continue  # the recording round counts
                    rates.setdefault(name, []).append(_round(urls[name], args.clients,
                                                             args.messages))  # fmt: skip
            for proc in procs:
                os.kill(proc.pid, signal.SIGTERM)
                _out, err = proc.communicate(timeout=30)
                if proc.returncode != 0:
                    raise SystemExit(f"wsshadow serve failed: {err}")
                if "0 mismatch(es)" not in err:
                    raise SystemExit(f"wsshadow serve saw mismatches: {err}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for p in servers:
            p.terminate()
            p.join(5)
    labels = {
        "legacy": "demo legacy server (2-6 ms between events, as recorded)",
        "legacy-fast": "demo legacy server, no pauses",
        "serve": "wsshadow serve --pace asap --no-record",
        "serve-stored": "wsshadow serve --pace asap (connections stored as a run)",
        "serve-paced": "wsshadow serve --pace recorded",
    }
    base, _ = median_spread(rates["legacy"])
    fast, _ = median_spread(rates["legacy-fast"])
    rows = []
    for name, label in labels.items():
        med, spread = median_spread(rates[name])
        rows.append((label, f"{med:,.0f}", f"±{spread * 50:.0f}%", f"{med / base:.2f}x",
                     f"{med / fast:.2f}x"))  # fmt: skip
    print_table(
        f"serve: server messages per second, {args.clients} concurrent clients x "
        f"{args.messages} requests x {EVENTS} events ({args.runs} runs, median)",
        ["server", "messages/s", "spread", "vs legacy", "vs legacy, no pauses"],
        rows,
    )
    serve, _ = median_spread(rates["serve"])
    summary("serve", "messages/s vs the legacy demo server without pauses", f"{serve / fast:.2f}x")


if __name__ == "__main__":
    main()
