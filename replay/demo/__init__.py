"""The embedded demo: a chat backend's four legacy routes and their consolidation.

:func:`create_legacy_app` and :func:`create_consolidated_app` build the two
aiohttp servers of ``docs/demo.md``; :func:`demo_servers` runs both on
loopback; :func:`run_traffic` drives scripted clients at either;
:func:`demo_config_path` is the demo's ``wsshadow.toml``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from wsshadow.replay.demo.consolidated import MODE_QUIRKS, create_consolidated_app, select_mode
from wsshadow.replay.demo.legacy import LEGACY_ROUTES, create_legacy_app
from wsshadow.replay.demo.running import DemoServers, demo_servers, serve_app
from wsshadow.replay.demo.traffic import (
    REPLAY_BROWSER_TOKEN,
    REPLAY_TOKEN,
    ROOM_USERS,
    SessionOutcome,
    TrafficError,
    TrafficSummary,
    run_traffic,
)

__all__ = [
    "CONFIG_NAME",
    "LEGACY_ROUTES",
    "MODE_QUIRKS",
    "REPLAY_BROWSER_TOKEN",
    "REPLAY_TOKEN",
    "ROOM_USERS",
    "DemoServers",
    "SessionOutcome",
    "TrafficError",
    "TrafficSummary",
    "create_consolidated_app",
    "create_legacy_app",
    "demo_config_path",
    "demo_config_text",
    "demo_servers",
    "run_traffic",
    "select_mode",
    "serve_app",
]

CONFIG_NAME = "wsshadow-demo.toml"


def demo_config_path() -> Path:
    """The demo's configuration file inside the installed package."""
    return Path(str(resources.files("wsshadow.replay.demo").joinpath(CONFIG_NAME)))


def demo_config_text() -> str:
    """The demo's configuration, as ``wsshadow demo --show-config`` prints it."""
    return resources.files("wsshadow.replay.demo").joinpath(CONFIG_NAME).read_text(encoding="utf-8")
