"""Properties of the aligner and differ, checked with hypothesis."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.diff.diffkit import S, session
from wsshadow.replay.config import DiffConfig, Ordering
from wsshadow.replay.diff.align import align_streams
from wsshadow.replay.diff.compare import compare_sessions
from wsshadow.replay.diff.normalize import Normalizer

KEYS = st.sampled_from(["a", "b", "c", "ping", "welcome"])
ORDERINGS = st.sampled_from([Ordering("strict"), Ordering("per-key"), Ordering("window", 2)])
json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
messages = st.one_of(
    st.builds(lambda k, v: {"type": k, "v": v}, KEYS, json_values),
    st.text(max_size=20),
    st.binary(max_size=8),
    json_values,
)


def _cfg(ordering: Ordering) -> Any:
    return DiffConfig(ordering=ordering).for_route("/ws")


@given(st.lists(KEYS, max_size=30), ORDERINGS)
def test_aligning_a_stream_with_itself_is_all_equal(keys: list[str], ordering: Ordering) -> None:
    pairs = align_streams(keys, keys, ordering)
    assert [p.status for p in pairs] == ["equal"] * len(keys)


@given(st.lists(KEYS, max_size=30), st.lists(KEYS, max_size=30), ORDERINGS, st.sets(KEYS))
def test_alignment_is_a_mirror_and_covers_every_message(
    a: list[str], b: list[str], ordering: Ordering, loose: set[str]
) -> None:
    ab = align_streams(a, b, ordering, loose)
    ba = align_streams(b, a, ordering, loose)
    assert sorted(p.base for p in ab if p.base is not None) == list(range(len(a)))
    assert sorted(p.cand for p in ab if p.cand is not None) == list(range(len(b)))
    for p in ab:
        if p.base is not None and p.cand is not None:
            assert a[p.base] == b[p.cand]  # only messages with the same key are paired
    assert {(p.base, p.cand, p.moved) for p in ab} == {(p.cand, p.base, p.moved) for p in ba}


@settings(max_examples=150, deadline=None)
@given(st.lists(messages, max_size=12), ORDERINGS)
def test_a_session_diffed_with_itself_has_no_findings(items: list[Any], ordering: Ordering) -> None:
    s = session("a", [S(m) for m in items])
    cfg = _cfg(ordering)
    assert compare_sessions(s, s, Normalizer(cfg), cfg).findings == []


MIRROR = {"missing_event": "extra_event", "extra_event": "missing_event"}


@settings(max_examples=150, deadline=None)
@given(st.lists(messages, max_size=12), st.lists(messages, max_size=12), ORDERINGS)
@example(x=[[None, False]], y=[[False, None, None]], ordering=Ordering("strict"))
@example(x=[[None, False]], y=[["", None, True]], ordering=Ordering("strict"))
def test_diff_a_b_mirrors_diff_b_a(x: list[Any], y: list[Any], ordering: Ordering) -> None:
    a = session("a", [S(m) for m in x])
    b = session("b", [S(m) for m in y])
    cfg = _cfg(ordering)
    norm = Normalizer(cfg)
    ab = compare_sessions(a, b, norm, cfg).findings
    ba = compare_sessions(b, a, norm, cfg).findings
    assert Counter((MIRROR.get(f.kind, f.kind), f.event) for f in ab if f.kind != "timing") == (
        Counter((f.kind, f.event) for f in ba if f.kind != "timing")
    )
    swapped = Counter((f.path, repr(f.actual), repr(f.expected)) for f in ab
                      if f.kind == "changed_value")  # fmt: skip
    assert swapped == Counter((f.path, repr(f.expected), repr(f.actual)) for f in ba
                              if f.kind == "changed_value")  # fmt: skip


# Numbers only as ints: the fast path compares numbers by value (documented), so 1, 1.0
# and true may pass as equal there; everything else must agree with the full comparison.
_leaves = (
    st.none()
    | st.integers(-3, 3)
    | st.sampled_from([1764150000, 1764150001, 1764150000123, "a", "b", "ws_1", "2026-11-26T10:00:00Z",
                       "2026-11-27T11:00:00Z", "550e8400-e29b-41d4-a716-446655440000",
                       "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "run_8f3a2c1d", "run_0b1c2d3e",
                       "x 1764150000 y"])
)  # fmt: skip
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "ts", "id"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_IGNORES = st.lists(st.sampled_from(["ts", "**.id", "a.*", "b.0", "*.b"]), max_size=2)


@settings(max_examples=300, deadline=None)
@given(_values, _values, _IGNORES)
def test_the_fast_path_never_calls_different_messages_equal(
    x: Any, y: Any, ignore: list[str]
) -> None:
    import json as _json

    from wsshadow.replay.capture.model import Direction, Message, Opcode

    cfg = DiffConfig(ignore=tuple(ignore)).for_route("/ws")
    norm = Normalizer(cfg)
    a = norm.message(Message(0, 0.0, Direction.SERVER, Opcode.TEXT, _json.dumps(x)))
    b = norm.message(Message(1, 0.0, Direction.SERVER, Opcode.TEXT, _json.dumps(y)))
    assert a is not None and b is not None
    if norm.equivalent(a, b):
        canon = [_json.dumps(norm.comparable(n), sort_keys=True) for n in (a, b)]
        assert canon[0] == canon[1]


@given(st.dictionaries(st.sampled_from(["targets", "replay", "diff", "routes", "credentials",
                                         "carry_over", "x"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                                    | st.floats(allow_nan=False),
                                    lambda inner: st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                                    max_leaves=10),
                       max_size=4))  # fmt: skip
def test_config_validation_raises_only_config_errors(data: dict[str, Any]) -> None:
    from wsshadow.replay.config import Config, parse_config
    from wsshadow.replay.errors import ConfigError

    try:
        assert isinstance(parse_config(data, "wsshadow.toml"), Config)
    except ConfigError as e:
        assert str(e).startswith("wsshadow.toml: ")
