"""Property tests that add to tests/diff/test_diff_properties.py (which covers align(a, a),
the diff mirror and top-level config shapes): configs shaped like the real schema with
wrong leaves, arbitrary TOML text, and payloads the normalizer must survive, deep JSON above all.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.diff.diffkit import S, session
from tests.reliability.kit import cli, recorded
from wsshadow.replay.capture.model import Direction, Message, Opcode, Run, Source
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import Config, DiffConfig, Ordering, load_config, parse_config
from wsshadow.replay.diff.capture import diff_session
from wsshadow.replay.diff.compare import compare_sessions
from wsshadow.replay.diff.normalize import MAX_JSON_DEPTH, Normalizer
from wsshadow.replay.errors import ConfigError

# ---- the config loader ---------------------------------------------------------------------

GOOD_STRINGS = ["causal", "asap", "strict", "per-key", "window:3", "uuid", "iso8601", "epoch",
                "hex", "ignore", "compare", "unordered", "optional", "/ws=/ws?mode=a",
                "X-A: b", "data.id", "**.ts", "type", "(", "[a-z]+", ""]  # fmt: skip
leaf = (
    st.sampled_from(GOOD_STRINGS)
    | st.text(max_size=6)
    | st.integers(-3, 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
)
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(GOOD_STRINGS), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def _table(keys: list[str], extra: dict[str, st.SearchStrategy[Any]] | None = None) -> Any:
    fields = {k: value for k in keys} | (extra or {})
    return st.fixed_dictionaries({}, optional=fields)


DIFF_COMMON = ["ignore", "event_keys", "ordering", "masks", "control_frames", "compare_headers"]
diff_table = _table(
    DIFF_COMMON,
    {
        "custom_masks": st.dictionaries(st.sampled_from(["a", "b"]), value, max_size=2),
        "timing": _table(["ratio", "floor_ms"]),
        "noise": _table(["relative", "absolute", "significance"]),
        "background": st.dictionaries(st.sampled_from(["ping", "tick"]), value, max_size=2),
        "bogus": value,
    },
)
config_dicts = _table(
    [],
    {
        "targets": _table(["baseline", "candidate"]),
        "replay": _table(
            [
                "maps",
                "headers",
                "pace",
                "speed",
                "concurrency",
                "rate",
                "causal_timeout",
                "idle_timeout",
                "ca",
            ]
        ),
        "credentials": st.dictionaries(
            st.sampled_from(["authorization", "jwt"]), value, max_size=2
        ),
        "carry_over": st.lists(_table(["server", "client", "event"]), max_size=2) | value,
        "diff": diff_table | value,
        "routes": st.dictionaries(
            st.sampled_from(["/ws", "/ws/*"]),
            _table(
                DIFF_COMMON,
                {"events": st.dictionaries(st.sampled_from(["x"]), _table(["ignore"]), max_size=1)},
            ),
            max_size=2,
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(config_dicts)
def test_schema_shaped_configs_give_a_config_or_a_named_config_error(data: dict[str, Any]) -> None:
    try:
        assert isinstance(parse_config(data, "wsshadow.toml"), Config)
    except ConfigError as e:
        text = str(e)
        assert text.startswith("wsshadow.toml: ") and "\n" not in text.strip()


toml_text = st.text(
    alphabet=st.sampled_from([*(string.ascii_letters[:8] + '[]{}=."\',#\n -_0123:/*'), "\x00", "é"]),
    max_size=80,
) | st.builds(
    lambda k, v: f"[diff]\n{k} = {json.dumps(v)}\n",
    st.sampled_from([*DIFF_COMMON, "nope"]),
    st.sampled_from(GOOD_STRINGS) | st.lists(st.sampled_from(GOOD_STRINGS), max_size=3),
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(toml_text)
def test_any_toml_text_loads_or_raises_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as e:
        assert str(e).startswith(f"{path}: ")


# ---- the normalizer and the comparison -------------------------------------------------------

deep = st.builds(
    lambda d, kind, tail: ("[" * d + tail + "]" * d) if kind else ('{"a":' * d + tail + "}" * d),
    st.integers(0, 3000),
    st.booleans(),
    st.sampled_from(["1", '"x"', "null", "[]", "{}", "NaN", "1e999", "9" * 5000]),
)
payloads = st.one_of(
    deep,
    st.text(max_size=40),
    st.binary(max_size=16),
    st.sampled_from(['{"type":"a","v":NaN}', '{"type":"a","type":"b"}', '{"v":"\\ud800"}',
                     '{"type": 1}', '{"type": null}', '{"type": ["x"]}', '{"type": {"a": 1}}',
                     "", " ", "\x00", "[1,2", "1" * 5000]),
)  # fmt: skip
ORDER = st.sampled_from([Ordering("strict"), Ordering("per-key"), Ordering("window", 2)])


def _cfg(ordering: Ordering) -> Any:
    return DiffConfig(
        ordering=ordering, ignore=("**.ts", "a.a"), masks=("uuid", "iso8601", "epoch", "hex")
    ).for_route("/ws")


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, max_size=6), st.lists(payloads, max_size=6), ORDER)
def test_normalize_and_compare_survive_any_payload(x: list[Any], y: list[Any], o: Ordering) -> None:
    cfg = _cfg(o)
    norm = Normalizer(cfg)
    for p in (*x, *y):
        op = Opcode.TEXT if isinstance(p, str) else Opcode.BINARY
        norm.message(Message(0, 0.0, Direction.SERVER, op, p))
    a, b = session("a", [S(p) for p in x]), session("b", [S(p) for p in y])
    assert compare_sessions(a, a, norm, cfg).findings == []
    ab = diff_session("x", "/ws", a, b, [], cfg).findings
    ba = diff_session("x", "/ws", b, a, [], cfg).findings
    assert len([f for f in ab if f.kind != "timing"]) == len([f for f in ba if f.kind != "timing"])


def test_deep_json_through_diff_and_every_report(tmp_path: Path, capsys) -> None:
    """Documents at the depth limit compare field by field; deeper ones as text; no crash."""
    shallow = '{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH
    payloads = [shallow, "[" * 900 + "1" + "]" * 900, "[" * 5000 + "1" + "]" * 5000]
    cap = tmp_path / "cap.db"
    with CaptureStore.open(cap, create=True) as store:
        store.put_session(recorded("d", [("server", p) for p in payloads]))
        store.put_run(Run("c", "ws://x", Source.REPLAY, {}, 1.0, 2.0, 1, 0))
        store.put_session(recorded("c:d", [("server", p.replace("1", "2")) for p in payloads],
                                   run="c", origin="d"))  # fmt: skip
    out = {k: tmp_path / f"r.{k}" for k in ("json", "md", "html", "txt", "xml")}
    argv = ["diff", cap, "--candidate", "c", "--output", out["json"]]
    for k in ("md", "html", "txt", "xml"):
        argv += ["--report", out[k]]
    code, _o, err = cli(capsys, argv)
    assert code == 1, err
    report = json.loads(out["json"].read_text())
    changed = [d for d in report["differences"] if d["kind"] == "changed_value"]
    assert sum(d["occurrences"] for d in changed) == 3  # one per message, none lost
    assert any("a.a.a" in str(d["path"]) for d in changed)  # the shallow one, field by field
    assert all(p.stat().st_size > 0 for p in out.values())
