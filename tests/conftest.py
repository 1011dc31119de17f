"""Shared test helpers: sessions built from data, a fresh capture path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.timeouts import FACTOR
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
)

# pytester runs the pytest plugin in the plugin tests (tests/pytest_plugin); it must be
# requested from a top-level conftest.
pytest_plugins = ["pytester"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Scale pytest-timeout's per-test limit by WSSHADOW_TESTS_TIMEOUT_FACTOR too."""
    if FACTOR != 1 and config.getoption("timeout", None) is None:
        config.option.timeout = float(config.getini("timeout") or 300) * FACTOR


def make_session(
    sid: str = "s1",
    route: str = "/ws",
    messages: list[tuple[str, str, str | bytes]] | None = None,
    close: Close | None = None,
    **handshake: object,
) -> Session:
    """A session from (direction, opcode, payload) triples, 10 ms apart."""
    msgs = tuple(
        Message(i, round(0.01 * (i + 1), 6), Direction(d), Opcode(op), p)
        for i, (d, op, p) in enumerate(messages or [])
    )
    return Session(
        id=sid,
        started_at=1_764_150_000.0,
        handshake=Handshake(route=route, **handshake),  # type: ignore[arg-type]
        messages=msgs,
        close=close if close is not None else Close(1000, "bye", Closer.CLIENT, t=1.0),
        provenance=Provenance(),
    )


@pytest.fixture
def capture_path(tmp_path: Path) -> Path:
    """Where a test's capture file goes (not created yet)."""
    return tmp_path / "capture.db"
