"""compare_values: its DeepDiff-free fast path answers exactly as DeepDiff does."""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

from wsshadow.replay.diff.compare import _dotted, _json_value, compare_values

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False).map(lambda f: round(f, 1)),
    st.sampled_from(["a", "b", "", "ab\ncd"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=8,
)


def by_deepdiff(a: Any, b: Any) -> list[tuple[str, str | None, Any, Any]]:
    out = []
    found = DeepDiff(a, b, view="tree", threshold_to_diff_deeper=0, zip_ordered_iterables=True)
    for report_type, levels in found.items():
        kind = "type_changed" if report_type == "type_changes" else "changed_value"
        for level in levels:
            path = _dotted(level.path(output_format="list"))
            out.append((kind, path, _json_value(level.t1), _json_value(level.t2)))
    out.sort(key=lambda f: (f[1] or "", f[0]))
    return out or [("type_changed", None, a, b)]


@settings(max_examples=400, deadline=None)
@given(values, values)
def test_same_as_deepdiff_on_any_json(a: Any, b: Any) -> None:
    if a != b or type(a) is not type(b):
        assert compare_values(a, b) == by_deepdiff(a, b)


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_same_as_deepdiff_on_same_shapes(a: Any, data: st.DataObject) -> None:
    """Mutate leaves only, so the fast path answers (keys and lengths stay)."""

    def mutate(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: mutate(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mutate(x) for x in v]
        return data.draw(scalars) if data.draw(st.booleans()) else v

    b = mutate(a)
    assert compare_values(a, b) == by_deepdiff(a, b)


def test_equal_in_python_but_not_in_json() -> None:
    """1 == True in Python: the fast path leaves these to DeepDiff."""
    for a, b in (({"a": [1]}, {"a": [True]}), ({"a": 1}, {"a": True}), ([1.0], [1])):
        assert compare_values(a, b) == by_deepdiff(a, b)
        assert compare_values(a, b)  # never "no difference"


def test_hex_shaped_equal_pairs_a_masked_id_with_an_unmasked_run() -> None:
    from wsshadow.replay.diff.masks import hex_shaped_equal

    assert hex_shaped_equal("J-<hex>", "J-06054180")
    assert hex_shaped_equal("at <hex> and <hex>", "at 06054180 and <hex>")
    assert not hex_shaped_equal("J-<hex>", "J-0605")  # too short to be the mask's id
    assert not hex_shaped_equal("J-<hex>", "K-06054180")
    assert not hex_shaped_equal("J-06054180", "J-06054181")  # no mask on either side
