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

The ``wsshadow_server`` fixture plays a capture's server side to the code
under test (a mock server, ``replay.serve``)::

    def test_client(wsshadow_server):
        server = wsshadow_server("captures/chat.db", match="key")
        run_my_client(server.url + "/ws/chat")
        # the test fails at teardown, mismatches rendered, if the client deviated
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from wsshadow.replay.errors import WsShadowError
from wsshadow.replay.options import REPLAY_OPTIONS, OptionSpec

if TYPE_CHECKING:
    from wsshadow.replay.pytest_plugin.session import WsShadowReplayer
    from wsshadow.replay.serve.background import ServerThread

__all__ = [
    "ServeFactory",
    "pytest_addoption",
    "pytest_configure",
    "wsshadow_replay",
    "wsshadow_server",
]


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
    for spec in (s for s in REPLAY_OPTIONS if s.pytest):  # from their one declaration
        group.addoption(f"--wsshadow-{spec.flag[2:]}", **_addoption_kwargs(spec))


def _addoption_kwargs(spec: OptionSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": f"wsshadow_{spec.name}", "help": spec.help_text()}
    if spec.kind == "bool":
        return {**kwargs, "action": "store_true", "default": False}
    kwargs["metavar"] = spec.metavar
    if spec.kind == "choice":
        kwargs["choices"] = spec.choices
    else:
        kwargs["type"] = spec.value_type
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


class ServeFactory:
    """What ``wsshadow_server`` yields: call it with a capture (and serve options) to
    start a mock server; each server it started stops when the test ends."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self.servers: list[ServerThread] = []

    def __call__(
        self,
        capture: str | None = None,
        *,
        match: str = "strict",
        pace: str = "asap",
        speed: float = 1.0,
        on_mismatch: str = "close",
        reuse: bool = False,
        sessions: tuple[str, ...] | list[str] = (),
        routes: tuple[str, ...] | list[str] = (),
        config: str | None = None,
        run: str | None = None,
        expect_mismatches: bool = False,
    ) -> ServerThread:
        """Start a mock server of ``capture`` (default ``--wsshadow-capture``) on
        127.0.0.1, ephemeral port; returns it (``.url``, ``.mismatches``, ``.lines``).

        Unless ``expect_mismatches``, the test fails at teardown when a client
        deviated, each mismatch rendered on its line."""
        from wsshadow.replay.serve.background import ServerThread
        from wsshadow.replay.serve.plan import MatchMode, OnMismatch, Pace, ServeOptions

        capture = capture or self._config.getoption("wsshadow_capture", None)
        if not capture:
            raise pytest.UsageError("wsshadow_server needs a capture (or --wsshadow-capture FILE)")
        options = ServeOptions(MatchMode(match), Pace(pace), speed, OnMismatch(on_mismatch), reuse)
        config = config or self._config.getoption("wsshadow_config", None)
        server = ServerThread(capture, options, sessions=sessions, routes=routes,
                              config=config, run=run)  # fmt: skip
        server.expect_mismatches = expect_mismatches
        self.servers.append(server)
        try:
            server.start()
        except WsShadowError as e:  # a bad capture or filter: one line, not a traceback
            pytest.fail(f"wsshadow_server: {e}", pytrace=False)
        return server


@pytest.fixture
def wsshadow_server(request: pytest.FixtureRequest) -> Iterator[ServeFactory]:
    """Start mock servers from captures: ``server = wsshadow_server("capture.db", match="key")``
    then connect to ``server.url + ROUTE``. The servers stop at teardown, where the test
    fails with the mismatches rendered if a client deviated (unless ``expect_mismatches``)."""
    factory = ServeFactory(request.config)
    try:
        yield factory
    finally:
        for server in factory.servers:
            server.stop()
    lines = [
        m.line()
        for server in factory.servers
        if not server.expect_mismatches
        for m in server.mismatches
    ]
    if lines:
        pytest.fail("the client deviated from the recording:\n" + "\n".join(lines), pytrace=False)
