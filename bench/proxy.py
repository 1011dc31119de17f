"""Messages per second, added latency and memory of `wsshadow record` against peers.

A websockets echo server runs in its own process; `wsshadow record` runs as
users run it (its own process, capture on disk, redaction on); the client is
this process. Targets, all measured in the same run and interleaved:

- direct: the client talks to the echo server;
- `wsshadow record`: recording on;
- aiohttp relay: bench/_relay.py, a ~40-line aiohttp relay that records
  nothing (the floor for a Python proxy);
- mitmdump: mitmproxy's `mitmdump --mode reverse:... -w flows`, when
  bench/.work/mitm/bin/mitmdump exists or can be made (a Python >= 3.12
  interpreter and `pip install mitmproxy`); skipped with a line otherwise.

100-byte JSON and 64 KiB JSON (base64 text, so deflate has work to do)
messages, two modes: ping-pong (send one, await its echo) and pipelined (a
window of 100 messages in flight, 10 for 64 KiB). Added latency is the
proxy's round-trip percentile minus direct's, from the ping-pong runs.
Memory: VmRSS of the proxy process at rest, with 1,000 idle connections
open, and at its peak while 100 connections pipeline.

    .venv/bin/python bench/proxy.py [--runs 3] [--seconds 1] [--no-mitm] [--idle 1000] [--busy 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from websockets.asyncio.client import connect  # noqa: E402

from bench._table import median_spread, print_table, summary  # noqa: E402

MITM_VENV = HERE / ".work" / "mitm"
MITMDUMP = MITM_VENV / "bin" / "mitmdump"
WINDOW = 100
SIZES = (100, 64 * 1024)
_FILLER = base64.b64encode(random.Random(7).randbytes(48 * 1024)).decode()


def message(i: int, size: int = 100) -> str:
    head = f'{{"type":"chat","seq":{i:08d},"text":"'
    body = "x" * (size - len(head) - 2) if size <= 1024 else _FILLER[: size - len(head) - 2]
    return head + body + '"}'


assert len(message(1)) == 100 and len(message(1, 65536)) == 65536


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


async def ping_pong(url: str, seconds: float, size: int) -> tuple[float, list[float]]:
    """Send one message, await its echo, repeat: the rate and every round trip (s)."""
    async with connect(url, compression=COMPRESSION, max_size=None) as ws:
        n = 0
        rtts: list[float] = []
        clock = time.perf_counter
        start = clock()
        end = start + seconds
        while (sent := clock()) < end:
            await ws.send(message(n, size))
            await ws.recv()
            rtts.append(clock() - sent)
            n += 1
        return n / (clock() - start), rtts


async def pipelined(url: str, seconds: float, size: int) -> tuple[float, list[float]]:
    """Keep a window of messages in flight: the rate of echoes received."""
    async with connect(url, compression=COMPRESSION, max_size=None) as ws:
        window = asyncio.Semaphore(WINDOW if size <= 1024 else WINDOW // 10)
        stop = False
        sent = 0

        async def send() -> None:
            nonlocal sent
            while not stop:
                await window.acquire()
                await ws.send(message(sent, size))
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
        return measured / took, []


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process used so far (this process when ``pid`` is None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(echo: int, proxy: subprocess.Popen[str] | None) -> tuple[float, float, float]:
    """CPU seconds so far of the client (this process), the echo server and the proxy (0: none)."""
    return cpu_seconds(None), cpu_seconds(echo), cpu_seconds(proxy.pid) if proxy else 0.0


def vm_rss_mb(pid: int) -> float:
    """The resident set size of a process, from /proc/PID/status, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def memory(url: str, pid: int, idle: int, busy: int, seconds: float) -> tuple[float, ...]:
    """Proxy RSS (MB): at rest, with ``idle`` connections open, and peak with ``busy`` pipelining."""
    at_rest = vm_rss_mb(pid)
    conns = []
    slots = asyncio.Semaphore(50)

    async def open_one() -> None:
        async with slots:
            conns.append(await connect(url, compression=COMPRESSION, ping_interval=None))

    try:
        await asyncio.gather(*(open_one() for _ in range(idle)))
        await asyncio.sleep(1.0)
        with_idle = vm_rss_mb(pid)
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, vm_rss_mb(pid))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(pipelined(url, seconds, 100) for _ in range(busy)))
    sampler.cancel()
    await asyncio.gather(sampler, return_exceptions=True)
    return at_rest, with_idle, peak


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


def start_relay(upstream: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_relay.py"), upstream], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, f"ws://127.0.0.1:{int(proc.stdout.readline())}"


def find_mitmdump() -> tuple[Path | None, str]:
    """bench/.work/mitm/bin/mitmdump, made on first use when a Python >= 3.12 exists."""
    if MITMDUMP.exists():
        return MITMDUMP, ""
    candidates = [shutil.which(f"python3.{v}") for v in (12, 13, 14)]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.1[234]*/bin/python3")]
    for python in filter(None, candidates):
        check = subprocess.run([python, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                               capture_output=True)  # fmt: skip
        if check.returncode != 0:
            continue
        log = MITM_VENV.parent / "mitm-install.log"
        MITM_VENV.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            made = subprocess.run([python, "-m", "venv", str(MITM_VENV)], stdout=out, stderr=out)
            if made.returncode == 0:
                subprocess.run([str(MITM_VENV / "bin" / "pip"), "install", "-q", "mitmproxy"],
                               stdout=out, stderr=out)  # fmt: skip
        if MITMDUMP.exists():
            return MITMDUMP, ""
        return None, f"mitmdump peer skipped: `pip install mitmproxy` failed (see {log})"
    return None, "mitmdump peer skipped: no Python >= 3.12 interpreter found for mitmproxy"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


# ---- main ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--no-mitm", action="store_true", help="skip the mitmproxy peer")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for the RSS figure")
    ap.add_argument("--busy", type=int, default=100, help="busy connections for the RSS figure")
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
    procs: dict[str, subprocess.Popen[str]] = {}
    results: dict[tuple[str, int, str], list[float]] = {}
    rtts: dict[tuple[str, int], list[float]] = {}
    rss: dict[str, tuple[float, ...]] = {}
    # CPU seconds of (client, echo server, proxy) and wall seconds, per run.
    cpu: dict[tuple[str, int, str], list[tuple[float, float, float, float, float]]] = {}
    record_err = ""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            record, proxied = start_record(upstream, Path(tmp) / "bench.db")
            procs["wsshadow record"] = record
            relay, relay_url = start_relay(upstream)
            procs["aiohttp relay"] = relay
            targets = {
                "direct": upstream + "/bench",
                "wsshadow record": proxied + "/bench",
                "aiohttp relay": relay_url + "/bench",
            }
            mitm_note = ""
            mitmdump, mitm_note = (None, "mitmdump peer skipped (--no-mitm)")
            if not args.no_mitm:
                mitmdump, mitm_note = find_mitmdump()
            if mitmdump is not None:
                mitm, mitm_url = start_mitm(echo_port, Path(tmp) / "mitm.flows")
                procs["mitmdump"] = mitm
                targets["mitmdump"] = mitm_url + "/bench"
            for _ in range(args.runs):  # interleaved, so drift hits every target alike
                for name, url in targets.items():
                    for size in SIZES:
                        for mode, fn in (("ping-pong", ping_pong), ("pipelined", pipelined)):
                            proxy = procs.get(name)
                            before = cpu_of(echo.pid, proxy)
                            wall = time.perf_counter()
                            rate, times = asyncio.run(fn(url, args.seconds, size))
                            wall = time.perf_counter() - wall
                            used = [
                                a - b for a, b in zip(cpu_of(echo.pid, proxy), before, strict=True)
                            ]
                            cpu.setdefault((name, size, mode), []).append(
                                (*used, wall, rate * args.seconds)
                            )
                            results.setdefault((name, size, mode), []).append(rate)
                            rtts.setdefault((name, size), []).extend(times)
            for name, proc in procs.items():
                rss[name] = asyncio.run(
                    memory(targets[name], proc.pid, args.idle, args.busy, args.seconds * 2)
                )
            record_err = stop(record)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    stop(p)
            echo.terminate()
            echo.wait()

    peers = list(targets)[1:]
    header = ["message", "mode", "direct msg/s"]
    for name in peers:
        header += [f"{name} msg/s", "vs direct"]
    rows = []
    for size in SIZES:
        for mode in ("ping-pong", "pipelined"):
            direct, dspread = median_spread(results[("direct", size, mode)])
            label = f"{size} B" if size < 1024 else f"{size // 1024} KiB"
            row: list[object] = [label, mode, f"{direct:,.0f} (±{dspread * 50:.0f}%)"]
            for name in peers:
                rate, spread = median_spread(results[(name, size, mode)])
                row += [f"{rate:,.0f} (±{spread * 50:.0f}%)", f"{rate / direct:.2f}x"]
            rows.append(row)
    print_table(
        f"Recording proxy: throughput, medians of {args.runs} interleaved runs of "
        f"{args.seconds:g} s (± half the spread)",
        header,
        rows,
    )
    if "mitmdump" in targets:
        ratio_mitm = statistics.median(
            w / m
            for w, m in zip(
                results[("wsshadow record", 100, "ping-pong")],
                results[("mitmdump", 100, "ping-pong")],
                strict=True,
            )
        )
        print(f"wsshadow record vs mitmdump, 100 B ping-pong (median of paired runs): "
              f"{ratio_mitm:.1f}x\n")  # fmt: skip

    lat_rows = []
    for size in SIZES:
        d50 = percentile(rtts[("direct", size)], 0.5)
        d99 = percentile(rtts[("direct", size)], 0.99)
        label = f"{size} B" if size < 1024 else f"{size // 1024} KiB"
        row = [label, f"{d50 * 1e6:,.0f} / {d99 * 1e6:,.0f}"]
        for name in peers:
            p50 = percentile(rtts[(name, size)], 0.5)
            p99 = percentile(rtts[(name, size)], 0.99)
            row.append(f"{(p50 - d50) * 1e6:+,.0f} / {(p99 - d99) * 1e6:+,.0f}")
        lat_rows.append(row)
    print_table(
        "Added latency per message (ping-pong round trip, µs, p50 / p99; direct is absolute)",
        ["message", "direct p50 / p99"] + [f"{n} added" for n in peers],
        lat_rows,
    )
    cpu_rows = []
    for mode in ("ping-pong", "pipelined"):
        for name in targets:
            runs = cpu[(name, 100, mode)]
            client, server, proxy_us = (
                statistics.median(r[i] / r[4] * 1e6 for r in runs) for i in range(3)
            )
            busy = statistics.median((r[0] + r[1] + r[2]) / r[3] for r in runs)
            cpu_rows.append(
                (
                    mode,
                    name,
                    f"{client:.1f}",
                    f"{server:.1f}",
                    f"{proxy_us:.1f}" if name != "direct" else "-",
                    f"{client + server + proxy_us:.1f}",
                    f"{busy:.2f} of {os.cpu_count()}",
                )
            )
    print_table(
        "CPU per echoed 100 B message (µs, medians; cores busy = CPU of the three processes / wall)",
        ["mode", "target", "client", "echo server", "proxy", "total", "cores busy"],
        cpu_rows,
    )
    mem_rows = [
        (
            name,
            f"{r[0]:.0f}",
            f"{r[1]:.0f}",
            f"{(r[1] - r[0]) * 1024 / args.idle:.0f}",
            f"{r[2]:.0f}",
        )
        for name, r in rss.items()
    ]
    print_table(
        f"Proxy memory (VmRSS of the proxy process, MB; target: {args.idle:,} idle < 200 MB)",
        ["proxy", "at rest", f"{args.idle:,} idle", "KB per idle connection",
         f"{args.busy} busy (peak, 100 B pipelined)"],
        mem_rows,
    )  # fmt: skip
    recorded = [line for line in record_err.splitlines() if "recorded" in line]
    if recorded:
        print(recorded[-1].replace("wsshadow: ", "wsshadow record: "))

    def ratio(name: str, size: int, mode: str) -> float:
        return (
            median_spread(results[(name, size, mode)])[0]
            / median_spread(results[("direct", size, mode)])[0]
        )

    for size, label in ((100, "100 B"), (65536, "64 KiB")):
        for mode, target in (("ping-pong", 0.6), ("pipelined", 0.9)):
            r = ratio("wsshadow record", size, mode)
            relay_ratio = ratio("aiohttp relay", size, mode)
            summary("proxy", f"record vs direct, {label} {mode} (aiohttp relay: {relay_ratio:.2f}x)",
                    f"{r:.2f}x", f">= {target}x" if size == 100 else "",
                    r >= target if size == 100 else None)  # fmt: skip
    if "mitmdump" in targets:
        summary("proxy", "record vs mitmdump, 100 B ping-pong (paired)", f"{ratio_mitm:.1f}x",
                ">= 3x", ratio_mitm >= 3)  # fmt: skip
    else:
        summary("proxy", "record vs mitmdump", "skipped", ">= 3x")
    summary("proxy", "added latency through record, 100 B, p50 / p99",
            f"{lat_rows[0][2]} µs")  # fmt: skip
    idle_rss = rss["wsshadow record"][1]
    summary("proxy", f"record RSS with {args.idle:,} idle connections", f"{idle_rss:.0f} MB",
            "< 200 MB", idle_rss < 200)  # fmt: skip
    summary("proxy", f"record RSS peak with {args.busy} busy connections",
            f"{rss['wsshadow record'][2]:.0f} MB")  # fmt: skip
    if mitm_note:
        print(mitm_note)
    print(
        f"(cpu cores: {os.cpu_count()}, echo server and client: "
        f"websockets; permessage-deflate: {'on' if COMPRESSION else 'off'})"
    )
    return 0


if __name__ == "__main__":
    if "--serve-echo" in sys.argv:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_echo())
        sys.exit(0)
    sys.exit(main())
