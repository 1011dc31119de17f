"""Folding one field's change across several events into one finding."""

from __future__ import annotations

from typing import Any

from wsshadow.replay.diff.capture import fold_across_events


def group(
    event: str,
    sessions: list[str],
    path: str = "user.id",
    kind: str = "changed_value",
    route: str = "/ws",
) -> dict[str, Any]:
    return {
        "signature": f"{kind} {route} {event} {path}",
        "kind": kind,
        "route": route,
        "event": event,
        "path": path,
        "sessions": sessions,
        "count": len(sessions),
        "occurrences": 2 * len(sessions),
        "sessions_truncated": False,
        "examples": [{"session": s, "expected": "alice", "actual": "al..."} for s in sessions],
        "candidate_sessions": len(sessions),
        "noise_sessions": 0,
    }


def test_same_field_same_sessions_in_several_events_is_one_finding() -> None:
    diffs = [
        group("started", ["a", "b"]),
        group("completed", ["b", "a"]),
        group("other", ["a"], path="x"),
    ]
    folded, renamed = fold_across_events(diffs)
    assert [d["signature"] for d in folded] == [
        "changed_value /ws * user.id",
        "changed_value /ws other x",
    ]
    one = folded[0]
    assert one["events"] == ["completed", "started"] and one["event"] == "*"
    assert one["count"] == 2 and one["occurrences"] == 8
    assert [e["session"] for e in one["examples"]] == ["b", "a"]
    assert renamed == {
        "changed_value /ws started user.id": "changed_value /ws * user.id",
        "changed_value /ws completed user.id": "changed_value /ws * user.id",
    }


def test_different_sessions_kinds_or_routes_stay_apart() -> None:
    diffs = [
        group("started", ["a"]),
        group("completed", ["b"]),
        group("x", ["a"], kind="missing_event", path=""),
        group("y", ["a"], route="/other"),
    ]
    folded, renamed = fold_across_events(diffs)
    assert folded == diffs and renamed == {}
