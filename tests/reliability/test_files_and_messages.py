"""Issue 19, items 6, 8 and 9: files a failed or read-only command must not leave or
touch, reports' modes, and one clear line (with the line and field) for bad input.

Everything goes through the real ``wsshadow`` entry point in-process, with real
files, real SQLite and, for ``record`` and ``replay``, real sockets on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.kit import assert_one_error, cli, digest, make_capture, recorded, ws_server
from wsshadow.recorders.har import write_har
from wsshadow.replay.capture.jsonl import session_to_dict
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.diff.normalize import unnumbered

HEADER = {"format": "wsshadow-capture", "format_version": 1}
GOOD: dict[str, Any] = session_to_dict(
    recorded("ok1", [("client", "hi"), ("server", "there"), ("client", "bye")])
)


def _jsonl(path: Path, *sessions: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in (HEADER, *sessions)))
    return path


def _with_message(field: str, value: Any, index: int = 1) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    doc["messages"][index][field] = value
    return doc


def _leftovers(directory: Path, *names: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(names))


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ---- item 8: files ----------------------------------------------------------------


def test_a_failed_import_into_a_new_path_leaves_no_file(tmp_path: Path, capsys) -> None:
    bad = _jsonl(tmp_path / "bad.jsonl", GOOD, _with_message("dir", "sideways"))
    assert_one_error(cli(capsys, ["captures", "import", bad, tmp_path / "new.db"]), "bad.jsonl:3")
    har = tmp_path / "bad.har"
    har.write_text('{"log": {"entries": [{"request": 5}]}}')
    assert_one_error(cli(capsys, ["captures", "import", har, tmp_path / "new2.db"]), "no WebSocket")
    assert _leftovers(tmp_path, "new") == []
    # into an existing capture: the capture stays, byte for byte
    cap = make_capture(tmp_path / "old.db", sessions=3)
    before = digest(cap)
    assert_one_error(cli(capsys, ["captures", "import", bad, cap]), "bad.jsonl:3")
    assert digest(cap) == before


def test_record_on_a_busy_port_leaves_no_capture(tmp_path: Path, capsys) -> None:
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cap = tmp_path / "rec.db"
        line = assert_one_error(
            cli(
                capsys,
                ["record", "--upstream", "ws://127.0.0.1:9", "--listen", f"127.0.0.1:{port}", cap],
            ),
            "cannot listen",
        )
    finally:
        busy.close()
    assert "in use" in line
    assert _leftovers(tmp_path, "rec") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["captures", "ls", "{cap}"],
        ["captures", "show", "{cap}", "x"],
        ["captures", "export", "{cap}", "{dir}/out.jsonl"],
        ["diff", "{cap}", "--candidate", "r1"],
        ["replay", "{cap}", "--target", "ws://127.0.0.1:9"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_commands_refuse_an_empty_file_and_leave_it_empty(
    tmp_path: Path, capsys, argv: list[str]
) -> None:
    cap = tmp_path / "zero.db"
    cap.touch()
    args = [a.format(cap=cap, dir=tmp_path) for a in argv]
    assert_one_error(cli(capsys, args), "zero.db: an empty file, not a wsshadow capture")
    assert cap.stat().st_size == 0
    assert _leftovers(tmp_path, "zero", "out") == ["zero.db"]


def test_read_only_commands_leave_a_good_capture_byte_for_byte(tmp_path: Path, capsys) -> None:
    """ls, show, export and diff read a capture: its bytes, its mtime and the directory
    (no -wal, -shm or stray file) are as they were."""
    cap = make_capture(tmp_path / "cap.db", sessions=3)
    before, mtime = digest(cap), cap.stat().st_mtime_ns
    out = tmp_path / "out.jsonl"
    for argv in (
        ["captures", "ls", cap],
        ["captures", "ls", cap, "--run", "r1"],
        ["captures", "show", cap, "s0"],
        ["captures", "export", cap, out],
        ["diff", cap, "--candidate", "r1"],
    ):
        code, _out, err = cli(capsys, argv)
        assert code in (0, 1), (argv, err)
    assert digest(cap) == before
    assert cap.stat().st_mtime_ns == mtime
    assert _leftovers(tmp_path, "cap") == ["cap.db"]


def test_reports_are_owner_only(open_umask: None, tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path / "cap.db", sessions=2)
    reports = [tmp_path / f"r.{ext}" for ext in ("json", "html", "md", "xml", "txt")]
    argv: list[object] = ["diff", cap, "--candidate", "r1", "-o", tmp_path / "out.json"]
    for r in reports:
        argv += ["--report", r]
    code, _out, err = cli(capsys, argv)
    assert code in (0, 1), err
    for r in [tmp_path / "out.json", *reports]:
        assert stat.S_IMODE(r.stat().st_mode) == 0o600, r


# ---- items 6 and 9: one clear line ---------------------------------------------------


@pytest.mark.parametrize(
    ("session", "needle"),
    [
        (_with_message("t", float("nan")), "session.messages[1].t: nan is not a time"),
        (_with_message("t", -5), "session.messages[1].t: -5.0 is not a time"),
        (_with_message("t", 1e308), "session.messages[1].t: 1e+308 is not a time"),
        (_with_message("t", 10**400), "session.messages[1].t: 1000"),
        (_with_message("seq", 0), "session.messages[1].seq: 0 is already the seq of messages[0]"),
        ({**GOOD, "close": {**GOOD["close"], "t": -1}}, "session.close.t: -1.0 is not a time"),
        (
            {**GOOD, "started_at": float("inf")},
            "session.started_at: inf is not a time in seconds since 1970",
        ),
    ],
    ids=[
        "nan-t",
        "negative-t",
        "huge-t",
        "bigint-t",
        "duplicate-seq",
        "negative-close-t",
        "infinite-start",
    ],
)
def test_bad_jsonl_numbers_name_line_and_field(
    tmp_path: Path, capsys, session: dict[str, Any], needle: str
) -> None:
    src = _jsonl(tmp_path / "in.jsonl", GOOD | {"id": "first"}, session)
    cap = make_capture(tmp_path / "cap.db", sessions=2)
    before = digest(cap)
    line = assert_one_error(cli(capsys, ["captures", "import", src, cap]), "in.jsonl:3: ", needle)
    assert "constraint" not in line.lower()
    assert digest(cap) == before


@pytest.mark.parametrize("value", [-5, 1e308, float("inf")], ids=["negative", "huge", "inf"])
def test_absurd_har_times_are_refused_naming_entry_and_field(
    tmp_path: Path, capsys, value: float
) -> None:
    buf = io.StringIO()
    write_har([recorded("s1", [("client", "a"), ("server", "b")])], buf)
    doc = json.loads(buf.getvalue())
    doc["log"]["entries"][0]["_webSocketMessages"][1]["time"] = value
    src = tmp_path / "in.har"
    src.write_text(json.dumps(doc))
    assert_one_error(
        cli(capsys, ["captures", "import", src, tmp_path / "cap.db"]),
        "in.har: ",
        "log.entries[0]._webSocketMessages[1].time: ",
    )
    assert _leftovers(tmp_path, "cap") == []


def test_a_session_far_past_a_year_is_refused(tmp_path: Path, capsys) -> None:
    """Epoch times that are each plausible, but 20 years apart within one session."""
    buf = io.StringIO()
    write_har([recorded("s1", [("client", "a"), ("server", "b")])], buf)
    doc = json.loads(buf.getvalue())
    doc["log"]["entries"][0]["_webSocketMessages"][1]["time"] += 20 * 365 * 86400
    src = tmp_path / "in.har"
    src.write_text(json.dumps(doc))
    assert_one_error(
        cli(capsys, ["captures", "import", src, tmp_path / "cap.db"]),
        "_webSocketMessages[1].time: ",
        "after the session started",
    )


def test_an_unsendable_recorded_subprotocol_is_a_clear_session_error(
    tmp_path: Path, capsys
) -> None:
    s = session_to_dict(recorded("s1", [("client", "a")], subprotocols=("chat v1",)))
    src = _jsonl(tmp_path / "in.jsonl", s)
    cap = tmp_path / "cap.db"
    assert cli(capsys, ["captures", "import", src, cap])[0] == 0
    with ws_server() as url:
        code, out, err = cli(capsys, ["replay", cap, "--target", url, "--run", "r"])
    assert code == 2
    assert "internal error" not in out + err
    assert "ValueError" not in out + err
    assert "the recorded handshake cannot be sent as it is: invalid subprotocol" in out
    assert len(err.strip().splitlines()) == 1


def test_every_missing_credential_is_named_at_once(tmp_path: Path, capsys) -> None:
    s = recorded(
        "s1",
        [("client", json.dumps({"type": "login", "password": "p1", "api_key": "k1"}))],
        headers=(("Authorization", "Bearer a1"),),
        query="token=t1",
    )
    src = _jsonl(tmp_path / "in.jsonl", session_to_dict(s))
    cap = tmp_path / "cap.db"
    assert cli(capsys, ["captures", "import", src, cap])[0] == 0
    with CaptureStore.open(cap) as store:
        assert "${redacted:json:api_key}" in unnumbered(
            str(store.get_session("s1").messages[0].payload)
        )
    with ws_server() as url:
        code, out, err = cli(
            capsys, ["replay", cap, "--target", url, "--run", "r", "--credential", "token=t2"]
        )
    text = out + err
    assert code == 2, text
    line = next(line for line in out.splitlines() if "credentials nobody supplied" in line)
    for name in ("header:authorization#2", "json:password#3", "json:api_key#4"):
        assert "${redacted:" + name + "}" in line, line
    assert "query:token" not in line  # that one was given
