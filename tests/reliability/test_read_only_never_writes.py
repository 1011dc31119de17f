"""Issue 19: commands that only read a capture never change it.

Every read-only command (``captures ls/show/scenarios/export``, ``captures
merge``'s inputs, ``diff``, ``serve --no-record``) leaves the capture's
bytes, its mtime and the set of files in its directory exactly as they were:
for a capture of today's format, for one of an older format (read through a
temporary upgrade in memory, said in one line on stderr), in a directory
the user cannot write, and beside a writer that has the capture open. A
command that writes (``replay``, ``captures upgrade``) still migrates.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.reliability.kit import cli, make_capture, recorded, ws_server
from tests.reliability.proxykit import ROOT, start_record
from tests.timeouts import scaled
from wsshadow.replay.capture import store as store_module
from wsshadow.replay.capture.store import CaptureStore

NOBODY = 65534


def snapshot(directory: Path) -> dict[str, tuple[str, int, int]]:
    """Every file in ``directory``: (sha256, mtime in ns, mode)."""
    out = {}
    for entry in sorted(directory.iterdir()):
        st = entry.stat()
        out[entry.name] = (hashlib.sha256(entry.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


def read_commands(cap: Path, elsewhere: Path) -> list[list[Any]]:
    """Every command that only reads CAP (outputs go to ``elsewhere``)."""
    return [
        ["captures", "ls", cap],
        ["captures", "ls", cap, "--run", "r1"],
        ["captures", "show", cap, "s1", "--full"],
        ["captures", "scenarios", cap],
        ["captures", "export", cap, elsewhere / "out.jsonl"],
        ["captures", "export", cap, "-", "--run", "r1"],
        ["captures", "merge", elsewhere / "merged.db", cap],
        ["diff", cap, "--candidate", "r1", "--format", "json"],
    ]


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "captures"
    home.mkdir()
    yield make_capture(home / "c.db", sessions=6, turns=3)


def _age(directory: Path) -> None:
    """Set every file's mtime an hour back, so that a write shows in the mtime."""
    for entry in directory.iterdir():
        st = entry.stat()
        os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))


def test_read_only_commands_leave_the_capture_and_its_directory_alone(
    capture: Path, tmp_path: Path, capsys: Any
) -> None:
    _age(capture.parent)
    before = snapshot(capture.parent)
    for argv in read_commands(capture, tmp_path):
        code, _out, err = cli(capsys, argv)
        assert code in (0, 1), (argv, err)  # diff: 1 would be divergent, still a read
        assert snapshot(capture.parent) == before, argv


def _make_older(capture: Path) -> None:
    """Turn ``capture`` into format version 0 (the schema is the same; the step below
    is the registered migration from 0 to 1)."""
    conn = sqlite3.connect(capture)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'format_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _step(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES ('test_migration', 'ran')")


def _meta(capture: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{capture}?mode=ro&immutable=1", uri=True)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def test_an_older_capture_is_read_through_a_temporary_upgrade_and_left_alone(
    capture: Path, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_older(capture)
    monkeypatch.setitem(store_module.MIGRATIONS, 0, _step)
    _age(capture.parent)
    before = snapshot(capture.parent)
    for argv in read_commands(capture, tmp_path):
        code, _out, err = cli(capsys, argv)
        assert code in (0, 1), (argv, err)
        notes = [line for line in err.splitlines() if "temporary upgrade" in line]
        assert len(notes) == 1, (argv, err)
        assert "format version 0" in notes[0] and f"captures upgrade {capture}" in notes[0]
        assert snapshot(capture.parent) == before, argv
    assert _meta(capture)["format_version"] == "0"
    assert "test_migration" not in _meta(capture)
    # What was read is what the upgrade gives: the sessions, migrated.
    with CaptureStore.open(capture, readonly=True) as store:
        assert store.upgraded_from == 0 and store.meta()["test_migration"] == "ran"
        assert len(list(store.iter_sessions())) == 6
        with pytest.raises(Exception, match="read-only"):
            store.put_session(recorded("new", [("client", "x")]))


def test_a_write_command_still_migrates_in_place(
    capture: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_older(capture)
    monkeypatch.setitem(store_module.MIGRATIONS, 0, _step)
    with ws_server() as target:
        code, _out, err = cli(capsys, ["replay", capture, "--target", target, "--run", "r2"])
    assert code == 0, err
    assert _meta(capture)["format_version"] == "1"
    assert _meta(capture)["test_migration"] == "ran"
    conn = sqlite3.connect(f"file:{capture}?mode=ro&immutable=1", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM sessions WHERE run = 'r2'").fetchone() == (6,)
    finally:
        conn.close()


def test_captures_upgrade_migrates_in_place_and_says_so(
    capture: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_older(capture)
    monkeypatch.setitem(store_module.MIGRATIONS, 0, _step)
    code, _out, err = cli(capsys, ["captures", "upgrade", capture])
    assert code == 0, err
    assert "upgraded" in err and "version 0 to 1" in err
    assert _meta(capture)["format_version"] == "1"
    code, _out, err = cli(capsys, ["captures", "upgrade", capture])
    assert code == 0 and "version 1 already" in err, err


def _crashed_writer(capture: Path) -> None:
    """A process that adds a session and dies without closing: its log stays in ``-wal``."""
    script = (
        "import os, sys\n"
        "from tests.reliability.kit import recorded\n"
        "from wsshadow.replay.capture.store import CaptureStore\n"
        "store = CaptureStore.open(sys.argv[1])\n"
        "store.put_session(recorded('late', [('client', 'only in the log')]))\n"
        "os._exit(0)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(capture)], cwd=ROOT, check=True, timeout=scaled(60)
    )
    assert Path(f"{capture}-wal").stat().st_size > 0


@pytest.mark.parametrize("layout", ["clean", "crashed-writer", "wal-without-shm"])
def test_a_capture_in_a_directory_nobody_may_write_is_read(layout: str) -> None:
    """As an unprivileged user (the tests run as root, for whom modes do not apply),
    in a directory of mode 0555: the sessions are listed, including those only in the
    write-ahead log, and nothing in the directory changes."""
    top = Path(tempfile.mkdtemp(prefix="wsshadow-ro-"))
    try:
        directory = top / "ro"
        directory.mkdir()
        cap = make_capture(directory / "c.db", sessions=3, turns=2)
        if layout != "clean":
            _crashed_writer(cap)
        if layout == "wal-without-shm":
            Path(f"{cap}-shm").unlink()
        as_user: list[str] = []
        if os.geteuid() == 0:  # modes do not bind root: run the command as nobody
            for entry in [top, directory, *directory.iterdir()]:
                os.chown(entry, NOBODY, NOBODY)
            as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        os.chmod(top, 0o755)
        os.chmod(directory, 0o555)
        _age(directory)
        before = snapshot(directory)
        copies = set(Path(tempfile.gettempdir()).glob("wsshadow-read-*"))
        done = subprocess.run(
            [*as_user, sys.executable, "-m", "wsshadow", "captures", "ls", str(cap)],
            cwd=ROOT, capture_output=True, text=True, timeout=scaled(60),
            env={**os.environ, "HOME": str(top), "COLUMNS": "200"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "s0" in done.stdout and "s2" in done.stdout
        assert ("late" in done.stdout) == (layout != "clean"), done.stdout
        after = snapshot(directory)
        if layout == "crashed-writer":
            # SQLite rebuilds its shared-memory index of the dead writer's log (no data,
            # and any reader does it); the capture and its log stay byte for byte.
            assert after.keys() == before.keys()
            after.pop("c.db-shm"), before.pop("c.db-shm")
        assert after == before
        assert set(Path(tempfile.gettempdir()).glob("wsshadow-read-*")) == copies  # cleaned up
    finally:
        os.chmod(top / "ro", 0o755)
        shutil.rmtree(top)


async def test_a_capture_being_recorded_is_read_while_the_writer_runs(tmp_path: Path) -> None:
    """``captures ls`` while ``wsshadow record`` writes the capture: it sees what was
    committed (still in the writer's log) and adds or removes no file."""
    cap = tmp_path / "live.db"
    with ws_server() as upstream:
        rec = await start_record(cap, upstream)
        try:
            async with connect(rec.url + "/ws") as ws:
                for i in range(20):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
                await asyncio.sleep(scaled(0.5))  # past the 50 ms flush
                names = sorted(p.name for p in tmp_path.iterdir())
                assert names == ["live.db", "live.db-shm", "live.db-wal"], names
                done = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "wsshadow", "captures", "ls", str(cap),
                    cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    env={**os.environ, "COLUMNS": "200"},
                )  # fmt: skip
                out, err = await asyncio.wait_for(done.communicate(), scaled(60))
                assert done.returncode == 0, err
                (row,) = [line for line in out.decode().splitlines() if " /ws " in line]
                assert row.split()[5:7] == ["20", "20"], row  # client, server: all committed
                assert "open" in row  # the session is still live
                assert sorted(p.name for p in tmp_path.iterdir()) == names
        finally:
            assert await rec.stop() == 0


async def test_serve_without_storing_leaves_the_capture_alone(capture: Path) -> None:
    _age(capture.parent)
    before = snapshot(capture.parent)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsshadow", "serve", str(capture), "--no-record",
        "--listen", "127.0.0.1:0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), scaled(60))).decode().strip()
        assert url.startswith("ws://"), url
        assert snapshot(capture.parent) == before  # while it serves
    finally:
        proc.send_signal(2)
        _out, err = await asyncio.wait_for(proc.communicate(), scaled(60))
    assert proc.returncode == 0, err
    assert snapshot(capture.parent) == before
