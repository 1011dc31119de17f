"""Socket.IO v5 / Engine.IO v4 from spec-derived frames (the real-server tests are in
tests/recorders/test_dialects_e2e.py)."""

from tests.diff.dialects.dialectkit import C, S, detected, diff, names, session
from wsshadow.replay.diff.dialects.socketio import SocketIO, parse_packet

OPEN = '0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def chat(sid: str = "AAA", ok2: bool = True, swap: bool = False) -> list:
    acks = [S('431[{"ok":true,"id":1}]'), S('432[{"ok":' + str(ok2).lower() + ',"id":2}]')]
    return [
        S(OPEN % sid), C("40"), S('40{"sid":"' + sid + '-ns"}'),
        C('42["join",{"room":"lobby"}]'), S('42["joined",{"room":"lobby","count":1}]'),
        C('421["chat",{"text":"hi"}]'), C('422["chat",{"text":"yo"}]'),
        *(acks[::-1] if swap else acks), S("2"), C("3"),
    ]  # fmt: skip


def test_detected_from_route_and_open_packet():
    assert detected(chat(), route="/socket.io/") == "socketio"
    assert detected(chat()) == "socketio"  # the open packet alone


def test_identical_and_fresh_sids_are_equivalent():
    dialect, found = diff(chat("AAA"), chat("BBB"), route="/socket.io/")
    assert dialect == "socketio" and found == []


def test_a_field_changed_inside_an_ack_is_named_by_the_emit():
    _, found = diff(chat(), chat(ok2=False), route="/socket.io/")
    assert names(found) == [("changed_value", "chat ack", "ok")]


def test_acks_completing_in_another_order_are_no_difference():
    assert diff(chat(), chat(swap=True), route="/socket.io/")[1] == []


def test_an_emit_never_acknowledged_is_one_missing_event_named_by_it():
    cand = [f for f in chat() if f[1] != '432[{"ok":true,"id":2}]']
    _, found = diff(chat(), cand, route="/socket.io/")
    assert names(found) == [("missing_event", "chat", None)]


def test_event_payload_change_names_event_and_path():
    cand = [S(f[1].replace('"count":1', '"count":2')) if "joined" in str(f[1]) else f
            for f in chat()]  # fmt: skip
    _, found = diff(chat(), cand, route="/socket.io/")
    assert names(found) == [("changed_value", "joined", "count")]


def test_packet_grammar_namespaces_and_ack_ids():
    assert parse_packet('2/admin,13["x",1]') == ("2", 0, "/admin", "13", ["x", 1])
    assert parse_packet("0") == ("0", 0, "/", None, None)
    assert parse_packet('51-/up,7["f",{"_placeholder":true,"num":0}]')[:4] == ("5", 1, "/up", "7")


def test_binary_attachments_are_decoded_into_the_event():
    frames = [S('451-["file",{"_placeholder":true,"num":0}]'), S(b"\x01\x02"), S("2")]
    events = [e for _, e in SocketIO().decode(session("x", frames).messages)]
    assert events[0].key == "file" and events[0].value == "AQI="
    assert events[1].control
    base = [C('42["get"]'), *frames]
    _, found = diff(base, [C('42["get"]'), frames[0], S(b"\x01\x03"), S("2")])
    assert names(found) == [("changed_value", "file", None)]


def test_pings_pongs_and_probes_are_control():
    a = [S(OPEN % "A"), C("2probe"), S("3probe"), C("5"), S('42["hi"]')]
    b = [S(OPEN % "B"), S('42["hi"]'), S("2"), S("2")]
    assert diff(a, b)[1] == []
