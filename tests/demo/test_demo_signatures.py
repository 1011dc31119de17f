"""The difference signatures a correct differ must find between the two demo servers.

A deliberately naive differ (drop the noisy fields, sort the heartbeat race,
align event keys with difflib) over the same scripted traffic played against
the legacy and the consolidated server. It documents, as a runnable fact, the
signatures (kind, route, event key, path) that ``wsshadow demo`` should report.
"""

from __future__ import annotations

import difflib
from typing import Any

from wsshadow.replay.demo import SessionOutcome, run_traffic
from wsshadow.replay.demo.chat import AGENT_EVENTS

VOLATILE = {
    "timestamp",
    "server_time",
    "connection_id",
    "run_id",
    "request_id",
    "code",
}  # code: invites
Signature = tuple[str, str, str | None, str | None]


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if k not in VOLATILE}
    return value


def _key(message: dict[str, Any]) -> str:
    data = message.get("data")
    if isinstance(data, dict) and "event" in data:
        return str(data["event"])  # the /ws welcome is keyed by data.event
    return str(message["type"])


def _paths(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in a.keys() | b.keys():
            out |= _paths(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def _stream(session: SessionOutcome) -> list[Any]:
    msgs = [_normalize(m) for m in session.received]
    if session.route in ("/ws", "/websocket") and session.user:
        msgs[:2] = sorted(msgs[:2], key=_key)  # the heartbeat races the welcome
    return msgs


def naive_diff(old: SessionOutcome, new: SessionOutcome) -> set[Signature]:
    route = old.route
    found: set[Signature] = set()
    if old.subprotocol != new.subprotocol:
        found.add(("handshake", route, None, "subprotocol"))
    if old.close_code != new.close_code:
        found.add(("close", route, None, "code"))
    a, b = _stream(old), _stream(new)
    matcher = difflib.SequenceMatcher(
        a=[_key(m) for m in a], b=[_key(m) for m in b], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            found |= {("missing_event", route, _key(m), None) for m in a[i1:i2]}
        if op in ("insert", "replace"):
            found |= {("extra_event", route, _key(m), None) for m in b[j1:j2]}
        if op == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
                found |= {("changed_value", route, _key(x), p) for p in _paths(x, y)}
    return found


async def test_exactly_the_planted_signatures(legacy: str, consolidated: str) -> None:
    baseline = await run_traffic(legacy, seed=5)
    noise = await run_traffic(legacy, seed=5)
    candidate = await run_traffic(consolidated, seed=5)
    between_baselines: set[Signature] = set()
    found: set[Signature] = set()
    for b, n, c in zip(baseline.sessions, noise.sessions, candidate.sessions, strict=True):
        assert (b.route, b.user) == (c.route, c.user)
        between_baselines |= naive_diff(b, n)
        found |= naive_diff(b, c)
    assert between_baselines == set()  # the noise is all in the volatile fields and the race
    assert found == {
        ("missing_event", "/ws/factory", "agent_thinking", None),  # 1
        ("close", "/ws", None, "code"),  # 2
        ("changed_value", "/ws", "error_message", "error_code"),  # 3
        ("handshake", "/ws", None, "subprotocol"),  # 4
        # 5: one finding per isolated event key, unless the differ groups by path
        *{("changed_value", "/ws/isolated", e, "user_context.user_id") for e in AGENT_EVENTS},
    }
