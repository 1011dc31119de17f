"""wsshadow: record WebSocket sessions, replay them in shadow mode, diff the streams.

This module is the public entry point: everything a user imports from Python
is listed in ``__all__`` (pinned by ``tests/test_public_api.py``). The code
lives in ``wsshadow.replay`` (capture, engine, diff, report, cli) and
``wsshadow.recorders`` (the recording proxy, the ASGI recorder, HAR import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wsshadow.replay.version import __version__

if TYPE_CHECKING:
    from wsshadow.replay.capture.jsonl import read_jsonl, write_jsonl
    from wsshadow.replay.capture.model import (
        Close,
        Closer,
        Direction,
        Handshake,
        Message,
        Opcode,
        Provenance,
        Run,
        Session,
        Source,
    )
    from wsshadow.replay.capture.redact import Redactor
    from wsshadow.replay.capture.store import CaptureStore, CaptureWriter
    from wsshadow.replay.config import Config, DiffConfig, load_config
    from wsshadow.replay.diff.capture import diff_capture, diff_session
    from wsshadow.replay.diff.dialects import Dialect, Event, detect_dialect
    from wsshadow.replay.engine.run import ReplayOptions, RunResult, replay_capture
    from wsshadow.replay.errors import (
        BadInput,
        CaptureError,
        ExitStatus,
        NewerFormat,
        WsShadowError,
    )
    from wsshadow.replay.report.build import build_report, exit_status
    from wsshadow.replay.report.render import load_report, render, write_report
    from wsshadow.replay.shadow import ShadowResult, shadow_capture
    from wsshadow.replay.version import __version__

# Names are imported on first use, so that ``import wsshadow.replay.pytest_plugin``
# (loaded into every pytest run of a user who installed wsshadow) stays light.
_WHERE = {
    "Dialect": "wsshadow.replay.diff.dialects",
    "Event": "wsshadow.replay.diff.dialects",
    "detect_dialect": "wsshadow.replay.diff.dialects",
    "BadInput": "wsshadow.replay.errors",
    "CaptureError": "wsshadow.replay.errors",
    "CaptureStore": "wsshadow.replay.capture.store",
    "CaptureWriter": "wsshadow.replay.capture.store",
    "Close": "wsshadow.replay.capture.model",
    "Closer": "wsshadow.replay.capture.model",
    "Config": "wsshadow.replay.config",
    "DiffConfig": "wsshadow.replay.config",
    "Direction": "wsshadow.replay.capture.model",
    "ExitStatus": "wsshadow.replay.errors",
    "Handshake": "wsshadow.replay.capture.model",
    "Message": "wsshadow.replay.capture.model",
    "NewerFormat": "wsshadow.replay.errors",
    "Opcode": "wsshadow.replay.capture.model",
    "Provenance": "wsshadow.replay.capture.model",
    "Redactor": "wsshadow.replay.capture.redact",
    "ReplayOptions": "wsshadow.replay.engine.run",
    "Run": "wsshadow.replay.capture.model",
    "RunResult": "wsshadow.replay.engine.run",
    "Session": "wsshadow.replay.capture.model",
    "ShadowResult": "wsshadow.replay.shadow",
    "Source": "wsshadow.replay.capture.model",
    "WsShadowError": "wsshadow.replay.errors",
    "__version__": "wsshadow.replay.version",
    "build_report": "wsshadow.replay.report.build",
    "diff_capture": "wsshadow.replay.diff.capture",
    "diff_session": "wsshadow.replay.diff.capture",
    "exit_status": "wsshadow.replay.report.build",
    "load_config": "wsshadow.replay.config",
    "load_report": "wsshadow.replay.report.render",
    "read_jsonl": "wsshadow.replay.capture.jsonl",
    "render": "wsshadow.replay.report.render",
    "replay_capture": "wsshadow.replay.engine.run",
    "shadow_capture": "wsshadow.replay.shadow",
    "write_jsonl": "wsshadow.replay.capture.jsonl",
    "write_report": "wsshadow.replay.report.render",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'wsshadow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BadInput",
    "CaptureError",
    "CaptureStore",
    "CaptureWriter",
    "Close",
    "Closer",
    "Config",
    "Dialect",
    "DiffConfig",
    "Direction",
    "Event",
    "ExitStatus",
    "Handshake",
    "Message",
    "NewerFormat",
    "Opcode",
    "Provenance",
    "Redactor",
    "ReplayOptions",
    "Run",
    "RunResult",
    "Session",
    "ShadowResult",
    "Source",
    "WsShadowError",
    "__version__",
    "build_report",
    "detect_dialect",
    "diff_capture",
    "diff_session",
    "exit_status",
    "load_config",
    "load_report",
    "read_jsonl",
    "render",
    "replay_capture",
    "shadow_capture",
    "write_jsonl",
    "write_report",
]
