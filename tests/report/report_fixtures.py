"""Reports for the renderer tests: the hand-made fixture and a synthetic large one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "report.json"
GOLDEN = Path(__file__).parent / "golden"


def columns_collapsed(text: str) -> str:
    """Text with runs of spaces made one: rich's column widths vary between its releases
    (13.8 to 15 lay the same table out a few spaces apart), the words and rows do not."""
    return "\n".join(re.sub(r" {2,}", " ", line).rstrip() for line in text.splitlines())


XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<script>window.__xss=1</script>",
)

_ROUTES = ("/ws", "/ws/factory", "/ws/isolated", "/websocket")
_EVENTS = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
    "system_message",
    "error_message",
    "ack",
)
_KINDS = ("missing_event", "extra_event", "changed_value", "type_changed", "reordered")


def load_fixture() -> dict[str, Any]:
    """The fixture report (a fresh copy each call)."""
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def _payload(i: int, event: str, big: bool) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": event,
        "run_id": f"run-{i}",
        "thread_id": f"th-{i % 97}",
        "data": {"text": f"message {i} " + XSS_PAYLOADS[i % 3], "n": i},
    }
    if big:  # long payloads push the Markdown size bound
        p["data"]["blob"] = ("x`|*<>&" * 600)[:4000]
    return p


def large_report(sessions: int = 10_000, groups: int = 300) -> dict[str, Any]:
    """A synthetic schema_version 1 report: ``sessions`` sessions, ``groups`` signatures.

    Rows are kept for up to 500 divergent/errored and 50 equivalent sessions,
    as the differ does; every third payload carries a script-injection string.
    """
    sigs: list[dict[str, Any]] = []
    for n in range(groups):
        kind = _KINDS[n % len(_KINDS)]
        route = _ROUTES[n % len(_ROUTES)]
        event = _EVENTS[n % len(_EVENTS)]
        path = f"data.field_{n}" if kind in ("changed_value", "type_changed") else None
        sig = f"{kind} {route} {event}" + (f" {path}" if path else "")
        sigs.append(
            {
                "signature": sig,
                "kind": kind,
                "route": route,
                "event": event,
                "path": path,
                "sessions": [],
                "count": 0,
                "occurrences": 0,
                "examples": [],
            }
        )
    details = []
    counts = {"equivalent": 0, "divergent": 0, "errored": 0}
    rows_divergent = rows_equivalent = 0
    for i in range(sessions):
        sid = f"sess-{i:05d}"
        verdict = "errored" if i % 97 == 0 else ("divergent" if i % 3 == 0 else "equivalent")
        if not groups:
            verdict = "equivalent"
        counts[verdict] += 1
        route = _ROUTES[i % len(_ROUTES)]
        diffs = []
        keep = (verdict != "equivalent" and rows_divergent < 500) or (
            verdict == "equivalent" and rows_equivalent < 50
        )
        rows = None
        if keep:
            rows = []
            for r in range(20):
                event = _EVENTS[r % len(_EVENTS)]
                b = {
                    "seq": r + 1,
                    "t": round(0.01 * r, 3),
                    "format": "json",
                    "payload": _payload(i * 100 + r, event, big=(r == 0 and i < 60)),
                }
                c = json.loads(json.dumps(b))
                rows.append(
                    {"status": "equal", "key": event, "baseline": b, "candidate": c, "fields": []}
                )
            if verdict == "equivalent":
                rows_equivalent += 1
            else:
                rows_divergent += 1
        if verdict == "divergent":
            for k in range(1 + i % 3):
                g = sigs[(i * 7 + k * 13) % groups]
                row = 3 + k
                # Group examples carry long payloads (they push the Markdown bound);
                # per-session findings carry the small differing value, as the differ does.
                example: Any = _payload(i, g["event"], big=True)
                expected: Any = i
                actual: Any = None if g["kind"] == "missing_event" else -1
                if rows is not None:
                    rows[row]["status"] = "changed"
                    rows[row]["fields"] = ["data.n"]
                    rows[row]["candidate"]["payload"]["data"]["n"] = -1
                diffs.append(
                    {
                        "kind": g["kind"],
                        "signature": g["signature"],
                        "event": g["event"],
                        "path": g["path"],
                        "expected": expected,
                        "actual": actual,
                        "row": row if rows is not None else None,
                    }
                )
                if sid not in g["sessions"]:
                    g["sessions"].append(sid)
                    g["count"] += 1
                g["occurrences"] += 1
                if len(g["examples"]) < 3:
                    g["examples"].append(
                        {
                            "session": sid,
                            "expected": example,
                            "actual": None if actual is None else -1,
                        }
                    )
        details.append(
            {
                "session": sid,
                "route": route,
                "verdict": verdict,
                "error": "candidate unreachable: connection refused"
                if verdict == "errored"
                else None,
                "baseline_session": f"baseline-1:{sid}",
                "candidate_session": f"candidate-1:{sid}",
                "differences": diffs,
                "noise": ["changed_value /ws system_message data.connection_id"],
                "handshake": {
                    "baseline": {"status": 101, "subprotocol": None},
                    "candidate": {"status": 101, "subprotocol": None},
                },
                "close": {
                    "baseline": {"code": 1000, "reason": "", "by": "client"},
                    "candidate": {"code": 1000, "reason": "", "by": "client"},
                },
                "rows": rows,
                "rows_truncated": False,
            }
        )
    used = [g for g in sigs if g["count"]]
    return {
        "schema_version": 1,
        "tool": {"name": "wsshadow", "version": "0.1.0"},
        "generated_at": "2026-11-26T11:00:00Z",
        "capture": "large.db",
        "verdict": "divergent" if used or counts["errored"] else "equivalent",
        "baseline": {"target": "ws://127.0.0.1:9001", "run": "baseline-1"},
        "candidate": {"target": "ws://127.0.0.1:9002", "run": "candidate-1"},
        "noise_runs": ["baseline-2"],
        "sessions": {"total": sessions, **counts},
        "differences": used,
        "noise": [
            {
                "signature": "changed_value /ws system_message data.connection_id",
                "kind": "changed_value",
                "route": "/ws",
                "event": "system_message",
                "path": "data.connection_id",
                "count": sessions,
                "candidate_sessions": sessions,
                "noise_sessions": sessions,
                "reason": "varies between baseline runs",
            }
        ],
        "timing": {
            "baseline_p50_ms": 1.2,
            "candidate_p50_ms": 1.4,
            "baseline_p95_ms": 3.0,
            "candidate_p95_ms": 3.1,
        },
        "session_details": details,
    }
