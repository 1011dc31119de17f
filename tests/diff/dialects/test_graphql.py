"""GraphQL over WebSocket, both protocols, from spec-derived messages (a real server with
subscriptions: tests/recorders/test_dialects_e2e.py)."""

from tests.diff.dialects.dialectkit import C, S, detected, diff, names

SUB = "subscription OnMessage { messageAdded { id text } }"


def new(text: str = "b", swap: bool = False) -> list:
    a = [S({"id": "1", "type": "next", "payload": {"data": {"messageAdded": {"id": 1, "text": "a"}}}}),
         S({"id": "1", "type": "complete"})]  # fmt: skip
    b = [S({"id": "2", "type": "next", "payload": {"data": {"count": {"n": 1, "text": text}}}}),
         S({"id": "2", "type": "complete"})]  # fmt: skip
    return [
        C({"type": "connection_init", "payload": {}}), S({"type": "connection_ack"}),
        C({"id": "1", "type": "subscribe", "payload": {"query": SUB}}),
        C({"id": "2", "type": "subscribe", "payload": {"query": "query Count { count { n } }",
                                                       "operationName": "Count"}}),
        *([*b, *a] if swap else [a[0], b[0], a[1], b[1]]),
        S({"type": "ping"}), C({"type": "pong"}),
    ]  # fmt: skip


def legacy(text: str = "b") -> list:
    return [
        C({"type": "connection_init", "payload": {}}), S({"type": "connection_ack"}),
        S({"type": "ka"}),
        C({"id": "1", "type": "start", "payload": {"query": SUB}}),
        S({"id": "1", "type": "data", "payload": {"data": {"messageAdded": {"text": text}}}}),
        S({"type": "ka"}), C({"id": "1", "type": "stop"}), S({"id": "1", "type": "complete"}),
    ]  # fmt: skip


def test_detected_by_subprotocol_and_by_messages():
    assert detected(new(), subprotocol="graphql-transport-ws") == "graphql"
    assert detected(legacy(), subprotocol="graphql-ws") == "graphql"
    assert detected(legacy()) == "graphql"


def test_identical_is_equivalent():
    assert diff(new(), new(), subprotocol="graphql-transport-ws") == ("graphql", [])
    assert diff(legacy(), legacy(), subprotocol="graphql-ws") == ("graphql", [])


def test_changed_field_names_the_operation():
    assert names(diff(new(), new(text="c"))[1]) == [
        ("changed_value", "subscribe Count next", "data.count.text")
    ]
    assert names(diff(legacy(), legacy(text="c"))[1]) == [
        ("changed_value", "subscribe OnMessage next", "data.messageAdded.text")
    ]


def test_operations_completing_in_another_order_are_no_difference():
    assert diff(new(), new(swap=True))[1] == []
