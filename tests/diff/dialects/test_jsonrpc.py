"""JSON-RPC 2.0 from spec-derived messages (a real server: tests/recorders/test_dialects_e2e.py)."""

import json

from tests.diff.dialects.dialectkit import C, S, detected, diff, names


def rpc(result2: int = 5, swap: bool = False, batch_swap: bool = False) -> list:
    replies = [S({"jsonrpc": "2.0", "id": 1, "result": {"sum": 3}}),
               S({"jsonrpc": "2.0", "id": 2, "result": {"sum": result2}})]  # fmt: skip
    batch = [{"jsonrpc": "2.0", "id": 3, "result": 1}, {"jsonrpc": "2.0", "id": 4, "result": 2}]
    return [
        C({"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1, 2]}),
        C({"jsonrpc": "2.0", "id": 2, "method": "add", "params": [2, 3]}),
        *(replies[::-1] if swap else replies),
        S({"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}}),
        C(json.dumps([{"jsonrpc": "2.0", "id": 3, "method": "one"},
                      {"jsonrpc": "2.0", "id": 4, "method": "two"}])),
        S(json.dumps(batch[::-1] if batch_swap else batch)),
    ]  # fmt: skip


def _reply2(frame: tuple) -> bool:
    return isinstance(frame[1], dict) and frame[1].get("id") == 2 and "result" in frame[1]


def test_detected():
    assert detected(rpc()) == "jsonrpc"


def test_identical_is_equivalent():
    assert diff(rpc(), rpc()) == ("jsonrpc", [])


def test_changed_result_names_the_method_and_path():
    assert names(diff(rpc(), rpc(result2=6))[1]) == [("changed_value", "add result", "sum")]


def test_replies_and_batches_in_another_order_are_no_difference():
    assert diff(rpc(), rpc(swap=True, batch_swap=True))[1] == []


def test_a_request_without_a_response_is_missing_by_method():
    cand = [f for f in rpc() if not _reply2(f)]
    assert names(diff(rpc(), cand)[1]) == [("missing_event", "add", None)]


def test_error_instead_of_result():
    cand = [S({"jsonrpc": "2.0", "id": 2, "error": {"code": -32000, "message": "x"}})
            if _reply2(f) else f for f in rpc()]  # fmt: skip
    assert names(diff(rpc(), cand)[1]) == [
        ("extra_event", "add error", None),
        ("missing_event", "add result", None),
    ]


def test_a_batch_with_numbers_orjson_refuses_is_decoded():
    """A batch holding an integer past 64 bits or a non-finite number (which only
    Python's json parses) decodes and compares; it used to raise TypeError."""
    base = [
        C(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "big"}])),
        S('[{"jsonrpc": "2.0", "id": 1, "result": [-9223372036854775809, Infinity]}]'),
    ]
    cand = [base[0], S('[{"jsonrpc": "2.0", "id": 1, "result": [-9223372036854775809, 1]}]')]
    assert diff(base, base) == ("jsonrpc", [])
    assert names(diff(base, cand)[1]) == [("type_changed", "big result", "1")]
