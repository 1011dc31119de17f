"""``wsshadow serve``: a capture's server side played to real clients (a mock server).

``plan`` holds the pure decisions (which session, does a message match, what
is due), ``server`` the aiohttp server around them.
"""

from __future__ import annotations

from wsshadow.replay.serve.plan import MatchMode, Mismatch, OnMismatch, Pace, ServeOptions
from wsshadow.replay.serve.server import DEFAULT_PORT, MockServer, running_server

__all__ = [
    "DEFAULT_PORT",
    "MatchMode",
    "Mismatch",
    "MockServer",
    "OnMismatch",
    "Pace",
    "ServeOptions",
    "running_server",
]
