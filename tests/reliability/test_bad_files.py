"""Malformed JSONL, HAR and configuration files through the real CLI.

Each gives exit 2 and one line on stderr naming the file (and the line, entry
or key), and a capture that existed before is left with exactly its sessions.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.kit import assert_one_error, cli, make_capture, recorded
from wsshadow.replay.capture.jsonl import session_to_dict
from wsshadow.replay.capture.store import CaptureStore

GOOD_SESSION: dict[str, Any] = session_to_dict(
    recorded("ok1", [("client", "hi"), ("server", b"\x00")])
)
MSG0: dict[str, Any] = GOOD_SESSION["messages"][0]


def _jsonl(*lines: object) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


HEADER = {"format": "wsshadow-capture", "format_version": 1}

BAD_JSONL: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty file"),
    "not-json": (b"hello world\n", ":1: not JSON"),
    "invalid-utf8": (b"\xff\xfe\x00garbage\n", ":1: not UTF-8"),
    "no-header": (_jsonl(GOOD_SESSION), ":1:"),
    "header-not-int": (_jsonl({**HEADER, "format_version": "one"}), "format_version"),
    "newer-version": (_jsonl({**HEADER, "format_version": 99}, GOOD_SESSION), "upgrade"),
    "session-not-object": (_jsonl(HEADER, [1, 2, 3]), ":2:"),
    "missing-id": (_jsonl(HEADER, {**GOOD_SESSION, "id": None} | {}), ":2:"),
    "wrong-type-started": (_jsonl(HEADER, {**GOOD_SESSION, "started_at": "yesterday"}), ":2:"),
    "bad-direction": (
        _jsonl(HEADER, {**GOOD_SESSION, "messages": [{**MSG0, "dir": "sideways"}]}),
        "dir",
    ),
    "bad-opcode": (
        _jsonl(HEADER, {**GOOD_SESSION, "messages": [{**MSG0, "op": "telepathy"}]}),
        "op",
    ),
    "bad-base64": (
        _jsonl(HEADER, {**GOOD_SESSION, "messages": [{**MSG0, "op": "binary", "b64": "!!!"}]}),
        "base64",
    ),
    "bad-headers": (
        _jsonl(HEADER, {**GOOD_SESSION, "handshake": {"route": "/ws", "request_headers": "x"}}),
        "request_headers",
    ),
    "deep-nesting": (_jsonl(HEADER) + b"[" * 100_000 + b"\n", ":2:"),
    "good-then-truncated": (
        _jsonl(HEADER, GOOD_SESSION) + json.dumps({**GOOD_SESSION, "id": "ok2"}).encode()[:40],
        ":3: not JSON",
    ),
}


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return make_capture(tmp_path / "cap.db", sessions=3, turns=2)


def _ids(cap: Path) -> list[str]:
    with CaptureStore.open(cap) as store:
        return [s.id for s in store.iter_all_sessions()]


@pytest.mark.parametrize("name", list(BAD_JSONL))
def test_malformed_jsonl_import_changes_nothing(
    name: str, capture: Path, tmp_path: Path, capsys
) -> None:
    data, needle = BAD_JSONL[name]
    src = tmp_path / f"{name}.jsonl"
    src.write_bytes(data)
    before = _ids(capture)
    assert_one_error(cli(capsys, ["captures", "import", src, capture]), str(src), needle)
    assert _ids(capture) == before  # nothing half-imported


def _har(entries: object) -> bytes:
    return json.dumps({"log": {"version": "1.2", "entries": entries}}).encode()


_WS_ENTRY = {
    "_resourceType": "websocket",
    "startedDateTime": "2026-11-26T10:00:00Z",
    "request": {"method": "GET", "url": "ws://127.0.0.1:9/ws", "headers": []},
    "response": {"status": 101, "headers": []},
    "_webSocketMessages": [{"type": "send", "time": 1764150000.1, "opcode": 1, "data": "hi"}],
}

BAD_HAR: dict[str, tuple[str, bytes]] = {
    "truncated": (".har", _har([_WS_ENTRY])[:70]),
    "not-json": (".har", b"<html>not a har</html>"),
    "not-utf8": (".har", b"\xff\xfe\xfa{}"),
    "log-not-object": (".har", b'{"log": 3}'),
    "entries-not-list": (".har", _har("many")),
    "entry-not-object": (".har", _har([7])),
    "messages-not-list": (".har", _har([{**_WS_ENTRY, "_webSocketMessages": {"a": 1}}])),
    "message-bad-opcode": (
        ".har",
        _har(
            [
                {
                    **_WS_ENTRY,
                    "_webSocketMessages": [
                        {"type": "send", "time": 1.0, "opcode": "x", "data": "hi"}
                    ],
                }
            ]
        ),
    ),
    "message-bad-type": (
        ".har",
        _har(
            [
                {
                    **_WS_ENTRY,
                    "_webSocketMessages": [
                        {"type": "sideways", "time": 1.0, "opcode": 1, "data": "hi"}
                    ],
                }
            ]
        ),
    ),
    "headers-wrong": (
        ".har",
        _har(
            [
                {
                    **_WS_ENTRY,
                    "request": {
                        **_WS_ENTRY["request"],  # type: ignore[dict-item]
                        "headers": "Authorization: x",
                    },
                }
            ]
        ),
    ),
    "binary-bad-base64": (
        ".har",
        _har(
            [
                {
                    **_WS_ENTRY,
                    "_webSocketMessages": [
                        {"type": "receive", "time": 1.0, "opcode": 2, "data": "***"}
                    ],
                }
            ]
        ),
    ),
    "sniffed-no-suffix": (".json", b'{"log": {"entries": 5}}'),
    "zhar-garbage": (".zhar", b"\x78\x9c" + b"\x00" * 30),
}


@pytest.mark.parametrize("name", list(BAD_HAR))
def test_malformed_har_import_changes_nothing(
    name: str, capture: Path, tmp_path: Path, capsys
) -> None:
    suffix, data = BAD_HAR[name]
    src = tmp_path / f"{name}{suffix}"
    src.write_bytes(data)
    before = _ids(capture)
    assert_one_error(cli(capsys, ["captures", "import", src, capture]), str(src))
    assert _ids(capture) == before


def test_a_good_har_entry_does_import(capture: Path, tmp_path: Path, capsys) -> None:
    """Control for the table above: the entry they all start from is accepted."""
    src = tmp_path / "good.har"
    src.write_bytes(_har([_WS_ENTRY]))
    code, _out, err = cli(capsys, ["captures", "import", src, capture])
    assert code == 0, err
    assert len(_ids(capture)) == 7


def test_import_of_a_missing_file_or_directory(capture: Path, tmp_path: Path, capsys) -> None:
    assert_one_error(
        cli(capsys, ["captures", "import", tmp_path / "nope.jsonl", capture]), "no such"
    )
    assert_one_error(cli(capsys, ["captures", "import", tmp_path, capture]), "directory")
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"format_version": 1}\n')
    assert_one_error(cli(capsys, ["captures", "import", src, tmp_path / "no" / "dir" / "c.db"]))
    assert not (tmp_path / "no").exists()


BAD_CONFIG: dict[str, tuple[str, str]] = {
    "bad-toml": ("[diff\nordering = ", "not valid TOML"),
    "bad-toml-string": ('[diff]\nevent_keys = ["a]\n', "not valid TOML"),
    "not-utf8": ("\udcff", "cannot read"),
    "unknown-top": ("colour = 1\n", "colour: unknown key"),
    "unknown-nested": ("[diff.timing]\nratioo = 2\n", "[diff.timing].ratioo: unknown key"),
    "wrong-type-list": ('[diff]\nevent_keys = "type"\n', "[diff].event_keys: expected a list"),
    "wrong-type-number": (
        '[diff.timing]\nratio = "fast"\n',
        "[diff.timing].ratio: expected a number",
    ),
    "wrong-type-bool-as-int": ("[replay]\nconcurrency = true\n", "[replay].concurrency"),
    "table-expected": ('diff = "loose"\n', "diff: expected a table"),
    "bad-regex": ('[diff.custom_masks]\nid = "(["\n', "[diff.custom_masks].id"),
    "bad-ordering": ('[diff]\nordering = "chaos"\n', "[diff].ordering"),
    "bad-route-table": ('[routes."/ws"]\nevent_keys = 5\n', '[routes."/ws"].event_keys'),
    "credential-not-string": ("[credentials]\ntoken = 12\n", "[credentials].token"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIG))
def test_bad_config_names_file_and_key(name: str, capture: Path, tmp_path: Path, capsys) -> None:
    text, needle = BAD_CONFIG[name]
    cfg = tmp_path / "wsshadow.toml"
    if name == "not-utf8":
        cfg.write_bytes(b"[diff]\nevent_keys = ['\xff']\n")
    else:
        cfg.write_text(text)
    before = _ids(capture)
    line = assert_one_error(
        cli(capsys, ["diff", capture, "--candidate", "r1", "--config", cfg]), str(cfg), needle
    )
    assert "Traceback" not in line
    assert _ids(capture) == before


def test_pyproject_table_of_the_wrong_type(capture: Path, tmp_path: Path, capsys) -> None:
    py = tmp_path / "pyproject.toml"
    py.write_text('[tool]\nwsshadow = "yes"\n')
    assert_one_error(
        cli(capsys, ["diff", capture, "--candidate", "r1", "--config", py]), "[tool.wsshadow]"
    )


def test_a_config_directory_or_missing_file(capture: Path, tmp_path: Path, capsys) -> None:
    for cfg in (tmp_path, tmp_path / "absent.toml"):
        assert_one_error(
            cli(capsys, ["diff", capture, "--candidate", "r1", "--config", cfg]), str(cfg)
        )


def test_binary_payload_control(capture: Path) -> None:
    # the base64 the bad-base64 case mangles is what a good binary message carries
    assert base64.b64decode(base64.b64encode(b"\x00\x01")) == b"\x00\x01"


def test_a_zlib_bomb_is_refused_before_it_expands(tmp_path: Path, capsys) -> None:
    """A .zhar that inflates past the limit is refused; memory stays near the limit."""
    import zlib

    from wsshadow.recorders.har import read_har
    from wsshadow.replay.errors import CaptureError

    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    bomb = b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()
    assert len(bomb) < 100_000  # 64 MiB of spaces in a few dozen KiB
    src = tmp_path / "bomb.zhar"
    src.write_bytes(bomb)
    with pytest.raises(CaptureError, match="decompresses to more than 1,048,576 bytes"):
        read_har(src, max_bytes=1 << 20)
    good = tmp_path / "good.zhar"
    good.write_bytes(zlib.compress(_har([_WS_ENTRY])))
    assert len(read_har(good, max_bytes=1 << 20)) == 1
    truncated = tmp_path / "cut.zhar"
    truncated.write_bytes(zlib.compress(_har([_WS_ENTRY]))[:-20])
    with pytest.raises(CaptureError, match="truncated"):
        read_har(truncated)
    assert_one_error(cli(capsys, ["captures", "import", truncated, tmp_path / "c.db"]), "truncated")
