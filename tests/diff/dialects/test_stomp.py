"""STOMP 1.2 from spec-derived frames (no STOMP broker with a WebSocket listener is in the
package registries this project uses; frames follow stomp-specification-1.2)."""

from tests.diff.dialects.dialectkit import C, S, detected, diff, names
from wsshadow.replay.diff.dialects.stomp import parse_frames


def frame(command: str, body: str = "", **headers: str) -> str:
    lines = [command, *(f"{k.replace('_', '-')}:{v}" for k, v in headers.items())]
    return "\n".join(lines) + "\n\n" + body + "\x00"


def stomp(price: int = 10, swap: bool = False) -> list:
    msgs = [
        S(frame("MESSAGE", f'{{"price": {price}}}', subscription="0", message_id="m-1",
                destination="/topic/prices")),
        S(frame("MESSAGE", '{"text": "hi"}', subscription="1", message_id="m-2",
                destination="/topic/chat")),
    ]  # fmt: skip
    return [
        C(frame("CONNECT", accept_version="1.2", host="/")),
        S(frame("CONNECTED", version="1.2", session="sess-7", heart_beat="0,0")),
        C(frame("SUBSCRIBE", id="0", destination="/topic/prices")),
        C(frame("SUBSCRIBE", id="1", destination="/topic/chat")),
        C(frame("SEND", '{"q": 1}', destination="/app/ask", receipt="r-1")),
        *(msgs[::-1] if swap else msgs),
        S(frame("RECEIPT", receipt_id="r-1")),
        S("\n"),
    ]  # fmt: skip


def test_parse_frames_headers_escapes_and_heartbeats():
    assert parse_frames("\n") == [None]
    [(command, headers, body)] = parse_frames("SEND\ndestination:/a\\cb\n\nhello\x00")
    assert (command, headers, body) == ("SEND", {"destination": "/a:b"}, "hello")


def test_detected_by_subprotocol_and_connect_frame():
    assert detected(stomp(), subprotocol="v12.stomp") == "stomp"
    assert detected(stomp()) == "stomp"


def test_identical_and_fresh_session_ids_are_equivalent():
    other = [S(f[1].replace("sess-7", "sess-9").replace("m-1", "m-8")) if f[0] == "server" else f
             for f in stomp()]  # fmt: skip
    assert diff(stomp(), other) == ("stomp", [])


def test_changed_body_field_names_command_destination_and_path():
    assert names(diff(stomp(), stomp(price=11))[1]) == [
        ("changed_value", "MESSAGE /topic/prices", "body.price")
    ]


def test_subscriptions_interleaving_differently_is_no_difference():
    assert diff(stomp(), stomp(swap=True))[1] == []


def test_missing_receipt_is_named_by_the_frame_that_asked():
    cand = [f for f in stomp() if "RECEIPT" not in str(f[1])]
    assert names(diff(stomp(), cand)[1]) == [("missing_event", "SEND /app/ask", None)]
