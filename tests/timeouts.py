"""Every time bound in the tests, scaled by one factor for slow machines.

``WSSHADOW_TESTS_TIMEOUT_FACTOR=3 make test`` gives every wait three times as
long (the way websockets' ``WEBSOCKETS_TESTS_TIMEOUT_FACTOR`` does); no
assertion gets looser, only the time allowed before a test gives up. The
pytest-timeout limit of each test scales too (tests/conftest.py).
"""

from __future__ import annotations

import os

__all__ = ["FACTOR", "scaled"]

FACTOR = float(os.environ.get("WSSHADOW_TESTS_TIMEOUT_FACTOR", "1") or 1)


def scaled(seconds: float) -> float:
    """``seconds`` times the factor from ``WSSHADOW_TESTS_TIMEOUT_FACTOR`` (default 1)."""
    return seconds * FACTOR
