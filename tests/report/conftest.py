"""Fixtures for the report renderer tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.report.report_fixtures import large_report, load_fixture


@pytest.fixture
def report() -> dict[str, Any]:
    """The hand-made fixture report (tests/report/fixtures/report.json)."""
    return load_fixture()


@pytest.fixture(scope="session")
def big_report() -> dict[str, Any]:
    """A synthetic report of 10,000 sessions (shared: tests must not modify it)."""
    return large_report(10_000)
