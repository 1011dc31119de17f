"""Link discovery (engine/links.py): pure, frames in, links and scenarios out."""

from __future__ import annotations

import hashlib
import json
import random
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


def test_text_between_two_strings_is_no_value() -> None:
    """Compact JSON puts ``:123456,`` between two strings: not a string, so not an id
    (the scanner once took it for one, linking any two sessions that sent the same number)."""
    stats = frames((0.01, "server", None))
    stats[0] = (0.01, "server", '{"type":"stats","count":123456,"x":"a"}')
    settings = [(0.5, "client", '{"type":"set","limit":123456,"y":"b"}')]
    graph = discover_links([("s", T0, stats), ("c", T0, settings)])
    assert graph.links == [] and graph.scenarios == {}


Frame = tuple[float, str, str | None]


def generated_recording(count: int = 600, seed: int = 16) -> list[tuple[str, float, list[Frame]]]:
    """Sessions of varied shapes: compact and spaced JSON, escapes, arrays, numeric ids,
    binary frames, rooms joined with a server-issued code, broadcasts to the room."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        start = T0 + i * 0.07
        separators = (",", ":") if i % 2 == 0 else (", ", ": ")

        def dump(doc: dict[str, Any], separators: tuple[str, str] = separators) -> str:
            return json.dumps(doc, separators=separators)

        turns: list[Frame] = []
        room = i // 4 if i % 40 < 4 else None
        token = f"tk-{rng.getrandbits(40):010x}"
        hello = {"type": "hello", "session_id": token, "user_id": 100 + i % 900}
        turns.append((0.001, "server", dump(hello)))
        if room is not None:
            code = f"RM-{room:05d}z"
            if i % 4 == 0:
                turns.append((0.002, "client", dump({"type": "open"})))
                opened = {"type": "room", "room": {"code": code, "ids": [room, "x"]}}
                turns.append((0.003, "server", dump(opened)))
            else:
                at = 0.3 * (i % 4)
                turns.append((at, "client", dump({"type": "enter", "room_code": code})))
                turns.append((at + 0.001, "server", dump({"type": "welcome", "note": 'say "hi"'})))
        t = 2.0
        while len(turns) < 40:
            t += rng.choice((0.05, 0.3, 0.7))
            kind = rng.randrange(5)
            doc: dict[str, Any] = {"type": "ping"}
            if kind == 0:
                doc = {"type": "ask", "session_id": token, "q": f"question {len(turns)}"}
            elif kind == 1:
                x, y, game = rng.randrange(3), rng.randrange(3), rng.randrange(50)
                doc = {"event": "move", "x": x, "y": y, "game_id": game}
            elif kind == 2:
                said = rng.choice(["hello there", "tab\\there", "ok_done", "AB-12-CD-34"])
                doc = {"type": "say", "text": said}
            elif kind == 3:
                doc = {"type": "list", "items": [f"it-{rng.randrange(30):04d}", 3, True, None]}
            turns.append((t, "client", dump(doc)))
            if rng.random() < 0.8:
                answer = {"type": "answer", "n": rng.randrange(99), "echo": kind}
                if rng.random() < 0.3:
                    answer["ref"] = f"ref-{rng.randrange(40):06d}"
                turns.append((t + 0.002, "server", dump(answer)))
            if room is not None and kind == 2 and rng.random() < 0.5:
                echo = {"type": "said", "room": room, "text": doc["text"]}
                turns.append((t + 0.004, "server", dump(echo)))
        if room is not None:  # four turns each: one member speaks, the room hears it
            base = T0 + (i - i % 4) * 0.07 + 3.0
            for turn in range(4):
                at = base + turn * 1.5 - start
                heard = {"type": "said", "from": turn, "text": f"room {room} turn {turn}"}
                if turn == i % 4:
                    turns.append((at, "client", dump({"type": "say", "text": heard["text"]})))
                lag = 0.001 * (i % 4)
                turns.append((at + 0.003 + lag, "server", dump(heard)))
                over = {"type": "turn_over", "next": turn + 1}
                turns.append((at + 0.006 + lag, "server", dump(over)))
            turns.sort(key=lambda turn: turn[0])
        if i % 25 == 0:
            turns.append((t + 0.1, "server", None))
        out.append((f"g{i:04d}", start, turns[:40]))
    return out


def test_the_links_of_a_generated_recording_are_pinned() -> None:
    """What discovery finds on a varied recording, pinned: a faster scanner finds the same."""
    graph = discover_links(generated_recording())
    rows = [
        (lk.kind, lk.source, lk.source_index, lk.target, lk.target_index, lk.value, lk.evidence)
        for lk in graph.links
    ]
    kinds: dict[tuple[str, str], int] = {}
    for row in rows:
        kinds[row[0], row[6]] = kinds.get((row[0], row[6]), 0) + 1
    assert kinds == {("value", ""): 45, ("event", "shared value"): 84, ("event", "broadcast"): 8}
    assert sorted(len(m) for m in graph.scenarios.values()) == [4] * 9 + [8] * 3
    # The same links, in the same order, as the scanner before the split('"') one found.
    assert hashlib.sha256(repr(rows).encode()).hexdigest()[:16] == "786dbfbbd29b7507"


def test_a_code_written_into_a_longer_client_text_is_a_value_link() -> None:
    host = frames(
        (0.01, "client", {"type": "create"}),
        (0.02, "server", {"type": "created", "room": "room-7F3A91"}),
    )
    # Plain text with spaces (split scanner), and text with escapes (parsed as JSON).
    spoken = frames((0.5, "client", {"type": "say", "text": "join me in room-7F3A91 now"}))
    quoted = frames((0.6, "client", {"query": 'lines(room: "room-7F3A91", upto: 2)'}))
    graph = discover_links([("host", T0, host), ("spoken", T0, spoken), ("quoted", T0, quoted)])
    found = sorted((lk.target, lk.value) for lk in graph.links if lk.kind == "value")
    assert found == [("quoted", "room-7F3A91"), ("spoken", "room-7F3A91")]
    # Words and short runs inside a sentence are no values.
    chatter = frames((0.7, "client", {"type": "say", "text": "created something anyway"}))
    graph = discover_links([("host", T0, host), ("chatter", T0, chatter)])
    assert [lk for lk in graph.links if lk.kind == "value"] == []
