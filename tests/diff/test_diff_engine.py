"""The diff engine without I/O: every kind of difference, masks, ignore rules, alignment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.diff.diffkit import C, S, session
from wsshadow.replay.capture.model import Close, Closer, Direction, Message, Opcode
from wsshadow.replay.config import BackgroundRule, DiffConfig, Ordering, RouteOverride
from wsshadow.replay.diff.capture import DiffAccumulator, diff_session
from wsshadow.replay.diff.compare import Finding, compare_sessions
from wsshadow.replay.diff.normalize import IgnoreRules, Normalizer

ROUTE = "/ws"


def findings(base: Any, cand: Any, config: DiffConfig | None = None) -> list[Finding]:
    rc = (config or DiffConfig()).for_route(ROUTE)
    return compare_sessions(base, cand, Normalizer(rc), rc).findings


def kinds(fs: list[Finding]) -> list[str]:
    return [f.kind for f in fs]


GOLDEN = [
    S({"type": "welcome", "user": "alice"}),
    C({"type": "user_message", "text": "hi"}),
    S({"type": "agent_started", "run": 1}),
    S({"type": "agent_thinking", "text": "hmm"}),
    S({"type": "tool_executing", "tool": "search"}),
    S({"type": "tool_completed", "result": [1, 2]}),
    S({"type": "agent_completed", "result": "ok"}),
]


def without(items: list[Any], index: int) -> list[Any]:
    return items[:index] + items[index + 1 :]


def test_identical_sessions_have_no_findings() -> None:
    assert findings(session("a", GOLDEN), session("b", GOLDEN)) == []


def test_one_missing_event_is_exactly_one_missing_event() -> None:
    fs = findings(session("a", GOLDEN), session("b", without(GOLDEN, 3)))
    assert kinds(fs) == ["missing_event"]
    assert fs[0].event == "agent_thinking"
    assert fs[0].expected == {"type": "agent_thinking", "text": "hmm"} and fs[0].actual is None


def test_one_extra_event_is_exactly_one_extra_event() -> None:
    fs = findings(session("a", without(GOLDEN, 3)), session("b", GOLDEN))
    assert kinds(fs) == ["extra_event"] and fs[0].event == "agent_thinking"


def test_changed_value_names_the_field_path() -> None:
    cand = list(GOLDEN)
    cand[5] = S({"type": "tool_completed", "result": [1, 3]})
    fs = findings(session("a", GOLDEN), session("b", cand))
    assert [(f.kind, f.event, f.path, f.expected, f.actual) for f in fs] == [
        ("changed_value", "tool_completed", "result.1", 2, 3)
    ]


def test_added_and_removed_fields_are_changed_values() -> None:
    cand = list(GOLDEN)
    cand[2] = S({"type": "agent_started", "agent": "x"})
    fs = findings(session("a", GOLDEN), session("b", cand))
    assert sorted((f.path, f.expected, f.actual) for f in fs) == [
        ("agent", None, "x"),
        ("run", 1, None),
    ]


def test_type_changed() -> None:
    cand = list(GOLDEN)
    cand[2] = S({"type": "agent_started", "run": "1"})
    fs = findings(session("a", GOLDEN), session("b", cand))
    assert [(f.kind, f.path) for f in fs] == [("type_changed", "run")]


def test_reordered_is_one_finding_not_a_cascade() -> None:
    cand = [GOLDEN[0], GOLDEN[1], GOLDEN[3], GOLDEN[2], *GOLDEN[4:]]
    fs = findings(session("a", GOLDEN), session("b", cand))
    assert kinds(fs) == ["reordered"]


def test_per_key_ordering_ignores_reordering_across_keys() -> None:
    cand = [GOLDEN[0], GOLDEN[1], GOLDEN[3], GOLDEN[2], *GOLDEN[4:]]
    assert (
        findings(session("a", GOLDEN), session("b", cand), DiffConfig(ordering=Ordering("per-key")))
        == []
    )


def test_window_ordering_tolerates_small_moves_only() -> None:
    near = [GOLDEN[0], GOLDEN[1], GOLDEN[3], GOLDEN[2], *GOLDEN[4:]]
    far = [GOLDEN[0], GOLDEN[1], *GOLDEN[3:], GOLDEN[2]]
    cfg = DiffConfig(ordering=Ordering("window", 1))
    assert findings(session("a", GOLDEN), session("b", near), cfg) == []
    assert kinds(findings(session("a", GOLDEN), session("b", far), cfg)) == ["reordered"]


def test_background_events_unordered_and_optional() -> None:
    hb = S({"type": "heartbeat"})
    base = [hb, *GOLDEN]
    moved = [*GOLDEN[:4], hb, *GOLDEN[4:]]
    absent = list(GOLDEN)
    assert kinds(findings(session("a", base), session("b", moved))) == ["reordered"]
    assert kinds(findings(session("a", base), session("b", absent))) == ["missing_event"]
    cfg = DiffConfig(background={"heartbeat": BackgroundRule(unordered=True, optional=True)})
    assert findings(session("a", base), session("b", moved), cfg) == []
    assert findings(session("a", base), session("b", absent), cfg) == []


def test_handshake_differences() -> None:
    base = session("a", GOLDEN, subprotocol="jwt-auth", headers=(("X-Version", "1"),))
    cand = session("b", GOLDEN, subprotocol="jwt.abc", headers=(("x-version", "2"),))
    assert [(f.kind, f.path) for f in findings(base, cand)] == [("handshake", "subprotocol")]
    cfg = DiffConfig(compare_headers=("X-Version",))
    assert [(f.path, f.expected, f.actual) for f in findings(base, cand, cfg)] == [
        ("subprotocol", "jwt-auth", "jwt.abc"),
        ("headers.x-version", "1", "2"),
    ]
    refused = session("c", [], status=403)
    assert ("handshake", "status", 101, 403) in [
        (f.kind, f.path, f.expected, f.actual) for f in findings(base, refused)
    ]


def test_close_differences() -> None:
    base = session("a", GOLDEN, close=Close(1011, "no token", Closer.SERVER))
    cand = session("b", GOLDEN, close=Close(1008, "no token", Closer.CLIENT))
    assert [(f.kind, f.path, f.expected, f.actual) for f in findings(base, cand)] == [
        ("close", "code", 1011, 1008),
        ("close", "by", "server", "client"),
    ]


def test_timing_needs_ratio_and_floor() -> None:
    base = session("a", [C({"type": "go"}, 0.1), S({"type": "done"}, 0.11)])
    slow = session("b", [C({"type": "go"}, 0.1), S({"type": "done"}, 0.3)])
    fast_enough = session("c", [C({"type": "go"}, 0.1), S({"type": "done"}, 0.13)])
    fs = findings(base, slow)
    assert [(f.kind, f.event) for f in fs] == [("timing", "done")]
    assert fs[0].expected == pytest.approx(10.0) and fs[0].actual == pytest.approx(200.0)
    assert findings(base, fast_enough) == []  # 3x slower but only 20 ms: under the floor


def test_error_when_candidate_unreachable() -> None:
    cfg = DiffConfig().for_route(ROUTE)
    dead = session("b", [], status=None, close=Close(None, "", Closer.ERROR, "connection refused"))
    r = diff_session("a", ROUTE, session("a", GOLDEN), dead, [], cfg)
    assert r.error == "candidate unreachable: connection refused"
    assert kinds(r.findings) == ["error"]
    r = diff_session("a", ROUTE, session("a", GOLDEN), None, [], cfg)
    assert r.error == "no candidate session"


def test_masks_make_volatile_values_equal() -> None:
    base = session("a", [S({"type": "welcome", "id": "550e8400-e29b-41d4-a716-446655440000",
                             "at": "2026-11-26T10:00:00.125Z", "ts": 1764150000.5,
                             "ms": 1764150000125, "run": "run_8f3a2c1d9e"})])  # fmt: skip
    cand = session("b", [S({"type": "welcome", "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                             "at": "2026-11-27T11:30:00+01:00", "ts": 1764153600,
                             "ms": 1764153600999, "run": "run_0b1c2d3e4f"})])  # fmt: skip
    assert findings(base, cand) == []
    assert [f.path for f in findings(base, cand, DiffConfig(masks=()))] == [
        "at", "id", "ms", "run", "ts",
    ]  # fmt: skip


def test_custom_mask_and_ignore_rules() -> None:
    base = session("a", [S({"type": "welcome", "conn": "ws_17_1",
                             "data": {"a": {"id": 1, "k": 1}, "deep": {"x": {"server": 1}}}})])  # fmt: skip
    cand = session("b", [S({"type": "welcome", "conn": "ws_99_2",
                             "data": {"a": {"id": 2, "k": 1}, "deep": {"x": {"server": 2}}}})])  # fmt: skip
    assert sorted(f.path or "" for f in findings(base, cand)) == [
        "conn", "data.a.id", "data.deep.x.server",
    ]  # fmt: skip
    cfg = DiffConfig(
        custom_masks={"conn": r"ws_\d+_\d+"},
        masks=("conn",),
        ignore=("data.*.id", "**.server"),
    )
    assert findings(base, cand, cfg) == []


def test_per_route_event_keys_and_per_event_ignore() -> None:
    base = session("a", [S({"data": {"event": "x", "n": 1}}), S({"data": {"event": "y", "n": 1}})])
    cand = session("b", [S({"data": {"event": "y", "n": 2}})])
    cfg = DiffConfig(routes={ROUTE: RouteOverride(event_keys=("data.event",))})
    fs = findings(base, cand, cfg)
    assert [(f.kind, f.event, f.path) for f in fs] == [
        ("missing_event", "x", None),
        ("changed_value", "y", "data.n"),
    ]
    from wsshadow.replay.config import EventOverride

    cfg = DiffConfig(routes={ROUTE: RouteOverride(event_keys=("data.event",),
                                                  events={"y": EventOverride(("data.n",))})})  # fmt: skip
    assert kinds(findings(base, cand, cfg)) == ["missing_event"]


def test_ignore_rules_paths() -> None:
    rules = IgnoreRules(["**.ts", "a.*.id", "list.*.x", "b.**"])
    value = {"ts": 1, "a": {"p": {"id": 1, "v": 2}, "id": 3}, "list": [{"x": 1, "y": 2}],
             "b": {"c": 1}, "deep": {"deeper": {"ts": 2, "keep": 1}}}  # fmt: skip
    assert rules.apply(value) == {
        "a": {"p": {"v": 2}, "id": 3}, "list": [{"y": 2}], "b": {},
        "deep": {"deeper": {"keep": 1}},
    }  # fmt: skip
    assert value["ts"] == 1  # the input is not changed


def test_non_json_text_is_compared_as_text() -> None:
    base = session("a", [S("hello 550e8400-e29b-41d4-a716-446655440000"), S("bye")])
    same = session("b", [S("hello 1b4e28ba-2fa1-11d2-883f-0016d3cca427"), S("bye")])
    other = session("c", [S("hello 1b4e28ba-2fa1-11d2-883f-0016d3cca427"), S("ciao")])
    assert findings(base, same) == []
    fs = findings(base, other)
    assert [(f.kind, f.event, f.path, f.expected, f.actual) for f in fs] == [
        ("changed_value", None, None, "bye", "ciao")
    ]
    as_json = session("d", [S("hello 1b4e28ba-2fa1-11d2-883f-0016d3cca427"), S({"bye": 1})])
    fs = findings(base, as_json)
    assert kinds(fs) == ["missing_event", "extra_event"]  # a text message became a JSON one


def test_binary_is_compared_as_bytes() -> None:
    base = session("a", [S(b"\x00\x01\x02"), S({"type": "x"})])
    assert findings(base, session("b", [S(b"\x00\x01\x02"), S({"type": "x"})])) == []
    fs = findings(base, session("c", [S(b"\x00\x01\x03"), S({"type": "x"})]))
    assert [(f.kind, f.expected, f.actual) for f in fs] == [("changed_value", "AAEC", "AAED")]


def test_control_frames_ignored_by_default() -> None:
    def with_ping(payload: bytes) -> Any:
        s = session("a", GOLDEN)
        ping = Message(99, 0.5, Direction.SERVER, Opcode.PING, payload)
        return s.with_messages((*s.messages, ping))

    assert findings(with_ping(b"a"), with_ping(b"b")) == []
    assert kinds(
        findings(with_ping(b"a"), with_ping(b"b"), DiffConfig(control_frames="compare"))
    ) == ["changed_value"]


def test_noise_runs_cancel_per_session_noise() -> None:
    """Timestamps, uuids and a heartbeat racing the welcome: equivalent, noise listed."""
    import uuid

    def run(sid: str, heartbeat_first: bool, t: float, random_field: int) -> Any:
        hb = S({"type": "ping", "data": {"timestamp": 1764150000 + t}})
        welcome = S({"type": "system_message", "data": {
            "connection_id": str(uuid.uuid4()), "server_time": f"2026-11-26T10:00:0{t}Z",
            "seq": random_field}})  # fmt: skip
        first = [hb, welcome] if heartbeat_first else [welcome, hb]
        return session(sid, [*first, *GOLDEN[1:]], run="x", origin="r")

    cfg = DiffConfig()
    acc = DiffAccumulator(cfg)
    for i in range(20):
        base = run("b", i % 2 == 0, 1, 1)
        noise = [run("n", i % 3 == 0, 2, 2)]
        cand = run("c", i % 4 < 2, 3, 3)
        acc.add(diff_session(f"s{i}", ROUTE, base, cand, noise, cfg.for_route(ROUTE)))
    parts = acc.finish()
    assert parts["differences"] == []
    assert parts["sessions"] == {"total": 20, "equivalent": 20, "divergent": 0, "errored": 0}
    noise = {n["signature"] for n in parts["noise"]}
    assert "changed_value /ws system_message data.seq" in noise
    assert "reordered /ws ping" in noise or "reordered /ws system_message" in noise


def test_true_versus_one_is_a_type_change() -> None:
    fs = findings(session("a", [S({"type": "x", "ok": 1, "n": [1.5]})]),
                  session("b", [S({"type": "x", "ok": True, "n": [1.5]})]))  # fmt: skip
    assert [(f.kind, f.path, f.expected, f.actual) for f in fs] == [("type_changed", "ok", 1, True)]


def test_a_placeholders_number_is_no_difference() -> None:
    """Each run's writer numbers the values it redacts in its own order: ``#3`` against
    ``#4`` says nothing about the target (a different placeholder name still does)."""
    base = [
        S({"type": "session", "token": "${redacted:json:token#3}"}),
        S("t=${redacted:form:token#3}"),
    ]
    cand = [
        S({"type": "session", "token": "${redacted:json:token#4}"}),
        S("t=${redacted:form:token#4}"),
    ]
    assert findings(
        session("a", base, subprotocol="jwt.${redacted:subprotocol:jwt#1}",
                close=Close(1008, "token=${redacted:form:token#1}", Closer.SERVER)),
        session("b", cand, subprotocol="jwt.${redacted:subprotocol:jwt#2}",
                close=Close(1008, "token=${redacted:form:token#2}", Closer.SERVER)),
    ) == []  # fmt: skip
    other = [S({"type": "session", "token": "${redacted:json:password#3}"}), base[1]]
    assert kinds(findings(session("a", base), session("b", other))) == ["changed_value"]
    assert kinds(findings(session("a", [S(b"${redacted:json:token#1}")]),
                          session("b", [S(b"${redacted:json:token#9}")]))) == []  # fmt: skip


def test_an_id_that_happens_to_be_all_digits_is_the_same_shape_as_a_masked_one() -> None:
    """token_hex(4) is all digits once in 43: J-06054180 stays as it is, J-3fa9c2d1 becomes
    J-<hex>. Paired, the masked side says where the id is (a false alarm in CI before)."""
    def welcome(code: str) -> Any:
        return session("a", [S({"type": "created", "join_code": code, "note": f"code {code}"})])

    assert findings(welcome("J-06054180"), welcome("J-3fa9c2d1")) == []
    assert findings(welcome("J-3fa9c2d1"), welcome("J-06054180")) == []
    # A different shape around the id, or a short number, is still a difference.
    assert [f.path for f in findings(welcome("J-06054180"), welcome("K-3fa9c2d1"))] == [
        "join_code", "note",
    ]  # fmt: skip
    assert [f.path for f in findings(welcome("J-0605"), welcome("J-3fa9c2d1"))] == [
        "join_code", "note",
    ]  # fmt: skip
