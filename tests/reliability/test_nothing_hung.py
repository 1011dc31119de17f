"""Issue 19, item 3: replay ends against a target that never stops sending.

Real targets on 127.0.0.1: one floods (as fast as it can, forever), one
trickles (a message every 50 ms, forever, never reaching the flood cap). On
the code before the fix both held the session open until killed; every run
here is bounded by ``asyncio.wait_for`` so a regression fails, not hangs.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.reliability.kit import cli, recorded, ws_server
from tests.timeouts import scaled
from wsshadow.replay.capture.model import Close, Closer, Direction
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.engine.pacing import FLOOD_MINIMUM
from wsshadow.replay.engine.run import ReplayOptions, replay_capture


def _capture(path: Path, closed_by: Closer) -> Path:
    """One recorded session: the client asks, the server answers once, then ``closed_by`` closes."""
    s = recorded("s1", [("client", '{"type":"ask"}'), ("server", '{"type":"answer"}')])
    s = replace(s, close=Close(1000, "", closed_by, t=0.003))
    with CaptureStore.open(path, create=True) as store:
        store.put_session(s)
    return path


def _flood(ws: Any) -> None:
    ws.recv()
    n = 0
    try:
        while True:
            ws.send(json.dumps({"type": "tick", "n": n}))
            n += 1
    except ConnectionClosed:
        return


def _trickle(ws: Any) -> None:
    ws.recv()
    n = 0
    try:
        while True:
            ws.send(json.dumps({"type": "tick", "n": n}))
            n += 1
            time.sleep(0.05)
    except ConnectionClosed:
        return


@pytest.mark.parametrize("closed_by", [Closer.SERVER, Closer.CLIENT])
async def test_a_trickling_target_is_bounded_from_the_end_of_the_script(
    tmp_path: Path, closed_by: Closer
) -> None:
    """A message every 50 ms forever, never idle: each wait restarted on every message
    before the fix. Recorded closed by the server, replay waits for a close that never
    comes; recorded closed by the client after 1,000 answers (over 1 s), replay waits for
    answers (or quiet) that would take the trickle 50 s."""
    answers = 1 if closed_by is Closer.SERVER else 1000
    session = recorded("s1", [("client", '{"type":"ask"}')] + [("server", "{}")] * answers)
    session = replace(session, close=Close(1000, "", closed_by, t=answers / 1000 + 0.002))
    cap = tmp_path / "cap.db"
    with CaptureStore.open(cap, create=True) as store:
        store.put_session(session)
    with ws_server(_trickle) as url, CaptureStore.open(cap) as store:
        options = ReplayOptions(target=url, idle_timeout=0.5, close_timeout=1.0)
        began = time.monotonic()
        result = await asyncio.wait_for(replay_capture(store, options, run="r"), scaled(60))
        took = time.monotonic() - began
        (s,) = list(store.iter_sessions("r"))
    # bound: twice the recording's tail (1 s at most) plus the timeout, after the script
    assert took < scaled(20), took
    assert s.close is not None and s.close.by is Closer.CLIENT  # the replay ended it
    server = [m for m in s.messages if m.direction is Direction.SERVER and m.opcode.is_data]
    assert 1 <= len(server) < max(answers, 400)
    (outcome,) = result.outcomes
    assert outcome.connected and outcome.error is None


async def test_a_flooding_target_is_cut_at_the_cap_and_marked_flooded(tmp_path: Path) -> None:
    cap = _capture(tmp_path / "cap.db", Closer.SERVER)
    with ws_server(_flood) as url, CaptureStore.open(cap) as store:
        result = await asyncio.wait_for(
            replay_capture(store, ReplayOptions(target=url), run="r"), scaled(120)
        )
        (s,) = list(store.iter_sessions("r"))
    (outcome,) = result.outcomes
    assert outcome.error is not None and outcome.error.startswith("flooded"), outcome.error
    assert "10,000" in outcome.error
    assert s.close is not None and s.close.error == outcome.error and s.close.code == 1008
    server = [m for m in s.messages if m.direction is Direction.SERVER and m.opcode.is_data]
    assert len(server) == FLOOD_MINIMUM  # a prefix, bounded: memory does not grow forever


def test_replay_and_diff_of_a_flooding_candidate_end_and_say_flooded(
    tmp_path: Path, capsys
) -> None:
    """Through the CLI: replay ends, the session's error says flooded, diff calls it errored."""
    cap = _capture(tmp_path / "cap.db", Closer.SERVER)

    def answer(ws: Any) -> None:
        ws.recv()
        ws.send('{"type":"answer"}')
        ws.close()

    with ws_server(answer) as good:
        assert cli(capsys, ["replay", cap, "--target", good, "--run", "base"])[0] == 0
    with ws_server(_flood) as bad:
        code, out, err = cli(capsys, ["replay", cap, "--target", bad, "--run", "cand"])
    assert code in (0, 1), err
    assert "flooded" in out + err
    code, out, err = cli(capsys, ["diff", cap, "--baseline", "base", "--candidate", "cand",
                                  "--format", "json"])  # fmt: skip
    assert code == 1, err
    report = json.loads(out)
    assert report["sessions"]["errored"] == 1
    (session,) = report["session_details"]
    assert session["verdict"] == "errored"
    assert "flooded" in session["error"]
