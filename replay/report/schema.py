"""Loading and checking a JSON report (schema_version 2 or 1, docs/report-schema.md).

Renderers trust what passes :func:`validate_report`: the required keys are
present with the right types. Optional keys (``session_details``, ``timing``,
targets, ...) are read with defaults, so an older or thinner report renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsshadow.replay.errors import BadInput

__all__ = ["SCHEMA_VERSION", "load_report", "validate_report"]

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Reports this wsshadow reads: version 1 has no ``fidelity`` and no ``inconclusive``."""
VERDICTS = ("equivalent", "divergent", "inconclusive")

_COUNTS = ("total", "equivalent", "divergent", "errored")


def _fail(where: str, what: str) -> BadInput:
    return BadInput(f"{where}: not a wsshadow report: {what}")


def validate_report(report: Any, where: str = "report") -> dict[str, Any]:
    """Check the keys every renderer needs; return the report or raise BadInput (one line)."""
    if not isinstance(report, dict):
        raise _fail(where, f"expected a JSON object, got {type(report).__name__}")
    if "schema_version" not in report:
        raise _fail(where, "no schema_version")
    version = report["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(where, f"schema_version must be an integer, got {version!r}")
    if version not in READABLE_VERSIONS:
        newer = " (written by a newer wsshadow: upgrade)" if version > SCHEMA_VERSION else ""
        raise BadInput(
            f"{where}: report schema_version {version} is not supported, "
            f"this wsshadow reads {SCHEMA_VERSION}{newer}"
        )
    missing = [k for k in ("verdict", "sessions", "differences", "noise") if k not in report]
    if missing:
        raise _fail(where, "missing " + ", ".join(missing))
    if report["verdict"] not in VERDICTS:
        raise _fail(
            where, f"verdict must be one of {', '.join(VERDICTS)}, got {report['verdict']!r}"
        )
    sessions = report["sessions"]
    if not isinstance(sessions, dict):
        raise _fail(where, "sessions must be an object")
    for key in _COUNTS:
        value = sessions.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _fail(where, f"sessions.{key} must be a non-negative integer")
    for key in ("differences", "noise"):
        items = report[key]
        if not isinstance(items, list) or not all(isinstance(g, dict) for g in items):
            raise _fail(where, f"{key} must be a list of objects")
        for i, g in enumerate(items):
            if not isinstance(g.get("signature"), str):
                raise _fail(where, f"{key}[{i}] has no signature")
    for i, g in enumerate(report["differences"]):
        if not isinstance(g.get("count", 0), int):
            raise _fail(where, f"differences[{i}].count must be an integer")
    details = report.get("session_details")
    if details is not None:
        if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
            raise _fail(where, "session_details must be a list of objects")
        for i, d in enumerate(details):
            if not isinstance(d.get("session"), str):
                raise _fail(where, f"session_details[{i}] has no session id")
            rows = d.get("rows")
            if rows is not None and (
                not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows)
            ):
                raise _fail(where, f"session_details[{i}].rows must be a list of objects")
    fidelity = report.get("fidelity")
    if fidelity is not None:
        if not isinstance(fidelity, dict):
            raise _fail(where, "fidelity must be an object")
        for key in ("reasons", "causes", "routes"):
            items = fidelity.get(key, [])
            if not isinstance(items, list):
                raise _fail(where, f"fidelity.{key} must be a list")
        if not all(isinstance(r, str) for r in fidelity.get("reasons", [])):
            raise _fail(where, "fidelity.reasons must be a list of strings")
        for key in ("causes", "routes"):
            if not all(isinstance(c, dict) for c in fidelity.get(key, [])):
                raise _fail(where, f"fidelity.{key} must be a list of objects")
    for key in ("timing", "baseline", "candidate"):
        if report.get(key) is not None and not isinstance(report[key], dict):
            raise _fail(where, f"{key} must be an object")
    return report


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and validate a JSON report file; BadInput (one line) when it is not one."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{p}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{p}: is a directory, not a report") from None
    except UnicodeDecodeError:
        raise BadInput(f"{p}: not a wsshadow report: not UTF-8 text") from None
    except OSError as e:
        raise BadInput(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{p}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return validate_report(data, str(p))
