"""The diff tests' session builders (tests/diff/diffkit.py), importable from here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "diff"))

from diffkit import S, session

__all__ = ["S", "session"]
