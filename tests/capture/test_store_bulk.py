"""Capture store bulk paths: loading many sessions with one query, writing whole sessions."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture.test_codec import sessions_strategy
from tests.conftest import make_session
from wsshadow.replay.capture.model import Close, Closer, Provenance, Session, Source
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore, FrameColumns
from wsshadow.replay.errors import CaptureError


@settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=40,
    deadline=None,
)
@given(st.lists(sessions_strategy, max_size=5, unique_by=lambda s: s.id))
def test_get_sessions_matches_get_session(tmp_path: Path, sessions: list[Session]) -> None:
    path = tmp_path / f"bulk-{len(list(tmp_path.iterdir()))}.db"
    with CaptureStore.open(path, create=True, redactor=Redactor(enabled=False)) as store:
        store.put_sessions(sessions)
        ids = [s.id for s in reversed(sessions)]
        assert store.get_sessions(ids) == [store.get_session(i) for i in ids]
        assert store.get_sessions(ids) == list(reversed(sessions))
        assert store.existing_ids([*ids, "nope"]) == set(ids)
        # Replay's loading path: the same sessions, their frames as columns.
        loaded = store.get_session_frames(ids)
        assert [replace(head, messages=frames.messages()) for head, frames in loaded] == list(
            reversed(sessions)
        )
        assert all(head.messages == () for head, _ in loaded)
        assert [FrameColumns.of(s.messages) for s in reversed(sessions)] == [
            frames for _, frames in loaded
        ]


def test_get_sessions_pages_and_reports_missing_or_damaged(tmp_path: Path) -> None:
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        sessions = [
            make_session(f"s{i:04d}", messages=[("client", "text", f"hi {i}")] * (i % 3))
            for i in range(600)
        ]
        store.put_sessions(sessions)
        ids = [s.id for s in sessions]
        assert store.get_sessions(ids) == sessions  # more than one page of 256
        assert list(store.iter_sessions(ids=ids[::-1], page=100)) == sessions[::-1]
        with pytest.raises(CaptureError, match="no session 'gone'"):
            store.get_sessions([ids[0], "gone"])
        # iter_sessions(ids=...) yields the sessions before a missing one, then raises.
        got = []
        with pytest.raises(CaptureError, match="no session 'gone'"):
            for s in store.iter_sessions(ids=[ids[1], ids[2], "gone", ids[3]]):
                got.append(s.id)
        assert got == [ids[1], ids[2]]
        conn = sqlite3.connect(tmp_path / "c.db")
        conn.execute("UPDATE frames SET opcode = 'bogus' WHERE session_id = 's0001'")
        conn.commit()
        conn.close()
        with pytest.raises(CaptureError, match=r"s0001.*damaged"):
            store.get_sessions(ids[:5])
        with pytest.raises(CaptureError, match=r"s0001.*damaged"):
            store.get_session("s0001")
        with pytest.raises(CaptureError, match=r"s0001.*damaged"):
            store.get_session_frames(ids[:5])
        assert [f.payload for _, f in store.get_session_frames(ids[2:4])] == [
            ("hi 2", "hi 2"),
            (),
        ]
        with pytest.raises(CaptureError, match="no session 'gone'"):
            store.get_session_frames([ids[0], "gone"])


@pytest.mark.parametrize(
    ("damage", "value"),
    [
        ("direction", "sideways"),
        ("opcode", "bogus"),
        ("text", b"bytes in the text column"),
    ],
)
def test_get_session_frames_names_damage(tmp_path: Path, damage: str, value: object) -> None:
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        store.put_sessions(
            [make_session(f"s{i}", messages=[("client", "text", "a"), ("server", "text", "b")])
             for i in range(3)]
        )  # fmt: skip
        conn = sqlite3.connect(tmp_path / "c.db")
        conn.execute(
            f"UPDATE frames SET {damage} = ? WHERE session_id = 's1' AND seq = 1", (value,)
        )
        conn.commit()
        conn.close()
        assert [f.payload for _, f in store.get_session_frames(["s0", "s2"])] == [("a", "b")] * 2
        with pytest.raises(CaptureError, match=r"s1.*damaged"):
            store.get_session_frames(["s0", "s1", "s2"])


def test_add_session_writes_what_put_sessions_writes(tmp_path: Path) -> None:
    secret = '{"type":"login","token":"abc123secret","n":1}'
    session = make_session(
        "orig",
        messages=[
            ("client", "text", secret),
            ("server", "text", '{"type":"ok","password":"hunter22"}'),
            ("server", "binary", b"\x00\x01token"),
            ("client", "ping", b"p"),
        ],
        close=Close(4001, "done", Closer.SERVER, t=0.5),
        query="access_token=xyz&x=1",
        request_headers=(("Authorization", "Bearer real"), ("X-Ok", "1")),
        subprotocols=("jwt.eyJhbGciOi.eyJzdWIi.sig", "chat"),
        response_headers=(("Set-Cookie", "sid=1"),),
    )
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        a = Session(
            "run:a", 1.0, session.handshake, session.messages, session.close,
            Provenance(Source.REPLAY, run="run", origin="orig"),
        )  # fmt: skip
        store.put_sessions([a])
        writer = store.writer()
        frames = [(m.seq, m.t, m.direction, m.opcode, m.payload) for m in a.messages]
        writer.add_session("run:b", 1.0, a.handshake, a.provenance, frames, a.close)
        writer.add_session("run:c", 2.0, a.handshake, a.provenance, [], None)
        assert store.existing_ids(["run:a", "run:b"]) == {"run:a"}
        writer.flush()
        put, added = store.get_session("run:a"), store.get_session("run:b")
        assert added.messages == put.messages
        assert added.handshake == put.handshake
        assert added.close == put.close == session.close
        assert added.provenance == put.provenance
        assert "abc123secret" not in str(added) and "hunter22" not in str(added)
        assert "Bearer real" not in str(added) and "eyJzdWIi" not in str(added)
        assert added.messages[2].payload == b"\x00\x01token"  # binary is left alone
        empty = store.get_session("run:c")
        assert empty.messages == () and empty.close is None and empty.started_at == 2.0


def test_add_session_columns_write_what_put_sessions_writes(tmp_path: Path) -> None:
    """FrameColumns (replay's form): all-text sessions take the bulk path, others the
    per-frame one; both redact, and over 64 frames span several multi-row inserts."""
    texts = [f'{{"type":"chat","n":{i}}}' for i in range(150)]
    texts[3] = '{"type":"login","token":"abc123secret"}'
    chatty = make_session("chatty", messages=[("client", "text", t) for t in texts])
    mixed = make_session(
        "mixed",
        messages=[
            ("client", "text", '{"password":"hunter22"}'),
            ("server", "binary", b"\x00token"),
            ("server", "text", "plain"),
        ],
    )
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        writer = store.writer()
        for s in (chatty, mixed):
            columns = FrameColumns(
                range(len(s.messages)),
                [m.t for m in s.messages],
                [m.direction.value for m in s.messages],
                [m.opcode.value for m in s.messages],
                [m.payload for m in s.messages],
            )
            assert list(columns) == [
                (m.seq, m.t, m.direction, m.opcode, m.payload) for m in s.messages
            ]
            writer.add_session(f"run:{s.id}", 1.0, s.handshake, s.provenance, columns, s.close)
        assert writer.pending == 153
        assert writer.flush() == 153 and writer.written_frames == 153
        store.put_sessions([chatty, mixed])
        for s in (chatty, mixed):
            added, put = store.get_session(f"run:{s.id}"), store.get_session(s.id)
            assert added.messages == put.messages
        assert "abc123secret" not in str(store.get_session("run:chatty"))
        assert "hunter22" not in str(store.get_session("run:mixed"))
        assert store.get_session("run:mixed").messages[1].payload == b"\x00token"


def test_redactor_texts_redacts_each_like_text() -> None:
    r = Redactor()
    clean = ['{"a":1}', '{"b":"x"}']
    assert r.texts(clean) is clean  # nothing can hold a secret: the same sequence back
    dirty = ['{"a":1}', '{"token":"t0ps3cret"}']
    assert r.texts(dirty) == [r.text(t) for t in dirty] and "t0ps3cret" not in r.texts(dirty)[1]
    assert Redactor(enabled=False).texts(dirty) is dirty
