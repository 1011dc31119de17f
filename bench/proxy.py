"""Messages per second through `wsshadow record` (recording on) versus direct.

A websockets echo server runs in its own process; `wsshadow record` runs as
users run it (its own process, capture on disk, redaction on); the client is
this process. 100-byte JSON messages, two modes:

- ping-pong: send one message, await its echo, repeat;
- pipelined: keep a window of 100 messages in flight.

Each run lasts --seconds; the table holds medians of --runs runs, the
ratio to direct, and mitmproxy's `mitmdump --mode reverse:...` (writing its
flows) as a peer when bench/.work/mitm/bin/mitmdump exists (make it with
`python3.12 -m venv bench/.work/mitm && bench/.work/mitm/bin/pip install mitmproxy`).

    .venv/bin/python bench/proxy.py [--runs 5] [--seconds 1.5] [--no-mitm]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from websockets.asyncio.client import connect  # noqa: E402

from bench._table import median_spread, print_table  # noqa: E402

MITMDUMP = HERE / ".work" / "mitm" / "bin" / "mitmdump"
WINDOW = 100


def message(i: int) -> str:
    head = f'{{"type":"chat","seq":{i:08d},"text":"'
    return head + "x" * (100 - len(head) - 2) + '"}'


assert len(message(1)) == 100


# ---- the echo server (a child process) ------------------------------------------


async def serve_echo() -> None:
    from websockets.asyncio.server import serve

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        async for m in ws:
            await ws.send(m)

    async with serve(echo, "127.0.0.1", 0) as server:
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()


# ---- clients ---------------------------------------------------------------------


COMPRESSION: str | None = "deflate"


async def ping_pong(url: str, seconds: float) -> float:
    async with connect(url, compression=COMPRESSION) as ws:
        n = 0
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            await ws.send(message(n))
            await ws.recv()
            n += 1
        return n / (time.perf_counter() - start)


async def pipelined(url: str, seconds: float) -> float:
    async with connect(url, compression=COMPRESSION) as ws:
        window = asyncio.Semaphore(WINDOW)
        stop = False
        sent = 0

        async def send() -> None:
            nonlocal sent
            while not stop:
                await window.acquire()
                await ws.send(message(sent))
                sent += 1

        sender = asyncio.create_task(send())
        got = 0
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            await ws.recv()
            got += 1
            window.release()
        took = time.perf_counter() - start
        measured = got
        stop = True
        window.release()  # let a sender blocked on the window see ``stop``
        await sender
        while got < sent:  # drain what is in flight so the close handshake is prompt
            await ws.recv()
            got += 1
        return measured / took


# ---- processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_record(upstream: str, capture: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay", "record", "--upstream", upstream,
         "--listen", "127.0.0.1:0", str(capture)],
        stderr=subprocess.PIPE, text=True, cwd=HERE.parent,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"recording (ws://\S+)", line)
    if not match:
        raise RuntimeError(f"wsshadow record did not start: {line}")
    return proc, match.group(1)


def start_mitm(upstream_port: int, flows: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(MITMDUMP), "--mode", f"reverse:http://127.0.0.1:{upstream_port}",
         "--listen-host", "127.0.0.1", "--listen-port", str(port), "-q", "-w", str(flows)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    wait_port(port)
    return proc, f"ws://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


# ---- main ------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--no-mitm", action="store_true", help="skip the mitmproxy peer")
    ap.add_argument(
        "--no-compression", action="store_true", help="clients do not offer permessage-deflate"
    )
    args = ap.parse_args()
    global COMPRESSION
    if args.no_compression:
        COMPRESSION = None

    echo = subprocess.Popen(
        [sys.executable, __file__, "--serve-echo"], stdout=subprocess.PIPE, text=True
    )
    assert echo.stdout is not None
    echo_port = int(echo.stdout.readline())
    upstream = f"ws://127.0.0.1:{echo_port}"
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            record, proxied = start_record(upstream, Path(tmp) / "bench.db")
            procs.append(record)
            targets = {"direct": upstream + "/bench", "wsshadow record": proxied + "/bench"}
            mitm_note = ""
            if args.no_mitm:
                mitm_note = "mitmproxy peer skipped (--no-mitm)"
            elif not MITMDUMP.exists():
                mitm_note = (
                    f"mitmproxy peer skipped: {MITMDUMP.relative_to(HERE.parent)} not found "
                    "(needs Python >= 3.12; see this script's docstring)"
                )
            else:
                mitm, mitm_url = start_mitm(echo_port, Path(tmp) / "mitm.flows")
                procs.append(mitm)
                targets["mitmdump"] = mitm_url + "/bench"
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):  # interleaved, so drift hits every target alike
                for name, url in targets.items():
                    for mode, fn in (("ping-pong", ping_pong), ("pipelined", pipelined)):
                        rate = asyncio.run(fn(url, args.seconds))
                        results.setdefault((name, mode), []).append(rate)
            record_err = stop(record)
        finally:
            for p in procs:
                if p.poll() is None:
                    stop(p)
            echo.terminate()
            echo.wait()

    header = ["mode", "direct msg/s", "wsshadow record msg/s", "ratio"]
    if "mitmdump" in targets:
        header += ["mitmdump msg/s", "ratio"]
    rows = []
    for mode in ("ping-pong", "pipelined"):
        direct, _ = median_spread(results[("direct", mode)])
        row: list[object] = [mode, f"{direct:,.0f}"]
        for name in list(targets)[1:]:
            rate, spread = median_spread(results[(name, mode)])
            row += [f"{rate:,.0f} (±{spread * 50:.0f}%)", f"{rate / direct:.2f}x"]
        rows.append(row)
    print_table(
        f"Recording proxy: 100-byte JSON messages, medians of {args.runs} runs of "
        f"{args.seconds:g} s",
        header,
        rows,
    )
    summary = [line for line in record_err.splitlines() if "recorded" in line]
    if summary:
        print(summary[-1].replace("wsshadow: ", "wsshadow record: "))
    if mitm_note:
        print(mitm_note)
    print(
        f"(cpu cores: {os.cpu_count()}; echo server and client: websockets; "
        f"permessage-deflate: {'on' if COMPRESSION else 'off'})"
    )
    return 0


if __name__ == "__main__":
    if "--serve-echo" in sys.argv:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_echo())
        sys.exit(0)
    sys.exit(main())
