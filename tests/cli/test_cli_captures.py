"""The captures CLI, run in-process through the real entry point."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.capture.test_store import SAMPLE
from wsshadow.replay.cli import main

README = Path(__file__).parents[2] / "README.md"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_ls_show_export_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "c.db", tmp_path / "y.jsonl"
    assert run(capsys, "captures", "import", str(SAMPLE), str(db))[0] == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    code, listing, _ = run(capsys, "captures", "ls", str(db))
    assert code == 0
    lines = listing.splitlines()
    assert lines[0].split() == [
        "session",
        "route",
        "started",
        "duration",
        "client",
        "server",
        "close",
        "source",
        "dialect",
        "scenario",
        "credentials",  # what its placeholders ask for (a capture from before numbering)
    ]
    assert lines[1].split()[-3] == "json"
    assert lines[1].split()[-1] == "authorization,jwt" and lines[2].split()[-1] == "-"
    assert "s-chat-0001" in lines[1] and "1000 by client" in lines[1]
    assert all(line.split()[-2] == "-" for line in lines[1:4])  # unlinked: each replays alone
    assert "4001 by server" in lines[2] and "refused 403" in lines[3]
    code, shown, _ = run(capsys, "captures", "show", str(db), "s-bin")
    assert code == 0 and "C→S  binary <16 bytes> 00 01 02" in shown
    assert "closed by server with 4001 'unauthorized'" in shown
    assert run(capsys, "captures", "export", str(db), str(out))[0] == 0
    assert out.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such capture file"),
        (b"garbage" * 1000, "not a readable wsshadow capture"),
    ],
)
def test_bad_captures_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, expected: str
) -> None:
    db = tmp_path / "bad.db"
    if content is not None:
        db.write_bytes(content)
    code, out, err = run(capsys, "captures", "ls", str(db))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_malformed_jsonl_names_line_and_keeps_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    assert run(capsys, "captures", "import", str(SAMPLE), str(db))[0] == 0
    bad = tmp_path / "bad.jsonl"
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    bad.write_bytes(
        lines[0] + b'{"id": "zzz", "started_at": 1, "handshake": {"route": "/x"}}\n' + b"{broken\n"
    )
    code, _, err = run(capsys, "captures", "import", str(bad), str(db))
    assert code == 2 and "bad.jsonl:3: not JSON" in err and err.count("\n") == 1
    # nothing of the failed import landed, and what was there is intact
    code, listing, _ = run(capsys, "captures", "ls", str(db))
    assert code == 0 and "zzz" not in listing and listing.count("s-") == 3


def test_newer_jsonl_and_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newer = tmp_path / "n.jsonl"
    newer.write_text('{"format":"wsshadow-capture","format_version":2}\n')
    code, _, err = run(capsys, "captures", "import", str(newer), str(tmp_path / "c.db"))
    assert code == 2 and "format version 2" in err and "upgrade wsshadow" in err
    code, _, err = run(
        capsys, "captures", "import", str(tmp_path / "nope.jsonl"), str(tmp_path / "c.db")
    )
    assert code == 2 and "no such file" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "captures", "ls")
    assert code == 2 and "Missing argument" in err


def test_every_command_is_in_the_readme() -> None:
    import typer.main

    from wsshadow.replay.cli.app import app

    readme = README.read_text()
    group = typer.main.get_group(app)
    missing = []
    for name, command in group.commands.items():
        subs = getattr(command, "commands", None)
        names = [f"{name} {sub}" for sub in subs] if subs else [name]
        missing += [n for n in names if f"wsshadow {n}" not in readme]
    assert missing == []


@pytest.mark.parametrize("seed", range(6))
def test_corrupted_pages_give_one_line_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    import random

    from tests.conftest import make_session
    from wsshadow.replay.capture.store import CaptureStore

    db = tmp_path / "c.db"
    with CaptureStore.open(db, create=True) as store:
        store.put_sessions(
            make_session(
                f"s{i}", messages=[("server", "text", f"m{i}-{j}" * 30) for j in range(10)]
            )
            for i in range(40)
        )
    data = bytearray(db.read_bytes())
    rng = random.Random(seed)
    for _ in range(20):  # scribble over pages past the header
        at = rng.randrange(4096, len(data) - 64)
        data[at : at + 64] = rng.randbytes(64)
    db.write_bytes(bytes(data))
    codes = []
    for args in (["captures", "ls", str(db)], ["captures", "export", str(db), "-"]):
        codes.append(main(args))
        _, err = capsys.readouterr()
        assert "Traceback" not in err
        if codes[-1] == 2:
            assert err.count("\n") == 1 and "wsshadow: error:" in err
    # exporting reads every page: the damage is always noticed there
    assert codes[1] == 2


def test_show_decodes_events_and_ls_names_the_dialect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import make_session
    from wsshadow.replay.capture.store import CaptureStore

    db = tmp_path / "c.db"
    sio = make_session("s-sio", route="/socket.io/", query="EIO=4&transport=websocket", messages=[
        ("server", "text", '0{"sid":"x1","upgrades":[],"pingInterval":25000}'),
        ("client", "text", '421["chat",{"text":"hi"}]'),
        ("server", "text", '431[{"ok":true}]'),
        ("server", "text", "2"),
    ])  # fmt: skip
    with CaptureStore.open(db, create=True) as store:
        store.put_sessions([sio])
    code, listing, _ = run(capsys, "captures", "ls", str(db))
    assert code == 0 and listing.splitlines()[1].split()[-2:] == ["socketio", "-"]
    code, shown, _ = run(capsys, "captures", "show", str(db), "s-sio")
    assert code == 0 and "dialect   socketio" in shown
    assert 'C→S  event  chat #/#1 {"text": "hi"}' in shown
    assert 'S→C  event  ack #/#1 (reply) {"ok": true}' in shown
    assert "S→C  event  ping (control)" in shown
    code, shown, _ = run(capsys, "captures", "show", str(db), "s-sio", "--raw")
    assert code == 0 and '431[{"ok":true}]' in shown
    code, shown, _ = run(capsys, "captures", "show", str(db), "s-sio", "--dialect", "raw")
    assert code == 0 and "dialect   raw" in shown and '431[{"ok":true}]' in shown
    code, _, err = run(capsys, "captures", "show", str(db), "s-sio", "--dialect", "nope")
    assert code == 2 and "unknown dialect 'nope'" in err
