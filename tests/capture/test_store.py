"""Capture store: round trips through SQLite, versions, permissions, streaming, batching."""

from __future__ import annotations

import io
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture.test_codec import sessions_strategy
from tests.conftest import make_session
from wsshadow.replay.capture import store as store_module
from wsshadow.replay.capture.jsonl import read_jsonl, write_jsonl
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import FORMAT_VERSION, CaptureStore
from wsshadow.replay.errors import CaptureError, NewerFormat

SAMPLE = Path(__file__).parents[2] / "captures" / "sample.jsonl"


def test_new_capture_is_owner_only_and_wal(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        assert store.meta()["format_version"] == str(FORMAT_VERSION)
        mode = store.db.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    assert stat.S_IMODE(capture_path.stat().st_mode) == 0o600
    assert set(
        sqlite3.connect(capture_path)
        .execute("select name from sqlite_master where type='table'")
        .fetchall()
    ) >= {("meta",), ("sessions",), ("frames",), ("runs",)}


@settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=40,
    deadline=None,
)
@given(st.lists(sessions_strategy, max_size=4, unique_by=lambda s: s.id))
def test_sessions_round_trip_through_sqlite(tmp_path: Path, sessions: list[Session]) -> None:
    path = tmp_path / f"rt-{len(list(tmp_path.iterdir()))}.db"
    with CaptureStore.open(path, create=True, redactor=Redactor(enabled=False)) as store:
        store.put_sessions(sessions)
    with CaptureStore.open(path) as store:
        assert list(store.iter_all_sessions()) == sessions


@pytest.mark.parametrize("sample", sorted(SAMPLE.parent.glob("*.jsonl")), ids=lambda p: p.name)
def test_sample_captures_round_trip_byte_for_byte(capture_path: Path, sample: Path) -> None:
    original = sample.read_bytes()
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_sessions(read_jsonl(io.BytesIO(original)))
    with CaptureStore.open(capture_path) as store:
        out = io.BytesIO()
        write_jsonl(store.iter_all_sessions(), out)
    assert out.getvalue() == original


def test_text_payloads_are_readable_text_columns(capture_path: Path) -> None:
    s = make_session(messages=[("client", "text", "héllo"), ("server", "binary", b"\x00\x01")])
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_session(s)
    rows = (
        sqlite3.connect(capture_path)
        .execute("select opcode, text, typeof(data) from frames order by seq")
        .fetchall()
    )
    assert rows == [("text", "héllo", "null"), ("binary", None, "blob")]


def test_newer_format_is_refused(capture_path: Path) -> None:
    CaptureStore.open(capture_path, create=True).close()
    conn = sqlite3.connect(capture_path)
    conn.execute("update meta set value = '7' where key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(NewerFormat, match=rf"version 7; .*up to version {FORMAT_VERSION}"):
        CaptureStore.open(capture_path)


def test_older_format_is_migrated_through_the_chain(
    capture_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real chain of two steps on a real file: 1 -> 2 -> 3.
    CaptureStore.open(capture_path, create=True).close()
    steps: list[int] = []

    def add_note(conn: sqlite3.Connection) -> None:
        steps.append(1)
        conn.execute("ALTER TABLE sessions ADD COLUMN note TEXT")

    def fill_note(conn: sqlite3.Connection) -> None:
        steps.append(2)
        conn.execute("UPDATE sessions SET note = 'migrated'")

    with CaptureStore.open(capture_path) as store:
        store.put_session(make_session())
    monkeypatch.setattr(store_module, "FORMAT_VERSION", 3)
    monkeypatch.setattr(store_module, "MIGRATIONS", {1: add_note, 2: fill_note})
    with CaptureStore.open(capture_path) as store:
        assert store.meta()["format_version"] == "3"
        assert store.db.conn.execute("select note from sessions").fetchall() == [("migrated",)]
    assert steps == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", None),
        (b"this is not sqlite at all" * 100, "not a readable wsshadow capture"),
    ],
)
def test_foreign_files_are_refused(capture_path: Path, content: bytes, message: str | None) -> None:
    capture_path.write_bytes(content)
    if message is None:
        # An empty file is refused by a reader (which must not write a schema into
        # it) and becomes a fresh capture for a writer.
        with pytest.raises(CaptureError, match="an empty file, not a wsshadow capture"):
            CaptureStore.open(capture_path)
        assert capture_path.stat().st_size == 0
        CaptureStore.open(capture_path, create=True).close()
        with CaptureStore.open(capture_path) as store:
            assert store.meta()["format_version"]
        return
    with pytest.raises(CaptureError, match=message):
        CaptureStore.open(capture_path)


def test_other_sqlite_file_and_missing_file(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    with pytest.raises(CaptureError, match="not a wsshadow capture"):
        CaptureStore.open(other)
    with pytest.raises(CaptureError, match="no such capture file"):
        CaptureStore.open(tmp_path / "absent.db")


def test_truncated_capture_is_refused(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_sessions(
            make_session(f"s{i}", messages=[("client", "text", "x" * 500)] * 20) for i in range(50)
        )
    data = capture_path.read_bytes()
    capture_path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CaptureError), CaptureStore.open(capture_path) as store:
        list(store.iter_all_sessions())


def test_writer_interleaves_sessions_in_batches(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        w = store.writer(batch_size=7)
        for s in range(5):
            w.open_session(f"s{s}", 100.0 + s, Handshake("/ws"), Provenance(Source.PROXY))
        for i in range(40):
            s = i % 5
            w.append(f"s{s}", Message(i // 5, i / 10, Direction.CLIENT, Opcode.TEXT, f"m{i}"))
        w.close_session("s3", Close(4001, "nope", Closer.SERVER, t=5.0))
        w.flush()
        assert w.written_frames == 40
        sessions = list(store.iter_sessions())
    assert [s.id for s in sessions] == ["s0", "s1", "s2", "s3", "s4"]
    assert [m.payload for m in sessions[1].messages] == [f"m{i}" for i in range(1, 40, 5)]
    assert sessions[3].close == Close(4001, "nope", Closer.SERVER, t=5.0)
    assert sessions[0].close is None


def test_iter_sessions_streams_in_pages(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_sessions(make_session(f"s{i:03}") for i in range(25))
        it = store.iter_sessions(page=4)
        first = next(it)
        assert first.id == "s000"
        assert [s.id for s in it] == [f"s{i:03}" for i in range(1, 25)]


def test_runs_and_run_filter(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_session(make_session("rec"))
        store.put_run(Run("cand", "ws://127.0.0.1:1", settings={"pace": "causal"}, sessions=1))
        replayed = make_session("cand:rec")
        replayed = Session(
            replayed.id,
            replayed.started_at,
            replayed.handshake,
            replayed.messages,
            replayed.close,
            Provenance(Source.REPLAY, run="cand", origin="rec"),
        )
        store.put_session(replayed)
        assert store.session_ids() == ["rec"]
        assert store.session_ids("cand") == ["cand:rec"]
        assert store.get_run("cand").settings == {"pace": "causal"}  # type: ignore[union-attr]
        assert store.delete_run("cand") == 1
        assert store.count_sessions("cand") == 0 and store.runs() == []


def test_duplicate_session_ids(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_session(make_session("dup", messages=[("client", "text", "one")]))
        with pytest.raises(CaptureError, match="session dup is already in the capture"):
            store.put_session(make_session("dup"))
        store.put_sessions(
            [make_session("dup", messages=[("client", "text", "two")])], on_conflict="replace"
        )
        assert store.get_session("dup").messages[0].payload == "two"
        assert store.put_sessions([make_session("dup")], on_conflict="skip") == 0


def test_find_session_by_prefix(capture_path: Path) -> None:
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_sessions([make_session("abc123"), make_session("abd456")])
        assert store.find_session("abc").id == "abc123"
        with pytest.raises(CaptureError, match="more than one"):
            store.find_session("ab")
        with pytest.raises(CaptureError, match="no session"):
            store.find_session("zz")


def test_summaries_count_data_messages_each_way(capture_path: Path) -> None:
    s = make_session(
        messages=[
            ("client", "text", "a"),
            ("server", "text", "bb"),
            ("server", "ping", b""),
            ("server", "binary", b"ccc"),
        ]
    )
    with CaptureStore.open(capture_path, create=True) as store:
        store.put_session(s)
        (row,) = list(store.summaries())
    assert (row.client_messages, row.server_messages, row.bytes) == (1, 2, 6)
    assert row.close_code == 1000 and row.closed_by == "client" and row.duration == 1.0
