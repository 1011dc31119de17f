"""``import wsshadow`` is the public entry point: its surface changes only on purpose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import wsshadow

EXPECTED = {
    "BadInput", "CaptureError", "Dialect", "Event", "detect_dialect", "CaptureStore", "CaptureWriter", "Close", "Closer", "Config",
    "DiffConfig", "Direction", "ExitStatus", "Handshake", "Message", "NewerFormat", "Opcode",
    "Provenance", "Redactor", "ReplayOptions", "Run", "RunResult", "Session", "ShadowResult",
    "Source", "WsShadowError", "__version__", "build_report", "diff_capture", "diff_session",
    "exit_status", "load_config", "load_report", "read_jsonl", "render", "replay_capture",
    "shadow_capture", "write_jsonl", "write_report",
}  # fmt: skip


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(wsshadow.__all__) == EXPECTED
    for name in wsshadow.__all__:
        assert getattr(wsshadow, name) is not None, name


def test_version_is_the_packages() -> None:
    from importlib.metadata import version

    assert wsshadow.__version__ == version("wsshadow")


def test_generic_names_are_not_installed(tmp_path: Path) -> None:
    """Outside the clone, ``replay`` and ``recorders`` are not importable; ``wsshadow`` is."""
    code = (
        "import importlib.util, wsshadow, sys;"
        "print(importlib.util.find_spec('replay'), importlib.util.find_spec('recorders'),"
        " wsshadow.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["None", "None", wsshadow.__version__]


def test_the_pytest_plugin_stays_light(tmp_path: Path) -> None:
    """The plugin is imported into every pytest run of a user: no sockets, no SQLite."""
    code = (
        "import sys, wsshadow.replay.pytest_plugin.plugin;"
        "print(sorted(m for m in ('aiohttp', 'websockets', 'sqlite3', 'sqlite_utils')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
