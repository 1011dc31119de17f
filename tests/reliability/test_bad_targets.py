"""Targets that are not WebSocket servers, closed ports, and servers that send bad frames.

All through the real CLI: ``wsshadow replay`` then ``wsshadow diff``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection

from tests.reliability.kit import assert_one_error, cli, http_server, recorded, ws_server
from wsshadow.replay.capture.model import Run, Source
from wsshadow.replay.capture.store import CaptureStore


def _capture(path: Path, server_payloads: list[str | bytes], n: int = 2) -> Path:
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(
            recorded(
                f"s{i}",
                [t for p in server_payloads for t in (("client", '{"type":"ask"}'), ("server", p))],
            )
            for i in range(n)
        )
    return path


@pytest.mark.parametrize("status", [200, 404])
def test_a_plain_http_server_is_not_a_websocket_target(status: int, tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path / "cap.db", ['{"type":"answer"}'], n=3)
    with http_server(status) as url:
        line = assert_one_error(cli(capsys, ["replay", cap, "--target", url, "--run", "web"]))
    assert f"accepted none of 3 sessions (handshake refused: HTTP {status})" in line
    with CaptureStore.open(cap) as store:
        runs = list(store.summaries("web"))
        assert store.count_sessions() == 3  # the recording is intact
    assert len(runs) == 3 and all(s.status == status for s in runs)
    assert all(s.close_error == f"handshake refused: HTTP {status}" for s in runs)
    # the failed run can still be diffed (exit 1, not a crash): the refused handshake is a
    # handshake difference, 101 recorded against the HTTP status the target gave
    code, out, err = cli(capsys, ["diff", cap, "--candidate", "web", "--format", "json"])
    report = json.loads(out)
    assert code == 1, err
    assert report["sessions"]["divergent"] == 3
    (hs,) = [d for d in report["differences"] if d["kind"] == "handshake"]
    assert hs["count"] == 3 and hs["examples"][0]["expected"] == 101
    assert hs["examples"][0]["actual"] == status


def test_a_closed_port_is_unreachable(tmp_path: Path, capsys) -> None:
    cap = _capture(tmp_path / "cap.db", ['{"type":"answer"}'])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        line = assert_one_error(
            cli(capsys, ["replay", cap, "--target", f"ws://127.0.0.1:{port}", "--run", "down"])
        )
    assert "accepted none of 2 sessions (unreachable:" in line
    with CaptureStore.open(cap) as store:
        assert all((s.close_error or "").startswith("unreachable") for s in store.summaries("down"))


def test_non_json_text_in_a_json_protocol_compares_as_text(tmp_path: Path, capsys) -> None:
    answers = ["plain words, not JSON", '{"type": "answer", broken', '{"type":"answer","n":1}']
    cap = _capture(tmp_path / "cap.db", answers)

    def same(ws: ServerConnection) -> None:
        for k, _ in enumerate(ws):
            ws.send(answers[k])

    def changed(ws: ServerConnection) -> None:
        for k, _ in enumerate(ws):
            ws.send(answers[k].replace("words", "WORDS"))

    with ws_server(same) as url:
        assert cli(capsys, ["replay", cap, "--target", url, "--run", "same"])[0] == 0
    with ws_server(changed) as url:
        assert cli(capsys, ["replay", cap, "--target", url, "--run", "changed"])[0] == 0
    code, out, err = cli(capsys, ["diff", cap, "--candidate", "same", "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["verdict"] == "equivalent"
    code, out, err = cli(capsys, ["diff", cap, "--candidate", "changed", "--format", "json"])
    assert code == 1, err
    report = json.loads(out)
    assert report["sessions"]["divergent"] == 2 and report["sessions"]["errored"] == 0
    (diff,) = report["differences"]
    assert diff["kind"] == "changed_value" and diff["count"] == 2
    example = diff["examples"][0]
    assert "words" in json.dumps(example["expected"]) and "WORDS" in json.dumps(example["actual"])


def test_invalid_utf8_in_a_text_frame_is_a_per_session_error(tmp_path: Path, capsys) -> None:
    """websockets fails the connection with 1007; the session says so, the run goes on."""
    cap = _capture(tmp_path / "cap.db", ['{"type":"answer"}', '{"type":"done"}'], n=3)

    def bad_bytes(ws: ServerConnection) -> None:
        for k, _ in enumerate(ws):
            if k == 0:
                ws.send('{"type":"answer"}')
            else:
                ws.send(b'{"type":"done","x":"\xff\xfe"}', text=True)  # not UTF-8, sent as text

    with ws_server(bad_bytes) as url:
        code, out, err = cli(capsys, ["replay", cap, "--target", url, "--run", "bad"])
    assert code == 0, err  # the target answered: per-session errors, not a failed run
    assert "3 errors" in out
    assert "not valid UTF-8" in out
    with CaptureStore.open(cap) as store:
        for s in store.iter_sessions("bad"):
            assert s.close is not None and s.close.code == 1007
            assert s.close.by.value == "error"
            assert "not valid UTF-8" in (s.close.error or "")
            # what arrived before the bad frame is kept
            assert [m.payload for m in s.messages if m.direction.value == "server"] == [
                '{"type":"answer"}'
            ]
    code, out, err = cli(capsys, ["diff", cap, "--candidate", "bad", "--format", "json"])
    assert code == 1, err
    report = json.loads(out)
    kinds = {d["kind"] for d in report["differences"]}
    assert "missing_event" in kinds and "close" in kinds


@pytest.mark.slow
def test_sixteen_mib_frames_through_replay_and_diff(tmp_path: Path, capsys) -> None:
    big = {"type": "blob", "items": ["x" * 1024 + str(i) for i in range(16 * 1024)]}
    text = json.dumps(big)
    assert len(text) >= 16 * 1024 * 1024
    cap = tmp_path / "cap.db"
    with CaptureStore.open(cap, create=True) as store:
        store.put_session(recorded("big", [("client", text), ("server", text)]))

    with ws_server() as url:  # echo: 16 MiB each way over a real connection
        code, out, err = cli(capsys, ["replay", cap, "--target", url, "--run", "echo"])
        assert code == 0, err
    with CaptureStore.open(cap) as store:
        (s,) = store.iter_sessions("echo")
        assert [len(m.payload) for m in s.messages] == [len(text), len(text)]
        # a candidate that differs in one item deep inside the 16 MiB answer
        doc = json.loads(s.messages[1].payload)
        doc["items"][12345] = "changed"
        store.put_run(Run("changed", "ws://127.0.0.1:1", Source.REPLAY, {}, 1.0, 2.0, 1, 0))
        store.put_session(
            recorded("changed:big", [("client", text), ("server", json.dumps(doc))],
                     run="changed", origin="big")
        )  # fmt: skip
    # moving 16 MiB takes longer than the 1 ms recorded: timing is not what this test is about
    cfg = tmp_path / "wsshadow.toml"
    cfg.write_text("[diff.timing]\nfloor_ms = 60000\n")
    diff = ["diff", cap, "--config", cfg, "--format", "json", "--candidate"]
    code, out, err = cli(capsys, [*diff, "echo"])
    assert code == 0, err
    code, out, err = cli(capsys, [*diff, "changed"])
    assert code == 1, err
    (diff,) = json.loads(out)["differences"]
    assert diff["kind"] == "changed_value" and "12345" in str(diff["path"])
