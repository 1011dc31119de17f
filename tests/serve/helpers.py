"""Helpers for the serve tests: recorded sessions built from data, a capture of them,
and a mock server on an ephemeral loopback port."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import make_session
from wsshadow.replay.capture.model import Close, Closer, Session
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.serve import MockServer, ServeOptions, running_server

__all__ = ["chat_session", "j", "make_capture", "served"]


def j(**value: Any) -> str:
    """A compact JSON text message."""
    return json.dumps(value, separators=(",", ":"))


def chat_session(sid: str = "chat-1", user: str = "ann", **handshake: Any) -> Session:
    """A recorded chat: a hello from the server, then two request/reply rounds with a
    client-chosen request id echoed back, then the server closes with 4000."""
    return make_session(
        sid,
        "/ws/chat",
        [
            ("server", "text", j(type="hello", server="legacy")),
            ("client", "text", j(type="join", room="lobby", user=user)),
            ("server", "text", j(type="joined", room="lobby", user=user)),
            ("server", "text", j(type="history", messages=[])),
            ("client", "text", j(type="say", request_id="req-000001", text="hi")),
            ("server", "text", j(type="ack", request_id="req-000001")),
            ("server", "text", j(type="message", user=user, text="hi")),
        ],
        close=Close(4000, "done", Closer.SERVER, t=1.0),
        **handshake,
    )


def make_capture(path: Path, sessions: Sequence[Session]) -> Path:
    """A capture file holding ``sessions`` (unredacted)."""
    with CaptureStore.open(path, create=True, redactor=Redactor(enabled=False)) as store:
        store.put_sessions(sessions)
    return path


@contextlib.asynccontextmanager
async def served(
    sessions: Sequence[Session],
    options: ServeOptions | None = None,
    store: CaptureStore | None = None,
    run: str | None = None,
    config: DiffConfig | None = None,
) -> AsyncIterator[tuple[str, MockServer, list[str]]]:
    """A mock server of ``sessions`` on 127.0.0.1 (ephemeral port): its URL, itself and
    the lines it logged."""
    lines: list[str] = []
    server = MockServer(
        sessions, config=config, options=options, store=store, run=run, log=lines.append
    )
    async with running_server(server) as url:
        yield url, server, lines
