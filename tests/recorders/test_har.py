"""HAR import: Chrome, Firefox and mitmproxy exports, the CLI wiring, and bad files."""

from __future__ import annotations

import io
import json
import shutil
import zlib
from pathlib import Path

import pytest

from wsshadow.recorders.har import import_har, looks_like_har, read_har
from wsshadow.replay.capture.model import Direction, Opcode, Session, Source
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main
from wsshadow.replay.diff.normalize import unnumbered
from wsshadow.replay.errors import BadInput, CaptureError

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1714557600.0  # 2024-05-01T10:00:00Z
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"


def shape(s: Session) -> list[tuple[Direction, Opcode, str | bytes]]:
    return [(m.direction, m.opcode, m.payload) for m in s.messages]


def import_cli(source: Path, capture: Path, *extra: str) -> list[Session]:
    assert main(["captures", "import", str(source), str(capture), *extra]) == 0
    with CaptureStore.open(capture) as store:
        return list(store.iter_sessions())


def test_chrome_export() -> None:
    echo, deny = read_har(FIXTURES / "chrome.har")
    h = echo.handshake
    assert (h.route, h.query) == ("/ws/echo", "room=7&token=s3cret")
    assert h.subprotocols == (f"jwt.{JWT}", "chat.v2")
    assert (h.status, h.subprotocol) == (101, "chat.v2")
    assert h.request_header("origin") == "http://127.0.0.1:8765"
    assert h.response_header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert echo.started_at == T0
    assert echo.provenance.source is Source.HAR
    assert echo.provenance.tags == ("har:WebInspector",)
    assert shape(echo) == [
        (Direction.SERVER, Opcode.TEXT, '{"type":"hello","room":"7"}'),
        (Direction.CLIENT, Opcode.TEXT, '{"type":"say","text":"hi","access_token":"abc"}'),
        (Direction.SERVER, Opcode.TEXT, "echo:hi"),
        (Direction.CLIENT, Opcode.BINARY, b"\x00\x01\x02\xff"),
        (Direction.SERVER, Opcode.BINARY, b"\xff\x02\x01\x00"),
    ]
    assert [round(m.t, 6) for m in echo.messages] == [0.012, 0.5, 0.503, 1.25, 1.251]
    assert [m.seq for m in echo.messages] == [0, 1, 2, 3, 4]
    assert echo.close is None  # HAR has no close frames
    assert deny.route == "/ws/deny" and deny.handshake.status == 403 and deny.messages == ()


def test_firefox_export() -> None:
    plain, with_messages = read_har(FIXTURES / "firefox.har")
    # Local time with an offset: 12:00+02:00 is 10:00Z.
    assert plain.started_at == T0
    assert plain.handshake.query == "room=9"
    assert plain.handshake.subprotocols == ("chat.v2",)
    assert plain.handshake.subprotocol == "chat.v2"
    assert plain.messages == ()
    assert plain.provenance.tags == ("har:Firefox",)
    assert with_messages.started_at == T0 + 5
    assert shape(with_messages) == [
        (Direction.SERVER, Opcode.TEXT, '{"type":"hello","room":"10"}'),
        (Direction.CLIENT, Opcode.BINARY, b"\x10\x20"),
        (Direction.SERVER, Opcode.BINARY, b"\x20\x10"),
    ]
    assert with_messages.messages[0].t == pytest.approx(0.010)


def test_mitmproxy_export_skips_http_entries() -> None:
    (s,) = read_har(FIXTURES / "mitmproxy.har")
    assert (s.route, s.handshake.query) == ("/ws/echo", "room=3&api_key=k-123")
    assert s.handshake.subprotocols == ("chat.v1", "chat.v2")
    assert s.handshake.subprotocol == "chat.v2"
    assert s.started_at == T0 + 1
    assert shape(s) == [
        (Direction.SERVER, Opcode.TEXT, '{"type":"hello","room":"3"}'),
        (Direction.CLIENT, Opcode.TEXT, "ping é"),
        (Direction.SERVER, Opcode.TEXT, "echo:ping é"),
        (Direction.CLIENT, Opcode.BINARY, bytes(range(8))),
        (Direction.SERVER, Opcode.BINARY, bytes(reversed(range(8)))),
    ]
    assert s.messages[1].t == pytest.approx(0.1)


def test_cli_import_redacts(tmp_path: Path) -> None:
    capture = tmp_path / "c.db"
    sessions = {s.route: s for s in import_cli(FIXTURES / "chrome.har", capture)}
    echo = sessions["/ws/echo"]
    h = echo.handshake
    assert h.request_header("cookie") == "${redacted:header:cookie#2}"
    assert h.query == "room=7&token=${redacted:query:token#1}"
    assert h.subprotocols == ("jwt.${redacted:subprotocol:jwt#3}", "chat.v2")
    assert echo.messages[1].payload == (
        '{"type":"say","text":"hi","access_token":"${redacted:json:access_token#4}"}'
    )
    assert echo.messages[3].payload == b"\x00\x01\x02\xff"
    (m,) = import_cli(FIXTURES / "mitmproxy.har", tmp_path / "m.db")
    assert (
        unnumbered(m.handshake.request_header("authorization"))
        == "${redacted:header:authorization}"
    )
    assert unnumbered(m.handshake.query) == "room=3&api_key=${redacted:query:api_key}"


def test_cli_import_detects_har_by_content_and_zhar(tmp_path: Path) -> None:
    renamed = tmp_path / "export.json"
    shutil.copy(FIXTURES / "firefox.har", renamed)
    assert looks_like_har(renamed)
    assert len(import_cli(renamed, tmp_path / "a.db")) == 2
    zhar = tmp_path / "flows.zhar"
    zhar.write_bytes(zlib.compress((FIXTURES / "mitmproxy.har").read_bytes(), 9))
    assert len(import_cli(zhar, tmp_path / "b.db")) == 1
    assert not looks_like_har(Path(__file__))


def test_session_ids_are_stable_so_reimport_conflicts(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    capture = tmp_path / "c.db"
    first = import_cli(FIXTURES / "chrome.har", capture)
    capsys.readouterr()
    assert main(["captures", "import", str(FIXTURES / "chrome.har"), str(capture)]) == 2
    assert "already in the capture" in capsys.readouterr().err
    again = import_cli(FIXTURES / "chrome.har", capture, "--replace")
    assert sorted(s.id for s in again) == sorted(s.id for s in first)


def test_sanitized_export_imports(tmp_path: Path) -> None:
    """Chrome's default (sanitized) export drops cookies and authorization entirely."""
    doc = json.loads((FIXTURES / "chrome.har").read_text())
    for entry in doc["log"]["entries"]:
        entry["request"]["headers"] = [
            h for h in entry["request"]["headers"] if h["name"].lower() not in ("cookie",)
        ]
        entry["request"]["cookies"] = []
    path = tmp_path / "sanitized.har"
    path.write_text(json.dumps(doc))
    sessions = import_cli(path, tmp_path / "s.db")
    echo = next(s for s in sessions if s.route == "/ws/echo")
    assert echo.handshake.request_header("cookie") is None
    assert len(echo.messages) == 5
    # Asked for, placeholders stand in for the credentials the export left out.
    filled = import_cli(
        path,
        tmp_path / "p.db",
        "--placeholder-header",
        "Cookie",
        "--placeholder-header",
        "authorization",
    )
    echo = next(s for s in filled if s.route == "/ws/echo")
    assert unnumbered(echo.handshake.request_header("cookie")) == "${redacted:header:cookie}"
    assert (
        unnumbered(echo.handshake.request_header("authorization"))
        == "${redacted:header:authorization}"
    )
    # A header the export kept is not replaced.
    (m,) = read_har(FIXTURES / "mitmproxy.har", placeholders=("authorization",))
    assert m.handshake.request_header("authorization") == "Bearer mitm-secret"


def test_placeholder_header_is_for_har_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"format":"wsshadow-capture","format_version":1}\n')
    code = main(
        ["captures", "import", str(jsonl), str(tmp_path / "c.db"), "--placeholder-header", "a"]
    )
    assert code == 2
    assert "HAR files only" in capsys.readouterr().err


def test_import_har_reads_streams() -> None:
    text = (FIXTURES / "mitmproxy.har").read_text()
    assert [s.route for s in import_har(io.StringIO(text))] == ["/ws/echo"]
    assert [s.route for s in import_har(io.BytesIO(text.encode()))] == ["/ws/echo"]


def _entry(messages: object) -> dict[str, object]:
    return {
        "startedDateTime": "2024-05-01T10:00:00.000Z",
        "request": {"method": "GET", "url": "ws://h/ws", "headers": []},
        "response": {"status": 101, "headers": []},
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
    }


HTTP_ONLY = {"log": {"entries": [{"request": {"url": "http://h/"}, "response": {"status": 200}}]}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{nope", "not a HAR file (not JSON"),
        ("[1, 2]", 'no top-level {"log"'),
        (json.dumps({"log": {"entries": 3}}), "log.entries: expected a list"),
        (json.dumps(HTTP_ONLY), "no WebSocket entries among 1 HAR entries"),
        (
            json.dumps({"log": {"entries": [HTTP_ONLY["log"]["entries"][0], _entry("x")]}}),  # type: ignore[index]
            "log.entries[1]._webSocketMessages: expected a list, got a string",
        ),
        (
            json.dumps(
                {"log": {"entries": [_entry([{"type": "send", "time": 1, "data": "a"}, 5])]}}
            ),
            "log.entries[0]._webSocketMessages[1]: expected an object, got a number",
        ),
        (
            json.dumps({"log": {"entries": [_entry([{"type": "up", "time": 1, "data": "a"}])]}}),
            "log.entries[0]._webSocketMessages[0].type: expected 'send' or 'receive'",
        ),
        (
            json.dumps(
                {"log": {"entries": [_entry([{"type": "send", "time": "x", "data": "a"}])]}}
            ),
            "log.entries[0]._webSocketMessages[0].time: expected a number",
        ),
        (
            json.dumps(
                {
                    "log": {
                        "entries": [_entry([{"type": "send", "time": 1, "opcode": 7, "data": ""}])]
                    }
                }
            ),
            "log.entries[0]._webSocketMessages[0].opcode: expected 1 (text), 2 (binary)",
        ),
        (
            json.dumps(
                {
                    "log": {
                        "entries": [
                            _entry([{"type": "send", "time": 1, "opcode": 2, "data": "%%"}])
                        ]
                    }
                }
            ),
            "log.entries[0]._webSocketMessages[0].data: binary message is not valid base64",
        ),
        (
            json.dumps({"log": {"entries": [_entry([{"type": "send", "time": 1}])]}}),
            "log.entries[0]._webSocketMessages[0].data: expected a string, got null",
        ),
        (
            json.dumps({"log": {"entries": [{**_entry([]), "request": {"url": 5}}]}}),
            "log.entries[0].request.url: expected the WebSocket URL",
        ),
        (
            json.dumps({"log": {"entries": [{**_entry([]), "startedDateTime": "yesterday"}]}}),
            "log.entries[0].startedDateTime: expected an ISO 8601 date",
        ),
    ],
)
def test_bad_har_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text(content)
    capture = tmp_path / "c.db"
    assert main(["captures", "import", str(bad), str(capture)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert expected in err and str(bad) in err
    assert "Traceback" not in err
    assert not capture.exists()  # the whole file is checked before the capture is opened
    with pytest.raises(CaptureError):
        read_har(bad)


def test_millisecond_times_and_error_frames() -> None:
    doc = {
        "log": {
            "entries": [
                _entry(
                    [
                        {"type": "send", "time": T0 * 1000 + 250, "opcode": 1, "data": "a"},
                        {"type": "error", "time": T0 * 1000 + 900, "opcode": -1, "data": "reset"},
                    ]
                )
            ]
        }
    }
    (s,) = read_har(io.StringIO(json.dumps(doc)))
    assert s.messages[0].t == pytest.approx(0.25)
    assert s.close is not None and s.close.error == "reset" and s.close.t == pytest.approx(0.9)
    assert isinstance(CaptureError("x"), BadInput)


def test_real_headless_chromium_export() -> None:
    """chromium.har: recorded by make_chromium_har.py through the DevTools Protocol."""
    (s,) = read_har(FIXTURES / "chromium.har")
    h = s.handshake
    assert (h.route, h.query, h.status, h.subprotocol) == (
        "/ws/echo",
        "room=7&token=s3cret",
        101,
        "chat.v2",
    )
    assert h.subprotocols == (f"jwt.{JWT}", "chat.v2")
    assert h.request_header("user-agent") is not None and "Chrome" in h.request_header("user-agent")  # type: ignore[operator]
    say = '{"type":"say","text":"hi","access_token":"abc"}'
    assert shape(s) == [
        (Direction.SERVER, Opcode.TEXT, '{"type":"hello","room":"7"}'),
        (Direction.CLIENT, Opcode.TEXT, say),
        (Direction.SERVER, Opcode.TEXT, "echo:" + say),
        (Direction.CLIENT, Opcode.BINARY, b"\x00\x01\x02\xff"),
        (Direction.SERVER, Opcode.BINARY, b"\xff\x02\x01\x00"),
        (Direction.CLIENT, Opcode.TEXT, "bye"),
    ]
    times = [m.t for m in s.messages]
    assert times == sorted(times) and 0 <= times[0] < 1 and times[-1] < 5
