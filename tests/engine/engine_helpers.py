"""Helpers for replay tests: recorded sessions built in code, stored in a temp capture."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.capture.store import CaptureStore


def conversation(
    session_id: str,
    turns: list[tuple[str, object]],
    *,
    route: str = "/ws",
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    close: Close | None = None,
    started_at: float = 1_700_000_000.0,
    step: float = 0.01,
) -> Session:
    """A recorded session: (direction, JSON document or text) turns, ``step`` seconds apart."""
    messages = tuple(
        Message(
            i,
            (i + 1) * step,
            Direction(d),
            Opcode.TEXT,
            doc if isinstance(doc, str) else json.dumps(doc),
        )
        for i, (d, doc) in enumerate(turns)
    )
    return Session(
        session_id,
        started_at,
        Handshake(route, query, headers),
        messages,
        close or Close(1000, "", Closer.CLIENT, t=(len(turns) + 1) * step),
    )


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[tuple[Path, CaptureStore]]:
    """An empty capture file, open."""
    path = tmp_path / "capture.db"
    store = CaptureStore.open(path, create=True)
    try:
        yield path, store
    finally:
        store.close()
