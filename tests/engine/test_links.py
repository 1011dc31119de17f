"""Link discovery (engine/links.py): pure, frames in, links and scenarios out."""

from __future__ import annotations

import json
from typing import Any

from wsshadow.replay.engine.links import LinkGraph, discover_links, scenario_key

T0 = 1_700_000_000.0


def frames(*turns: tuple[float, str, dict[str, Any] | None]) -> list[tuple[float, str, str | None]]:
    return [(t, d, json.dumps(doc) if doc is not None else None) for t, d, doc in turns]


def test_a_join_code_issued_to_one_session_and_sent_by_another_is_a_value_link() -> None:
    host = frames(
        (0.01, "client", {"type": "create"}),
        (0.02, "server", {"type": "created", "join_code": "J-7F3A91", "game_id": 41}),
    )
    guest = frames(
        (0.5, "client", {"type": "join", "code": "J-7F3A91"}),
        (0.51, "server", {"type": "joined", "game_id": 41}),
        (0.6, "client", {"type": "ready", "game_id": 41}),
    )
    graph = discover_links([("host", T0, host), ("guest", T0 + 0.1, guest)])
    values = [lk for lk in graph.links if lk.kind == "value"]
    assert [
        (lk.source, lk.source_index, lk.target, lk.target_index, lk.value) for lk in values
    ] == [
        ("host", 0, "guest", 0, "J-7F3A91")
    ]  # game_id reached the guest from its own server first: carried in-session, no link
    assert graph.scenarios == {"host": ["host", "guest"]}
    assert scenario_key("guest", graph) == "host"
    assert scenario_key("other", graph) == "other"
    assert "J-7F3A91" in values[0].describe()


def test_values_a_client_said_first_or_words_are_not_server_issued() -> None:
    # "hello world 1" was the users' text before any server sent it; "message" is a word.
    a = frames(
        (0.01, "client", {"type": "say", "text": "hello world 1"}),
        (0.02, "server", {"type": "said", "text": "hello world 1", "kind": "message"}),
    )
    b = frames(
        (0.5, "client", {"type": "say", "text": "hello world 1", "kind": "message"}),
    )
    graph = discover_links([("a", T0, a), ("b", T0, b)])
    assert [lk for lk in graph.links if lk.kind == "value"] == []


def test_a_broadcast_to_quiet_sessions_is_a_causal_link_to_the_sender() -> None:
    sender = frames(
        (1.00, "client", {"type": "shout"}),
        (1.01, "server", {"type": "final", "winner": "p1"}),
    )
    watcher1 = frames(
        (0.0, "client", {"type": "watch"}), (1.012, "server", {"type": "final", "winner": "p1"})
    )
    watcher2 = frames(
        (0.0, "client", {"type": "watch"}), (1.013, "server", {"type": "final", "winner": "p1"})
    )
    graph = discover_links([("s", T0, sender), ("w1", T0, watcher1), ("w2", T0, watcher2)])
    events = sorted((lk.source, lk.target, lk.value, lk.evidence) for lk in graph.links)
    assert events == [("s", "w1", "final", "broadcast"), ("s", "w2", "final", "broadcast")]
    assert set(graph.scenarios) == {"s"} and sorted(graph.scenarios["s"]) == ["s", "w1", "w2"]


def test_a_quiet_message_sharing_a_field_value_with_a_client_message_is_its_effect() -> None:
    mover = frames((1.0, "client", {"type": "move", "x": 2, "y": 1}))
    other = frames(
        (0.0, "client", {"type": "sit"}), (1.01, "server", {"type": "moved", "x": 2, "y": 1})
    )
    graph = discover_links([("m", T0, mover), ("o", T0, other)])
    assert [
        (lk.kind, lk.source, lk.source_index, lk.target, lk.target_index, lk.evidence)
        for lk in graph.links
    ] == [("event", "m", 0, "o", 0, "shared value")]


def test_independent_request_response_sessions_at_the_same_time_are_not_linked() -> None:
    # The same scripted conversation in 50 sessions at once: every answer follows its own
    # client's message, so nothing is anybody else's effect.
    sessions = []
    for i in range(50):
        sessions.append(
            (
                f"s{i:02}",
                T0 + i * 0.001,
                frames(
                    (0.0, "server", {"type": "hello", "session": f"sess-{i:04}"}),
                    (0.01, "client", {"type": "ask", "text": "what time is it"}),
                    (0.02, "server", {"type": "answer", "text": "it is late", "n": 1}),
                    (0.03, "client", {"type": "ask", "text": "thanks a lot"}),
                    (0.04, "server", {"type": "answer", "text": "you are welcome", "n": 2}),
                ),
            )
        )
    graph = discover_links(sessions)
    assert graph.links == [] and graph.scenarios == {}


def test_binary_and_non_json_frames_hold_no_values_but_keep_their_place() -> None:
    host = frames((0.0, "server", None), (0.01, "server", {"type": "code", "code": "Q9Z8Y7X6"}))
    host.append((0.02, "server", "not json {"))
    guest = frames((0.0, "client", None), (0.5, "client", {"type": "join", "code": "Q9Z8Y7X6"}))
    graph = discover_links([("h", T0, host), ("g", T0, guest)])
    (link,) = graph.links
    assert (link.source_index, link.target_index) == (1, 1)  # binary messages count too


def test_escaped_payloads_are_parsed_and_graph_neighbours() -> None:
    host = frames((0.01, "server", {"type": "code", "note": 'a "quoted" thing', "room_id": 7}))
    guest = frames((0.5, "client", {"type": "enter", "room_id": 7}))
    graph = discover_links([("h", T0, host), ("g", T0, guest)])
    assert [(lk.value, lk.kind) for lk in graph.links] == [(7, "value")]
    assert graph.neighbours() == {"h": {"g"}, "g": {"h"}}
    assert graph.links_of("h") == graph.links
    assert LinkGraph().scenarios == {}


def test_an_explicit_capture_rule_links_values_too_short_to_be_found() -> None:
    from wsshadow.replay.engine.carryover import CarryRule

    host = frames((0.01, "server", {"type": "room", "data": {"pin": "AB12"}}))
    guest = frames((0.5, "client", {"type": "enter", "pin": "AB12"}))
    sessions = [("h", T0, host), ("g", T0, guest)]
    assert discover_links(sessions).links == []
    rules = (CarryRule("data.pin", "pin", "room"),)
    (link,) = discover_links(sessions, rules=rules).links
    assert (link.source, link.target, link.value) == ("h", "g", "AB12")
    other_event = (CarryRule("data.pin", "pin", "lobby"),)
    assert discover_links(sessions, rules=other_event).links == []
