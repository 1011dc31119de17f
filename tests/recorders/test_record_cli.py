"""``wsshadow record`` as users run it: a real subprocess, signals, exit codes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.timeouts import scaled
from wsshadow.replay.capture.model import Direction, Opcode
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

from .conftest import Upstream

N = 5000


async def start_record(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "replay",
        "record",
        *args,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), scaled(20))).decode()
    match = re.search(r"recording (ws://\S+)", line)
    assert match, line
    return proc, match.group(1)


@pytest.mark.slow
async def test_sigterm_during_load_loses_nothing(upstream: Upstream, capture_path: Path):
    proc, url = await start_record(
        "--upstream", upstream.url, "--listen", "127.0.0.1:0", str(capture_path)
    )
    stream_echoes: list[str] = []
    streaming = asyncio.Event()

    async def steady_stream() -> int | None:
        """A second client in mid-conversation when the signal lands."""
        async with connect(url + "/echo") as ws:
            try:
                for i in range(10**6):
                    await ws.send(f"s{i}")
                    stream_echoes.append(await ws.recv())  # type: ignore[arg-type]
                    streaming.set()
            except ConnectionClosed:
                pass
            return ws.close_code

    streamer = asyncio.create_task(steady_stream())
    await asyncio.wait_for(streaming.wait(), scaled(20))
    async with connect(url + "/echo") as ws:
        sent = [f'{{"n":{i},"pad":"{"x" * 80}"}}' for i in range(N)]

        async def send_all() -> None:
            for m in sent:
                await ws.send(m)

        sender = asyncio.create_task(send_all())
        got = [await ws.recv() for _ in range(N)]
        proc.send_signal(signal.SIGTERM)  # the writer is still behind at this point
        await sender
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
    assert got == sent
    assert await asyncio.wait_for(streamer, scaled(20)) == 1001
    assert await asyncio.wait_for(proc.wait(), scaled(20)) == 0
    assert proc.stderr is not None
    tail = (await proc.stderr.read()).decode()
    assert re.search(r"recorded 2 sessions, \d+ messages, \d+ bytes, 0 dropped", tail), tail

    with CaptureStore.open(capture_path) as store:
        by_route = {}
        for s in store.iter_sessions():
            first = next(m.payload for m in s.messages if m.opcode is Opcode.TEXT)
            by_route["load" if str(first).startswith("{") else "stream"] = s
    load = by_route["load"]
    texts = [(m.direction, m.payload) for m in load.messages if m.opcode is Opcode.TEXT]
    assert [p for d, p in texts if d is Direction.CLIENT] == sent
    assert [p for d, p in texts if d is Direction.SERVER] == sent
    stream = by_route["stream"]
    server_texts = [m.payload for m in stream.server_messages() if m.opcode is Opcode.TEXT]
    client_texts = [m.payload for m in stream.client_messages() if m.opcode is Opcode.TEXT]
    assert len(stream_echoes) > 0
    # Every echo the client got passed through the proxy, so it and its request are recorded.
    assert server_texts[: len(stream_echoes)] == stream_echoes
    assert client_texts[: len(stream_echoes)] == stream_echoes
    assert load.close is not None and load.close.code == 1001


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--upstream", "http://127.0.0.1:1"], "expected a ws:// or wss:// URL"),
        (["--upstream", "ws://127.0.0.1:1", "--listen", "nope"], "expected HOST:PORT"),
        (["--upstream", "ws://127.0.0.1:1", "--route", "ws=x"], "expected PATH=UPSTREAM_PATH"),
        (["--upstream", "ws://127.0.0.1:1", "--tls-cert", "/nonexistent.pem"], "no such file"),
        (["--upstream", "ws://127.0.0.1:1", "--mirror", "nonsense"], "--mirror"),
        (["--upstream", "ws://127.0.0.1:1", "--max-message-size", "0"], "positive"),
        (["--upstream", "ws://127.0.0.1:1", "--stall-timeout", "0"], "--stall-timeout must be"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, expect, capture_path, capsys):
    assert main(["record", *args, str(capture_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and "\n" not in err and "Traceback" not in err


def test_listen_address_taken_exits_2(capture_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            ["record", "--upstream", "ws://127.0.0.1:1", "--listen", f"127.0.0.1:{port}",
             str(capture_path)]
        )  # fmt: skip
    assert code == 2
    assert "cannot listen" in capsys.readouterr().err
