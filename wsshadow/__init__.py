"""wsshadow: record WebSocket sessions, replay them in shadow mode, diff the streams.

This module is the public entry point: everything a user imports from Python
is listed in ``__all__`` (pinned by ``tests/test_public_api.py``). The code
lives in ``wsshadow.replay`` (capture, engine, diff, report, cli) and
``wsshadow.recorders`` (the recording proxy, the ASGI recorder, HAR import).
"""

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
from wsshadow.replay.errors import BadInput, CaptureError, ExitStatus, NewerFormat, WsShadowError
from wsshadow.replay.report.build import build_report, exit_status
from wsshadow.replay.report.render import load_report, render, write_report
from wsshadow.replay.shadow import ShadowResult, shadow_capture
from wsshadow.replay.version import __version__

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
