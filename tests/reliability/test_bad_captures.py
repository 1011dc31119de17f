"""Damaged, foreign and newer capture files through every command that opens one.

Each run goes through the real CLI entry point and must give exit 2, one line
on stderr, no traceback, and leave the damaged file exactly as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.kit import assert_one_error, cli, digest, make_capture, recorded, ws_server
from wsshadow.replay.capture.jsonl import write_jsonl
from wsshadow.replay.capture.store import CaptureStore


def _truncate_half(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _truncate_header(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:60])


def _garbage_pages(p: Path) -> None:
    data = bytearray(p.read_bytes())
    # Keep page 1 (the schema) and scribble over the b-tree pages after it.
    for i in range(4096, len(data), 7):
        data[i] = (i * 131) % 251
    p.write_bytes(bytes(data))


def _garbage_tail(p: Path) -> None:
    data = bytearray(p.read_bytes())
    # The schema and the first sessions stay readable; later frame pages are damaged.
    for i in range(len(data) * 3 // 4, len(data), 5):
        data[i] = (i * 131) % 251
    p.write_bytes(bytes(data))


def _zero_header(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[:100] = bytes(100)
    p.write_bytes(bytes(data))


def _not_sqlite(p: Path) -> None:
    p.write_text("this is not a capture\n" * 50)


def _foreign_sqlite(p: Path) -> None:
    p.unlink(missing_ok=True)
    with sqlite3.connect(p) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.close()


def _newer_format(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    conn.commit()
    conn.close()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated-half": _truncate_half,
    "truncated-header": _truncate_header,
    "garbage-pages": _garbage_pages,
    "garbage-tail": _garbage_tail,
    "zeroed-header": _zero_header,
    "not-sqlite": _not_sqlite,
    "foreign-sqlite": _foreign_sqlite,
    "newer-format": _newer_format,
}

COMMANDS = ["ls", "ls-run", "show", "export", "import", "replay", "diff", "merge", "report"]


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with ws_server() as url:
        yield url


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_capture(tmp_path_factory.mktemp("tpl") / "good.db")


def _argv(command: str, cap: Path, tmp: Path, url: str) -> list[str]:
    good_jsonl = tmp / "good.jsonl"
    with good_jsonl.open("wb") as f:
        write_jsonl([recorded("new1", [("client", "hi"), ("server", "hi")])], f)
    return {
        "ls": ["captures", "ls", cap],
        "ls-run": ["captures", "ls", cap, "--run", "r1"],
        "show": ["captures", "show", cap, "r1:s19"],
        "export": ["captures", "export", cap, tmp / "out.jsonl"],
        "import": ["captures", "import", good_jsonl, cap],
        "replay": ["replay", cap, "--target", url, "--run", "again"],
        "diff": ["diff", cap, "--candidate", "r1"],
        "merge": ["captures", "merge", tmp / "merged.db", cap],
        # report reads a JSON report: a capture file handed to it instead is bad input too
        "report": ["report", cap],
    }[command]


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", COMMANDS)
def test_damaged_capture_gives_one_line_and_is_left_alone(
    damage: str, command: str, template: Path, tmp_path: Path, echo_url: str, capsys
) -> None:
    cap = tmp_path / "cap.db"
    cap.write_bytes(template.read_bytes())
    DAMAGE[damage](cap)
    before = digest(cap)
    line = assert_one_error(cli(capsys, _argv(command, cap, tmp_path, echo_url)))
    assert digest(cap) == before, f"{command} changed the damaged capture"
    assert not (tmp_path / "out.jsonl").exists(), "a failed export left a file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")]
    if damage == "newer-format" and command != "report":
        assert "version 99" in line and "upgrade" in line
    if command != "report":
        assert str(cap) in line  # the message names the file


def test_newer_format_capture_keeps_its_data(template: Path, tmp_path: Path, capsys) -> None:
    cap = tmp_path / "cap.db"
    cap.write_bytes(template.read_bytes())
    _newer_format(cap)
    for argv in (["captures", "ls", cap], ["diff", cap, "--candidate", "r1"]):
        assert_one_error(cli(capsys, argv), "upgrade wsshadow")
    conn = sqlite3.connect(cap)
    assert conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone() == ("99",)
    assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (40,)
    conn.close()


def test_foreign_sqlite_file_keeps_its_rows(tmp_path: Path, capsys) -> None:
    db = tmp_path / "notes.db"
    _foreign_sqlite(db)
    assert_one_error(cli(capsys, ["captures", "import", tmp_path / "none.jsonl", db]))
    with (tmp_path / "one.jsonl").open("wb") as f:
        write_jsonl([recorded("x", [("client", "a")])], f)
    assert_one_error(cli(capsys, ["captures", "import", tmp_path / "one.jsonl", db]), "not a")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
    assert "sessions" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_a_good_capture_still_works_after_all_that(template: Path, tmp_path: Path, capsys) -> None:
    """Control: the same commands on the undamaged template succeed (so the failures above
    are about the damage, not the arguments)."""
    cap = tmp_path / "cap.db"
    cap.write_bytes(template.read_bytes())
    for argv in (
        ["captures", "ls", cap],
        ["captures", "show", cap, "s1"],
        ["captures", "export", cap, tmp_path / "out.jsonl"],
        ["diff", cap, "--candidate", "r1", "--format", "json"],
    ):
        code, _out, err = cli(capsys, argv)
        assert code == 0, (argv, err)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 41 and json.loads(lines[0])["format_version"] == 1
    with CaptureStore.open(cap) as store:
        assert store.count_sessions() == 20 and store.count_sessions("r1") == 20
