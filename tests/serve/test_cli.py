"""``wsshadow serve`` as a command: a real process on loopback, stopped by SIGTERM;
bad input is one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.conftest import make_session
from tests.serve.helpers import chat_session, j, make_capture
from tests.serve.test_server import replay_client_side
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main


def test_serve_prints_its_url_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    session = chat_session()
    path = make_capture(tmp_path / "c.db", [session])
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsshadow", "serve", str(path), "--listen", "127.0.0.1:0",
         "--run", "client-v2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:") and not url.endswith(":0")

        async def client() -> list[str | bytes]:
            async with connect(url + "/ws/chat") as ws:
                return await replay_client_side(ws, session)

        assert asyncio.run(client()) == [m.payload for m in session.server_messages()]
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "served 1 connection(s), 5 message(s), 0 mismatch(es); stored as run client-v2" in err
    with CaptureStore.open(path) as store:
        run = store.get_run("client-v2")
        assert run is not None and run.sessions == 1 and run.errors == 0
    # The stored run diffs as equivalent to the recording.
    assert main(["diff", str(path), "--candidate", "client-v2", "--format", "json",
                 "--output", str(tmp_path / "r.json")]) == 0  # fmt: skip


def test_a_deviating_client_logs_one_mismatch_line(tmp_path: Path) -> None:
    path = make_capture(tmp_path / "c.db", [chat_session()])
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsshadow", "serve", str(path), "--listen", "127.0.0.1:0",
         "--no-record"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()

        async def client() -> int | None:
            async with connect(url + "/ws/chat") as ws:
                await ws.recv()
                await ws.send(j(type="join", room="kitchen", user="ann"))
                await asyncio.wait_for(ws.wait_closed(), scaled(10))
                return ws.close_code

        assert asyncio.run(client()) == 1008
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    mismatch = [line for line in err.splitlines() if "mismatch on /ws/chat" in line]
    assert len(mismatch) == 1
    assert '"room": "lobby"' in mismatch[0] and '"room": "kitchen"' in mismatch[0]
    with CaptureStore.open(path) as store:
        assert store.runs() == []


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_capture(tmp_path / "c.db", [chat_session(), make_session("f", "/ws/factory")])
    code, err = run_cli(capsys, "serve", str(tmp_path / "missing.db"))
    assert code == 2 and "no such capture file" in err and len(err.splitlines()) == 1
    code, err = run_cli(capsys, "serve", str(path), "--route", "/nothing/*")
    assert code == 2 and "no recorded session matches the filters" in err
    code, err = run_cli(capsys, "serve", str(path), "--session", "zzz")
    assert code == 2 and "no recorded session matches the filters" in err
    code, err = run_cli(capsys, "serve", str(path), "--listen", "127.0.0.1:http")
    assert code == 2 and "expected HOST:PORT" in err
    code, err = run_cli(capsys, "serve", str(path), "--speed", "0")
    assert code == 2 and "--speed" in err
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not sqlite at all" * 100)
    code, err = run_cli(capsys, "serve", str(corrupt))
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_cli(capsys, "serve", str(path), "--listen", f"127.0.0.1:{port}")
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
    assert len(err.splitlines()) == 1


def test_stopping_closes_open_connections_with_1001_and_stores_them(tmp_path: Path) -> None:
    path = make_capture(tmp_path / "c.db", [chat_session()])
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsshadow", "serve", str(path), "--listen", ":0", "--run", "r1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()

        async def client() -> tuple[int | None, str]:
            async with connect(url + "/ws/chat") as ws:
                await ws.recv()  # then sit idle while the server stops
                os.kill(proc.pid, signal.SIGTERM)
                await asyncio.wait_for(ws.wait_closed(), scaled(10))
                return ws.close_code, ws.close_reason

        assert asyncio.run(client()) == (1001, "wsshadow serve stopped")
        _out, err = proc.communicate(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    with CaptureStore.open(path) as store:
        (stored,) = list(store.iter_sessions("r1"))
        assert stored.close is not None and stored.close.code == 1001
        assert [m.payload for m in stored.server_messages()] == [j(type="hello", server="legacy")]
