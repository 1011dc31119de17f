"""Issue 19, item 11: Ctrl-C during a replay keeps the sessions that finished.

``wsshadow replay`` runs as a real subprocess against a real target on
127.0.0.1 and gets a real SIGINT once the target has seen five sessions
through; the other 25 are held (the target never answers them).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.reliability.kit import make_capture, ws_server
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore

ROOT = Path(__file__).resolve().parents[2]


def _wsshadow(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from wsshadow.replay.cli import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _five_then_hold() -> tuple[Any, threading.Event]:
    lock = threading.Lock()
    state = {"connected": 0, "finished": 0}
    five_done = threading.Event()

    def handler(ws: Any) -> None:
        with lock:
            state["connected"] += 1
            answer = state["connected"] <= 5
        try:
            for raw in ws:
                if answer:
                    ws.send(raw.replace("ask", "answer"))
        except ConnectionClosed:
            pass
        if answer:
            with lock:
                state["finished"] += 1
                if state["finished"] == 5:
                    five_done.set()

    return handler, five_done


def test_ctrl_c_keeps_finished_sessions_and_marks_the_run(tmp_path: Path) -> None:
    cap = make_capture(tmp_path / "cap.db", sessions=30, turns=2)
    handler, five_done = _five_then_hold()
    with ws_server(handler) as url:
        # held sessions wait 60 s per message: none of them can finish before the Ctrl-C
        proc = _wsshadow("replay", cap, "--target", url, "--run", "cut", "--causal-timeout", 60)
        try:
            assert five_done.wait(scaled(60)), "the target never saw five sessions through"
            time.sleep(scaled(0.5))  # the replay's side of their closes
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=scaled(60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == (
        f"wsshadow: error: interrupted: run 'cut' keeps the 5 of 30 sessions that finished, "
        f"marked interrupted in {cap}"
    )
    with CaptureStore.open(cap) as store:
        run = store.get_run("cut")
        kept = list(store.iter_sessions("cut"))
    assert run is not None and run.sessions == 5 and run.ended_at is not None
    assert run.settings["interrupted"] is True
    assert len(kept) == 5
    for s in kept:
        assert s.close is not None and s.close.error is None
        assert len(s.messages) == 4  # two asks, two answers: whole sessions, not prefixes


def test_ctrl_c_during_shadow_keeps_every_runs_finished_sessions(tmp_path: Path) -> None:
    cap = make_capture(tmp_path / "cap.db", sessions=30, turns=2)
    handler, five_done = _five_then_hold()
    with ws_server() as baseline, ws_server(handler) as candidate:
        proc = _wsshadow(
            "shadow", cap, "--baseline", baseline, "--candidate", candidate,
            "--run-prefix", "sh", "--causal-timeout", 60,
            "--warmup", 0,  # the candidate's first five sessions are the measured ones
        )  # fmt: skip
        try:
            if not five_done.wait(scaled(60)):
                proc.kill()
                raise AssertionError(
                    f"the candidate never saw five sessions through: {proc.communicate()}"
                )
            time.sleep(scaled(0.5))
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=scaled(60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("wsshadow: error: interrupted: the runs keep"), lines[0]
    assert "sh-candidate 5 of 30 (marked interrupted)" in lines[0]
    with CaptureStore.open(cap) as store:
        run = store.get_run("sh-candidate")
        kept = list(store.iter_sessions("sh-candidate"))
    assert run is not None and run.settings["interrupted"] is True and len(kept) == 5


def test_ctrl_c_during_the_warm_up_marks_the_run_interrupted(tmp_path: Path) -> None:
    """``--warmup``: the unrecorded sessions before the measured ones can be cut short too."""
    cap = make_capture(tmp_path / "cap.db", sessions=10, turns=2)
    connected = threading.Event()

    def hold(ws: Any) -> None:  # never answers: the warm-up waits on it
        connected.set()
        try:
            for _ in ws:
                pass
        except ConnectionClosed:
            pass

    with ws_server(hold) as url:
        proc = _wsshadow(
            "replay", cap, "--target", url, "--run", "warm", "--warmup", 3,
            "--causal-timeout", 60,
        )  # fmt: skip
        try:
            assert connected.wait(scaled(60)), "the warm-up never connected"
            time.sleep(scaled(0.3))
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=scaled(60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "run 'warm' keeps the 0 of 10 sessions" in lines[0]
    with CaptureStore.open(cap) as store:
        run = store.get_run("warm")
        assert run is not None and run.settings["interrupted"] is True and run.sessions == 0
        assert store.count_sessions("warm") == 0
