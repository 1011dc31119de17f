"""Fixtures: the two demo servers, each on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wsshadow.replay.demo import create_consolidated_app, create_legacy_app, serve_app


@pytest.fixture
async def legacy() -> AsyncIterator[str]:
    async with serve_app(create_legacy_app()) as url:
        yield url


@pytest.fixture
async def consolidated() -> AsyncIterator[str]:
    async with serve_app(create_consolidated_app()) as url:
        yield url
