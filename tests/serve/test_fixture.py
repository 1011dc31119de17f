"""The ``wsshadow_server`` pytest fixture, from a user's test file (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve.helpers import chat_session, make_capture
from wsshadow.replay.capture.store import CaptureStore

USER_TESTS = """
import asyncio, json
from websockets.asyncio.client import connect

CAPTURE = {capture!r}

async def talk(url, room):
    async with connect(url + "/ws/chat") as ws:
        got = [json.loads(await ws.recv())]
        await ws.send(json.dumps({{"type": "join", "room": room, "user": "ann"}},
                                 separators=(",", ":")))
        if room == "lobby":
            got += [json.loads(await ws.recv()) for _ in range(2)]
            await ws.send(json.dumps({{"type": "say", "request_id": "req-777777", "text": "hi"}}))
        try:
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        except Exception:
            pass
        return got, ws.close_code

def test_good_client(wsshadow_server):
    server = wsshadow_server(CAPTURE, match="key", run="pytest-run")
    got, code = asyncio.run(talk(server.url, "lobby"))
    assert [m["type"] for m in got] == ["hello", "joined", "history", "ack", "message"]
    assert got[3]["request_id"] == "req-777777"  # the client's own id, carried over
    assert code == 4000 and server.mismatches == []

def test_deviating_client(wsshadow_server):
    server = wsshadow_server(CAPTURE, reuse=True)
    got, code = asyncio.run(talk(server.url, "kitchen"))
    assert code == 1008

def test_expected_mismatch(wsshadow_server):
    server = wsshadow_server(CAPTURE, reuse=True, expect_mismatches=True)
    got, code = asyncio.run(talk(server.url, "kitchen"))
    assert code == 1008 and len(server.mismatches) == 1
    assert "kitchen" in server.mismatches[0].received

def test_no_such_capture(wsshadow_server):
    wsshadow_server("missing.db")
"""


def test_the_fixture_from_a_users_test_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    capture = make_capture(tmp_path / "chat.db", [chat_session()])
    pytester.makepyfile(test_user=USER_TESTS.format(capture=str(capture)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3, result.stdout.str()
    assert outcomes.get("failed") == 1 and outcomes.get("errors") == 1, result.stdout.str()
    out = result.stdout.str()
    # The deviating client's test fails at teardown with the mismatch rendered.
    assert "ERROR at teardown of test_deviating_client" in out
    assert "the client deviated from the recording:" in out
    assert "mismatch on /ws/chat (recorded session chat-1), client message 1" in out
    assert '"room": "kitchen"' in out
    assert "missing.db: no such capture file" in out
    with CaptureStore.open(capture) as store:
        run = store.get_run("pytest-run")
        assert run is not None and run.sessions == 1 and run.errors == 0
