"""wsshadow: record WebSocket sessions, replay them in shadow mode, diff the streams.

The import name is ``replay`` (the engine); ``recorders`` holds the ways in.
"""

from replay.errors import BadInput, CaptureError, ExitStatus, NewerFormat, WsShadowError
from replay.model import (
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
from replay.redact import Redactor
from replay.store import CaptureStore, CaptureWriter

__version__ = "0.1.0"

__all__ = [
    "BadInput",
    "CaptureError",
    "CaptureStore",
    "CaptureWriter",
    "Close",
    "Closer",
    "Direction",
    "ExitStatus",
    "Handshake",
    "Message",
    "NewerFormat",
    "Opcode",
    "Provenance",
    "Redactor",
    "Run",
    "Session",
    "Source",
    "WsShadowError",
    "__version__",
]
