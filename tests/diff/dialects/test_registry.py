"""The dialect registry: entry-point plug-ins (docs/dialects.md's worked example), overrides."""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsshadow.replay.diff.dialects as registry
from tests.diff.dialects.dialectkit import C, S, diff, names, session
from wsshadow.replay.errors import BadInput

DOC = Path(__file__).parents[3] / "docs" / "dialects.md"

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["type", "id", "event", "method", "result", "identifier", "data",
                         "message", "invocationId", "target", "arguments", "payload"]), inner,
        max_size=5),
    max_leaves=12,
)  # fmt: skip
_PREFIXES = st.sampled_from(["", "0", "2", "3", "40", "42", "43", "451-", "46", "4/ns,", "6"])
PAYLOADS = (
    st.text(max_size=30)
    | st.binary(max_size=40)
    | _JSON.map(json.dumps)
    | st.tuples(_PREFIXES, _JSON.map(json.dumps)).map("".join)
    | st.lists(_JSON.map(json.dumps), max_size=3).map(lambda d: "\x1e".join(d) + "\x1e")
    | st.sampled_from(["SEND\ndestination:/x\n\n{}\x00", "MESSAGE\n\n\x00\n", "\n"])
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/dialects.md's example, installed as a package with a wsshadow.dialects entry point."""
    code = re.search(r"```python\n# mypkg/pipes.py\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "pipes.py").write_text(code.group(1))
    info = tmp_path / "mypkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[wsshadow.dialects]\npipes = mypkg.pipes:Pipes\nbroken = mypkg.nowhere:Nothing\n"
        "json = mypkg.pipes:Pipes\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # The distribution's own entry points, as importlib.metadata reads them from its
    # dist-info (not every installed one: other tests may install packages of their own).
    [dist] = distributions(path=[str(tmp_path)])
    monkeypatch.setattr(
        registry, "entry_points", lambda group: dist.entry_points.select(group=group)
    )
    monkeypatch.setattr(registry, "_loaded", None)
    yield
    sys.modules.pop("mypkg.pipes", None)
    sys.modules.pop("mypkg", None)


def pipes(total: int = 3, swap: bool = False) -> list:
    replies = [S(f'REPLY 1|{{"total": {total}}}'), S('REPLY 2|{"total": 9}')]
    return [C('EVENT add|1|{"a": 1}'), C('EVENT add|2|{"a": 4}'),
            *(replies[::-1] if swap else replies), S("PING")]  # fmt: skip


def test_the_documented_plugin_is_detected_and_diffed(plugin: None) -> None:
    assert "pipes" in registry.dialect_names()
    assert type(registry.dialects()["json"]).__module__.endswith("plain")  # no replacing
    assert diff(pipes(), pipes()) == ("pipes", [])
    assert diff(pipes(), pipes(swap=True))[1] == []
    assert names(diff(pipes(), pipes(total=4))[1]) == [("changed_value", "add reply", "total")]


def test_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"unknown dialect 'nope' \(known: socketio, graphql"):
        registry.get_dialect("nope")


def test_override_beats_detection() -> None:
    frames = [C('42["hi"]'), S('42["hello",{"n":1}]')]
    assert diff(frames, frames)[0] == "socketio"
    assert diff(frames, frames, dialect="raw")[0] == "raw"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["client", "server"]), PAYLOADS), max_size=6))
def test_every_dialect_decodes_any_payload_without_raising(frames: list) -> None:
    """Hostile or foreign payloads become events (``<text>``, ``<json>``, ``<malformed>``),
    never exceptions: one odd message must not stop the diff of a capture."""
    s = session("f", [(d, p, 0.0) for d, p in frames])
    for dialect in registry.BUILTIN:
        for _, event in dialect.decode(s.messages):
            assert isinstance(event.key, str)
