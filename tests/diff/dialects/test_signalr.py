"""SignalR JSON hub protocol from spec-derived records (ASP.NET Core is a .NET server: no
Python package serves it; records follow the HubProtocol spec)."""

import json

from tests.diff.dialects.dialectkit import C, S, detected, diff, names, session

RS = "\x1e"


def r(*docs: object) -> str:
    return "".join(json.dumps(d) + RS for d in docs)


def hub(total: int = 3, swap: bool = False) -> list:
    done = [{"type": 3, "invocationId": "1", "result": {"total": total}},
            {"type": 3, "invocationId": "2", "result": None}]  # fmt: skip
    return [
        C(r({"protocol": "json", "version": 1})), S(r({})),
        C(r({"type": 1, "invocationId": "1", "target": "Add", "arguments": [1, 2]},
            {"type": 1, "invocationId": "2", "target": "Send", "arguments": ["hi"]})),
        S(r({"type": 1, "target": "ReceiveMessage", "arguments": ["u", "hi"]})),
        S(r(*(done[::-1] if swap else done))),
        S(r({"type": 6})),
    ]  # fmt: skip


def test_detected():
    assert detected(hub()) == "signalr"


def test_identical_is_equivalent():
    assert diff(hub(), hub()) == ("signalr", [])


def test_changed_completion_names_the_invocation_and_path():
    assert names(diff(hub(), hub(total=4))[1]) == [("changed_value", "Add completion", "total")]


def test_completions_in_another_order_are_no_difference():
    assert diff(hub(), hub(swap=True))[1] == []


def test_json_nested_deeper_than_the_comparison_can_go_is_compared_as_text() -> None:
    """Found by tests/reliability/test_fuzz_properties.py: a record separator made the
    session SignalR, whose decoder handed 994-deep JSON to a recursive mask (RecursionError)."""
    from wsshadow.replay.config import DiffConfig
    from wsshadow.replay.diff.capture import diff_session

    cfg = DiffConfig().for_route("/ws")
    for frames in (
        ["\x1e", "[" * 994 + "]" * 994],
        ['{"a":' * 994 + "1" + "}" * 994 + "\x1e"],
    ):
        a = session("a", [S(p) for p in frames])
        assert diff_session("x", "/ws", a, a, [], cfg).findings == []
        found = diff_session("x", "/ws", a, session("b", []), [], cfg).findings
        assert found and all(f.kind == "missing_event" for f in found)
