"""State carry-over, planned from a recording and applied to a replay, without I/O."""

from __future__ import annotations

import json

from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode, Session
from wsshadow.replay.engine.carryover import (
    CarryRule,
    match_path,
    may_carry,
    parse_path,
    plan_carry_over,
)


def _session(*items: tuple[str, object]) -> Session:
    msgs = tuple(
        Message(i, i * 0.1, Direction(d), Opcode.TEXT, json.dumps(doc))
        for i, (d, doc) in enumerate(items)
    )
    return Session("s", 0.0, Handshake("/ws"), msgs)


def test_server_issued_thread_id_is_carried_into_later_client_messages() -> None:
    session = _session(
        ("server", {"type": "welcome", "data": {"thread_id": "thr_AAAAAA", "n": 7}}),
        ("client", {"type": "say", "thread_id": "thr_AAAAAA", "text": "hi"}),
        ("server", {"type": "reply", "thread_id": "thr_AAAAAA"}),
        ("client", {"type": "say", "path": "/threads/thr_AAAAAA/x", "count": 7}),
    )
    plan = plan_carry_over(session)
    assert plan.active
    assert set(plan.uses) == {0, 1}
    tracker = plan.tracker()
    tracker.observe_server(json.dumps({"type": "welcome", "data": {"thread_id": "thr_BBBBBB"}}))
    out0 = json.loads(tracker.rewrite_client(0, session.messages[1].payload))
    assert out0 == {"type": "say", "thread_id": "thr_BBBBBB", "text": "hi"}
    out1 = json.loads(tracker.rewrite_client(1, session.messages[3].payload))
    # substring replaced; the small integer 7 is not an id and is left alone
    assert out1 == {"type": "say", "path": "/threads/thr_BBBBBB/x", "count": 7}


def test_values_the_client_said_first_are_not_server_issued() -> None:
    session = _session(
        ("client", {"type": "hello", "name": "alice-wonder"}),
        ("server", {"type": "hi", "name": "alice-wonder"}),
        ("client", {"type": "again", "name": "alice-wonder"}),
    )
    assert not plan_carry_over(session).active


def test_integer_ids_carry_over_and_occurrence_matters() -> None:
    session = _session(
        ("server", {"type": "created", "run_id": 41}),
        ("server", {"type": "created", "run_id": 42}),
        ("client", {"type": "cancel", "run": 42}),
    )
    tracker = plan_carry_over(session).tracker()
    tracker.observe_server(json.dumps({"type": "created", "run_id": 901}))
    assert tracker.rewrite_client(0, session.messages[2].payload) == session.messages[2].payload
    tracker.observe_server(json.dumps({"type": "created", "run_id": 902}))
    assert json.loads(tracker.rewrite_client(0, session.messages[2].payload))["run"] == 902


def test_unchanged_payload_is_returned_as_is() -> None:
    session = _session(("client", {"a": 1}))
    tracker = plan_carry_over(session).tracker()
    assert tracker.rewrite_client(0, session.messages[0].payload) is session.messages[0].payload


def test_explicit_rule_copies_between_paths() -> None:
    session = _session(
        ("server", {"event": "thread_created", "data": {"tid": "x"}}),
        ("client", {"payload": {"thread_id": "x"}}),
    )
    rule = CarryRule(server="data.tid", client="payload.thread_id", event="thread_created")
    tracker = plan_carry_over(session, rules=(rule,)).tracker()
    tracker.observe_server(json.dumps({"event": "other", "data": {"tid": "wrong"}}))
    tracker.observe_server(json.dumps({"event": "thread_created", "data": {"tid": "y"}}))
    assert json.loads(tracker.rewrite_client(0, session.messages[1].payload)) == {
        "payload": {"thread_id": "y"}
    }


def test_explicit_rule_rewrites_echoes_only() -> None:
    """A client that sent something other than what the server said keeps its value."""
    session = _session(
        ("server", {"type": "connection_established", "user_id": "judy-jablonski"}),
        ("client", {"payload": {"user_id": "judy-jablonski"}}),
        ("client", {"payload": {"user_id": "someone-else"}}),
    )
    rule = CarryRule(server="user_id", client="payload.user_id", event="connection_established")
    tracker = plan_carry_over(session, rules=(rule,)).tracker()
    tracker.observe_server(json.dumps({"type": "connection_established", "user_id": "replayer"}))
    echo, claim = (tracker.rewrite_client(i, session.messages[i + 1].payload) for i in (0, 1))
    assert json.loads(echo) == {"payload": {"user_id": "replayer"}}
    assert json.loads(claim) == {"payload": {"user_id": "someone-else"}}


def test_path_patterns() -> None:
    doc = {"a": {"b": [{"id": 1}, {"id": 2}]}, "id": 0}
    assert [v for _, v in match_path(doc, parse_path("a.b.*.id"))] == [1, 2]
    assert sorted(v for _, v in match_path(doc, parse_path("**.id"))) == [0, 1, 2]
    assert match_path(doc, parse_path("a.b.1.id")) == [(("a", "b", 1, "id"), 2)]


def test_raw_prefilter_does_not_lose_values_after_numbers_in_lists() -> None:
    session = _session(
        ("server", {"type": "made", "items": ["ab", 1234567, "value_x1"]}),
        ("client", {"type": "use", "ref": "value_x1"}),
    )
    tracker = plan_carry_over(session).tracker()
    tracker.observe_server(json.dumps({"type": "made", "items": ["ab", 1, "value_y2"]}))
    assert json.loads(tracker.rewrite_client(0, session.messages[1].payload))["ref"] == "value_y2"


def test_echo_sessions_skip_the_walk() -> None:
    session = _session(
        ("client", {"type": "user_message", "text": "hello there"}),
        ("server", {"type": "user_message", "text": "hello there"}),
        ("client", {"type": "user_message", "text": "hello again"}),
    )
    assert not plan_carry_over(session).active


def test_echoes_and_repeated_client_texts_do_not_hide_an_issued_value() -> None:
    hello = {"type": "user_message", "text": "hello there"}
    session = _session(
        ("client", hello),
        ("server", hello),  # an echo: skipped by the raw prefilter
        ("server", {"type": "made", "thread": "thread_777"}),
        ("client", hello),  # a repeat of a client text: skipped too
        ("client", {"type": "use", "thread": "thread_777"}),
    )
    plan = plan_carry_over(session)
    assert plan.active and plan.uses == {2: ("thread_777",)}
    tracker = plan.tracker()
    tracker.observe_server(json.dumps(hello))
    tracker.observe_server(json.dumps({"type": "made", "thread": "thread_888"}))
    assert json.loads(tracker.rewrite_client(2, session.messages[4].payload))["thread"] == (
        "thread_888"
    )


def test_may_carry_reads_frames_as_values_and_knows_who_said_a_value_first() -> None:
    said_first = [
        ("client", "text", '{"ref":"value_abc"}'),
        ("server", "text", '{"ok":"value_abc","n":1}'),  # not an echo, but nothing new
        ("client", "text", '{"again":"value_abc"}'),
    ]
    assert not may_carry(said_first)
    issued = [
        ("client", "text", '{"hi":1}'),
        ("client", "text", '{"hi":1}'),
        ("server", "text", '{"made":"value_xyz"}'),
        ("client", "text", '{"use":"value_xyz"}'),
    ]
    assert may_carry(issued)
    assert not may_carry([("server", "binary", b'{"made":"value_xyz"}'), *issued[3:]])


def test_values_carried_over_inside_socketio_frames() -> None:
    """A server-issued id in a Socket.IO event, echoed by a later emit, is carried over and
    the emit encoded back with its 42 prefix."""
    from tests.conftest import make_session
    from wsshadow.replay.engine.carryover import plan_carry_over

    recorded = make_session(route="/socket.io/", messages=[
        ("server", "text", '42["created",{"thread_id":"thr-0001"}]'),
        ("client", "text", '42["post",{"thread_id":"thr-0001","text":"hi"}]'),
    ])  # fmt: skip
    tracker = plan_carry_over(recorded).tracker()
    tracker.observe_server('42["created",{"thread_id":"thr-9999"}]')
    assert tracker.rewrite_client(0, '42["post",{"thread_id":"thr-0001","text":"hi"}]') == (
        '42["post",{"thread_id":"thr-9999","text":"hi"}]'
    )
