"""Errors that reach the user, and the exit codes they map to.

Library code raises these; the CLI maps them to one line on stderr and an
exit code in one place (``replay.cli``). Anything else is a bug.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "BadInput",
    "CaptureError",
    "ConfigError",
    "ExitStatus",
    "Interrupted",
    "NewerFormat",
    "Unreachable",
    "WsShadowError",
]


class ExitStatus(IntEnum):
    """The process exit codes wsshadow promises."""

    EQUIVALENT = 0
    DIVERGENT = 1
    ERROR = 2
    INCONCLUSIVE = 3
    """No difference found, but not enough evidence of equivalence (replay fidelity,
    routes that noise makes incomparable)."""
    INTERRUPTED = 130


class WsShadowError(Exception):
    """Base of every error wsshadow reports to the user as one line."""

    exit_status = ExitStatus.ERROR


class BadInput(WsShadowError):
    """Input that wsshadow cannot use: a malformed file, option or message."""


class CaptureError(BadInput):
    """A capture file that is missing, corrupt or not a capture."""


class NewerFormat(CaptureError):
    """A capture written by a newer wsshadow than this one."""


class ConfigError(BadInput):
    """A configuration file or option with a wrong key, type or value."""


class Unreachable(WsShadowError):
    """A target that could not be reached or did not speak WebSocket."""


class Interrupted(WsShadowError):
    """The user stopped a command (Ctrl-C); what it finished is kept."""

    exit_status = ExitStatus.INTERRUPTED
