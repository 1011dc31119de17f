"""Benchmark: what WsShadowRecorder costs a Starlette app under uvicorn.

Ping-pong over one loopback connection (100-byte JSON, the client waits for
each echo) and a pipelined burst (the client sends everything, then reads),
against the app unwrapped, wrapped with sample=0 (pass-through) and wrapped
recording every session. Prints medians of several rounds and the ratio to
the unwrapped app.

    .venv/bin/python bench/asgi_recorder.py [--messages 500] [--rounds 15]

Each server runs in its own process (as in production, where clients are
elsewhere), the client in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.applications import Starlette  # noqa: E402
from starlette.routing import WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from wsshadow.recorders.asgi import WsShadowRecorder  # noqa: E402
from wsshadow.recorders.serve import serve_asgi  # noqa: E402

PAYLOAD = json.dumps({"type": "chat", "text": "x" * 60, "seq": 0})[:100]


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        return


def app() -> Starlette:
    return Starlette(routes=[WebSocketRoute("/ws", echo)])


async def ping_pong(url: str, n: int) -> float:
    async with connect(url) as ws:
        start = time.perf_counter()
        for _ in range(n):
            await ws.send(PAYLOAD)
            await ws.recv()
        return n / (time.perf_counter() - start)


async def pipelined(url: str, n: int) -> float:
    async with connect(url) as ws:
        start = time.perf_counter()

        async def reader() -> None:
            for _ in range(n):
                await ws.recv()

        task = asyncio.create_task(reader())
        for _ in range(n):
            await ws.send(PAYLOAD)
        await task
        return n / (time.perf_counter() - start)


def serve(variant: str, capture: str) -> None:
    """Child process: serve one variant, print its port, run until stdin closes."""
    if variant == "unwrapped":
        target: Any = app()
    else:
        target = WsShadowRecorder(app(), capture=capture, sample=0.0 if variant == "off" else 1.0)
    with serve_asgi(target) as served:
        print(served.port, flush=True)
        sys.stdin.read()
    if isinstance(target, WsShadowRecorder):
        target.close()
        st = target.stats
        print(f"{st.frames_written} {st.sessions_written} {st.frames_dropped}", flush=True)


def measure(urls: dict[str, str], n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Medians per server; rounds interleave the servers so machine load hits all alike."""
    samples: dict[str, dict[str, list[float]]] = {
        name: {"ping-pong": [], "pipelined": []} for name in urls
    }
    for url in urls.values():
        asyncio.run(ping_pong(url, 100))  # warm-up
    names = list(urls)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name]["ping-pong"].append(asyncio.run(ping_pong(urls[name], n)))
            samples[name]["pipelined"].append(asyncio.run(pipelined(urls[name], n)))
    return {
        name: {k: statistics.median(v) for k, v in kinds.items()} for name, kinds in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--capture", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.capture)
        return
    variants = {"unwrapped": "unwrapped", "recorder sample=0": "off", "recorder sample=1": "on"}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {
            name: subprocess.Popen(
                [sys.executable, __file__, "--serve", v, "--capture", f"{tmp}/{v}.db"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name, v in variants.items()
        }
        try:
            urls = {
                name: f"ws://127.0.0.1:{int(p.stdout.readline())}/ws"  # type: ignore[union-attr]
                for name, p in procs.items()
            }
            results = measure(urls, args.messages, args.rounds)
        finally:
            tails = {name: p.communicate(timeout=60)[0].strip() for name, p in procs.items()}
    base = results["unwrapped"]
    print(
        f"{'ASGI app under uvicorn':<24} {'ping-pong msg/s':>16} {'ratio':>6} "
        f"{'pipelined msg/s':>16} {'ratio':>6}"
    )
    for name, r in results.items():
        print(
            f"{name:<24} {r['ping-pong']:>16,.0f} {r['ping-pong'] / base['ping-pong']:>6.2f} "
            f"{r['pipelined']:>16,.0f} {r['pipelined'] / base['pipelined']:>6.2f}"
        )
    frames, sessions, dropped = (tails["recorder sample=1"].split() + ["?"] * 3)[:3]
    print(
        f"(100-byte JSON; medians of {args.rounds} interleaved rounds of {args.messages} "
        f"messages; server in its own process; recorded {frames} frames in {sessions} "
        f"sessions, {dropped} dropped)"
    )


if __name__ == "__main__":
    main()
