"""The pytest plugin: every recorded session of a capture becomes a regression test.

Registered through the ``pytest11`` entry point, so it loads in every pytest
run; it does nothing (and imports nothing heavy) unless ``--wsshadow-capture``
is given::

    pytest --wsshadow-capture captures/prod.db --wsshadow-target ws://127.0.0.1:8000

collects one item per recorded session (``wsshadow::<route>::<session id>``).
Each item replays its session against the target with the configured pacing
(causal by default), credentials, route maps and carry-over, and compares the
live server stream with the RECORDED one under the route's diff config
(``replay.regression``). Noise is learned from more replays against the same
target (``--wsshadow-noise-runs``, default 1). An item fails with its grouped
differences as the message, and errors with one line when the target is
unreachable. Items are replayed in concurrent batches the first time one of
them runs, so a capture costs about as long as its slowest sessions. The
machinery lives in ``replay.pytest_session``.

The ``wsshadow_replay`` fixture replays one named session for a custom test::

    def test_factory_session(wsshadow_replay):
        result = wsshadow_replay("a1b2c3d4e5f6")
        assert result.equivalent, result.explain()
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from wsshadow.replay.options import REPLAY_OPTIONS, OptionSpec

if TYPE_CHECKING:
    from wsshadow.replay.pytest_plugin.session import WsShadowReplayer

__all__ = ["pytest_addoption", "pytest_configure", "wsshadow_replay"]


_PLUGIN_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--wsshadow-capture", {"metavar": "FILE", "default": None,
        "help": "Capture file: one test per recorded session (the plugin is off without it)."}),
    ("--wsshadow-target", {"metavar": "URL", "default": None,
        "help": "ws:// or wss:// URL to replay against (default: [targets] candidate)."}),
    ("--wsshadow-config", {"metavar": "FILE", "default": None,
        "help": "wsshadow.toml (default: ./wsshadow.toml or [tool.wsshadow] in pyproject.toml)."}),
    ("--wsshadow-no-maps", {"action": "store_true", "default": False,
        "help": "Replay the recorded routes as they are (ignore the config's maps)."}),
    ("--wsshadow-noise-runs", {"metavar": "N", "type": int, "default": 1,
        "help": "Extra replays per session to learn what varies anyway (default 1; 0: none)."}),
    ("--wsshadow-run", {"metavar": "NAME", "default": None,
        "help": "Also store the replays in the capture as run NAME (noise: NAME-noise-N)."}),
    ("--wsshadow-timing", {"action": "store_true", "default": False,
        "help": "Also fail on latency differences against the recording ([diff.timing])."}),
)  # fmt: skip
"""The plugin's own options; the replay options come from ``REPLAY_OPTIONS``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--wsshadow-*`` options (inert until ``--wsshadow-capture`` is given)."""
    group = parser.getgroup("wsshadow", "wsshadow: recorded WebSocket sessions as tests")
    for flag, kwargs in _PLUGIN_OPTIONS:
        group.addoption(flag, **kwargs)
    for spec in REPLAY_OPTIONS:  # the replay options, from their one declaration
        group.addoption(f"--wsshadow-{spec.flag[2:]}", **_addoption_kwargs(spec))


_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "path": str}


def _addoption_kwargs(spec: OptionSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": f"wsshadow_{spec.name}", "help": spec.help_text()}
    if spec.kind == "bool":
        return {**kwargs, "action": "store_true", "default": False}
    kwargs["metavar"] = spec.metavar
    if spec.kind == "choice":
        kwargs["choices"] = spec.choices
    else:
        kwargs["type"] = _TYPES[spec.kind]
    if spec.many:
        return {**kwargs, "action": "append", "default": []}
    return {**kwargs, "default": None}


def pytest_configure(config: pytest.Config) -> None:
    """Switch the collector on when ``--wsshadow-capture`` is given; otherwise do nothing."""
    capture = config.getoption("wsshadow_capture", None)
    if not capture:
        return
    from wsshadow.replay.pytest_plugin.session import activate

    activate(config, capture)


@pytest.fixture
def wsshadow_replay(request: pytest.FixtureRequest) -> Iterator[WsShadowReplayer]:
    """A ``WsShadowReplayer`` over ``--wsshadow-capture`` and ``--wsshadow-target``.

    ``wsshadow_replay("ID")`` returns a ``ReplayCheck`` (``.equivalent``,
    ``.differences``, ``.live``, ``.recorded``, ``.explain()``); ``await
    wsshadow_replay.replay("ID")`` in async tests. Skips the test when pytest
    runs without ``--wsshadow-capture``.
    """
    if request.config.getoption("wsshadow_capture", None):
        from wsshadow.replay.pytest_plugin.session import replayer_for

        replayer = replayer_for(request.config)
        if replayer is not None:
            yield replayer
            return
    pytest.skip("wsshadow_replay needs --wsshadow-capture FILE and --wsshadow-target URL")
