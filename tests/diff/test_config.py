"""The configuration file: every key validated, errors name the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wsshadow.replay.config import BackgroundRule, Config, Ordering, discover_config, load_config
from wsshadow.replay.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _example() -> str:
    text = DOCS.read_text()
    return re.search(r"```toml\n(.*?)```", text, re.S).group(1)  # type: ignore[union-attr]


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text(_example())
    cfg = load_config(path)
    assert cfg.targets.candidate == "ws://127.0.0.1:9002"
    assert cfg.replay.maps == ("/ws/factory=/ws?mode=factory", "/websocket=/ws?mode=legacy")
    assert cfg.credentials["authorization"] == "Bearer ${API_TOKEN}"  # never expanded here
    assert cfg.carry_over[0].event == "thread_created"
    assert cfg.diff.background["ping"] == BackgroundRule(unordered=True, optional=True)
    assert cfg.diff.custom_masks["connection_id"] == "ws_[0-9]+_[0-9]+"
    factory = cfg.diff.for_route("/ws/factory")
    assert factory.event_keys == ("type",)
    assert factory.ordering == Ordering("per-key")
    assert factory.ignore[-1] == "payload.timestamp" and "**.timestamp" in factory.ignore
    other = cfg.diff.for_route("/elsewhere")
    assert other.event_keys == ("type", "event") and other.ordering == Ordering("strict")
    assert cfg.diff.for_route("/ws/isolated").event_ignore["connection_established"] == (
        "connection_id",
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[diff]\nordering = "x"',
            "wsshadow.toml: [diff].ordering: expected one of strict, per-key, window:N, got 'x'",
        ),
        ("[diff]\nordring = 1", "wsshadow.toml: [diff].ordring: unknown key"),
        ("colour = 1", "wsshadow.toml: colour: unknown key"),
        ('[diff]\nmasks = ["guid"]', "wsshadow.toml: [diff].masks: expected mask names"),
        ('[diff.timing]\nratio = "2"', "wsshadow.toml: [diff.timing].ratio: expected a number"),
        ("[diff.noise]\nsignificance = 2", "wsshadow.toml: [diff.noise].significance"),
        ('[diff.custom_masks]\nx = "("', "wsshadow.toml: [diff.custom_masks].x: expected a valid"),
        ('[diff.background]\nping = ["sometimes"]', "[diff.background].ping: expected a list"),
        ('[replay]\npace = "fast"', "[replay].pace: expected one of causal, recorded, asap"),
        ("[replay]\nconcurrency = 0", "[replay].concurrency: expected an integer >= 1"),
        ('[replay]\nmaps = ["/a"]', "[replay].maps: expected entries of the form FROM=TO"),
        ("[credentials]\ntoken = 3", "[credentials].token: expected a string"),
        ('[[carry_over]]\nserver = "a"', "[carry_over][0].client: expected a dotted path"),
        ('[routes."/ws"]\nordering = "window:x"', '[routes."/ws"].ordering: expected one of'),
        ('[routes."/ws".events.x]\nignre = []', '[routes."/ws".events.x].ignre: unknown key'),
        ('[diff]\nignore = ["a..b"]', "[diff].ignore: expected dotted paths"),
        ("[diff\n", "wsshadow.toml: not valid TOML"),
    ],
)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value).replace(str(tmp_path) + "/", "")
    assert text.startswith("wsshadow.toml: ")
    assert message in text


def test_window_ordering(tmp_path: Path) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text('[diff]\nordering = "window:3"\n')
    assert load_config(path).diff.ordering == Ordering("window", 3)


def test_discovery_order(tmp_path: Path) -> None:
    assert discover_config(cwd=tmp_path) == Config()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.wsshadow.diff]\nevent_keys = ["kind"]\n'
    )
    assert discover_config(cwd=tmp_path).diff.event_keys == ("kind",)
    (tmp_path / "wsshadow.toml").write_text('[diff]\nevent_keys = ["op"]\n')
    assert discover_config(cwd=tmp_path).diff.event_keys == ("op",)
    other = tmp_path / "other.toml"
    other.write_text('[diff]\nevent_keys = ["explicit"]\n')
    assert discover_config(other, cwd=tmp_path).diff.event_keys == ("explicit",)


def test_pyproject_errors_name_the_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.wsshadow.diff]\nordering = 3\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.wsshadow\]: \[diff\].ordering"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config("/nonexistent/wsshadow.toml")
