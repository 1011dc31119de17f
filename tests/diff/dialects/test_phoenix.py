"""Phoenix Channels v2 from spec-derived messages (Phoenix is an Elixir server: no Python
package serves it; messages follow Phoenix.Socket.V2.JSONSerializer)."""

import json

from tests.diff.dialects.dialectkit import C, S, detected, diff, names


def m(*parts: object) -> str:
    return json.dumps(list(parts))


def phx(body: str = "hello", swap: bool = False) -> list:
    replies = [S(m("1", "2", "room:lobby", "phx_reply", {"status": "ok", "response": {"id": 7}})),
               S(m("1", "3", "room:lobby", "phx_reply",
                   {"status": "ok", "response": {"body": body}}))]  # fmt: skip
    return [
        C(m("1", "1", "room:lobby", "phx_join", {})),
        S(m("1", "1", "room:lobby", "phx_reply", {"status": "ok", "response": {}})),
        C(m("1", "2", "room:lobby", "new_msg", {"body": "a"})),
        C(m("1", "3", "room:lobby", "echo", {"body": body})),
        *(replies[::-1] if swap else replies),
        S(m(None, None, "room:lobby", "new_msg", {"body": "a", "user": "u1"})),
        C(m(None, "4", "phoenix", "heartbeat", {})),
        S(m(None, "4", "phoenix", "phx_reply", {"status": "ok", "response": {}})),
    ]  # fmt: skip


def test_detected():
    assert detected(phx()) == "phoenix"


def test_identical_is_equivalent():
    assert diff(phx(), phx()) == ("phoenix", [])


def test_changed_reply_names_the_push_and_path():
    assert names(diff(phx(), phx(body="bye"))[1]) == [
        ("changed_value", "room:lobby echo phx_reply", "response.body")
    ]


def test_replies_in_another_order_are_no_difference():
    assert diff(phx(), phx(swap=True))[1] == []


def test_heartbeats_are_control():
    cand = [f for f in phx() if "heartbeat" not in str(f[1]) and '"4"' not in str(f[1])]
    assert diff(phx(), cand)[1] == []
