"""Fixtures shared by the recorder tests.

``serve_app`` serves any ASGI app on 127.0.0.1 (ephemeral port) under
uvicorn while a test runs and returns its ``ws://`` URL, e.g. to record
through ``WsShadowRecorder`` and then replay against the same app unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from recorders.serve import ServedApp, serve_asgi


@pytest.fixture
def serve_app() -> Iterator[Callable[..., ServedApp]]:
    """A factory: ``serve_app(app)`` starts ``app`` and returns its address; stopped after the test."""
    with ExitStack() as stack:

        def start(app: Any, **options: Any) -> ServedApp:
            return stack.enter_context(serve_asgi(app, **options))

        yield start
