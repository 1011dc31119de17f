"""The capture store's background writer: replay's runs are inserted on a thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_session
from wsshadow.replay.capture.model import Close, Closer, Handshake, Provenance, Source
from wsshadow.replay.capture.store import CaptureStore, CaptureWriter, FrameColumns
from wsshadow.replay.errors import CaptureError


def _queue(store: CaptureStore, session_id: str, text: str) -> CaptureWriter:
    writer = store.writer()
    frames = FrameColumns(
        (0, 1), (0.1, 0.2), ("client", "server"), ("text", "binary"), (text, b"\x00")
    )
    writer.add_session(
        session_id, 1.0, Handshake("/ws"), Provenance(source=Source.REPLAY, run="r"), frames,
        Close(1000, "", Closer.CLIENT, t=0.3),
    )  # fmt: skip
    return writer


def test_batches_land_in_order_redacted_and_the_writer_is_shared(tmp_path: Path) -> None:
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        with store.background_writer() as background, store.background_writer() as again:
            assert again is background  # runs replayed together share one thread
            for i in range(3):
                writer = _queue(store, f"r:s{i}", f'{{"n":{i},"token":"hunter{i}"}}')
                background.submit(writer)
                assert writer.pending == 0 and writer.written_frames == 2
            background.wait()
            # Committed by the thread's connection, visible on the store's own.
            assert store.session_ids(run="r") == ["r:s0", "r:s1", "r:s2"]
        session = store.get_session("r:s1")
        assert "hunter1" not in session.messages[0].payload  # redacted before queueing
        assert session.messages[1].payload == b"\x00"
        assert session.close == Close(1000, "", Closer.CLIENT, t=0.3)
        with store.background_writer() as fresh:
            assert fresh is not background  # the last user closed the first one


def test_a_failed_batch_is_reported_and_nothing_after_it_is_written(tmp_path: Path) -> None:
    with CaptureStore.open(tmp_path / "c.db", create=True) as store:
        store.put_sessions([make_session("taken")])
        with pytest.raises(CaptureError, match="cannot write"), store.background_writer() as bg:
            bg.submit(_queue(store, "taken", "{}"))  # the id exists: the INSERT fails
            bg.submit(_queue(store, "later", "{}"))
            bg.wait()
        assert store.session_ids() == ["taken"]
        assert store.session_ids(run="r") == []
