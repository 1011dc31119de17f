"""The pytest plugin's machinery, imported only when ``--wsshadow-capture`` is given.

``replay.pytest_plugin`` (the ``pytest11`` entry point) stays light so that
every pytest run pays nothing for it; this module holds the settings, the
collector, the items, the replaying and the ``wsshadow_replay`` fixture's
``WsShadowReplayer``. See ``replay.pytest_plugin`` for the user's view.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from wsshadow.replay.capture.model import Run, Session, Source
from wsshadow.replay.capture.store import CaptureStore, SessionHead
from wsshadow.replay.config import Config, discover_config
from wsshadow.replay.diff.against_recording import (
    Difference,
    ReplayCheck,
    check_session,
    live_failure,
)
from wsshadow.replay.engine.credentials import Credentials
from wsshadow.replay.engine.links import LinkGraph
from wsshadow.replay.engine.options import build_replay_options
from wsshadow.replay.engine.run import ReplayOptions, replay_session
from wsshadow.replay.engine.scenarios import capture_links, replay_scenario, select_with_scenarios
from wsshadow.replay.engine.targets import parse_route_map
from wsshadow.replay.errors import BadInput, WsShadowError
from wsshadow.replay.options import REPLAY_OPTIONS, ReplayOverrides, replay_option

__all__ = [
    "PLUGIN_NAME",
    "Difference",
    "ReplayCheck",
    "WsShadowItem",
    "WsShadowReplayer",
    "WsShadowSettings",
    "activate",
    "replay_check",
    "replayer_for",
    "scenario_checks",
]

PLUGIN_NAME = "wsshadow-collection"
_RUN = "pytest"


# ---- settings ----------------------------------------------------------------


@dataclass(frozen=True)
class WsShadowSettings:
    """What the command line and the config file say: capture, replay options, diff config."""

    capture: Path
    options: ReplayOptions
    config: Config
    noise_runs: int = 1
    timing: bool = False
    run: str | None = None
    """Store the replays in the capture as this run (and ``<run>-noise-<n>``)."""

    def run_names(self) -> list[str]:
        """The run names the replays get: the live one first, then the noise runs."""
        base = self.run or _RUN
        return [base] + [f"{base}-noise-{i}" for i in range(1, self.noise_runs + 1)]

    @property
    def target(self) -> str:
        """The URL replays go to."""
        return self.options.target

    def with_target(
        self, target: str | None = None, maps: Sequence[str] | None = None
    ) -> WsShadowSettings:
        """The same settings against another target and/or with other route maps."""
        options = self.options
        if target is not None:
            options = replace(options, target=target)
        if maps is not None:
            options = replace(options, maps=tuple(parse_route_map(m) for m in maps))
        return replace(self, options=options)


def _settings(config: pytest.Config, capture: str) -> WsShadowSettings:
    """Build the settings from the options and the config file; raises WsShadowError."""
    opt = config.getoption
    cfg = discover_config(opt("wsshadow_config"), cwd=config.rootpath)
    target = opt("wsshadow_target") or cfg.targets.candidate
    if not target or target == "recorded":
        raise pytest.UsageError(
            "wsshadow: --wsshadow-capture needs --wsshadow-target URL "
            "(or [targets] candidate in the config)"
        )
    values = {s.name: opt(f"wsshadow_{s.name}") for s in REPLAY_OPTIONS if s.pytest}
    values = {k: (v or None) if replay_option(k).many else v for k, v in values.items()}
    if values["maps"] is None and opt("wsshadow_no_maps"):
        values["maps"] = ()  # the recorded routes, whatever the config maps
    noise_runs = opt("wsshadow_noise_runs")
    if noise_runs < 0:
        raise pytest.UsageError("wsshadow: --wsshadow-noise-runs must not be negative")
    options = build_replay_options(cfg, target, ReplayOverrides.of(**values), os.environ)
    path = Path(capture)
    if not path.is_absolute():
        path = Path(config.invocation_params.dir) / path
    run = opt("wsshadow_run")
    if run is not None and (not run or ":" in run):
        raise pytest.UsageError(f"wsshadow: run name {run!r}: expected a name without ':'")
    return WsShadowSettings(path, options, cfg, noise_runs, opt("wsshadow_timing"), run)


def activate(config: pytest.Config, capture: str) -> None:
    """Register the collector for ``capture``; raises pytest.UsageError with one line."""
    try:
        settings = _settings(config, capture)
        with CaptureStore.open(settings.capture, readonly=True) as store:
            # Linked sessions replay together: --wsshadow-session brings its whole scenario.
            summaries, graph = select_with_scenarios(store, settings.options)
            for name in settings.run_names() if settings.run else ():
                if store.get_run(name) is not None:
                    raise BadInput(
                        f"{settings.capture}: a run called {name!r} exists already; "
                        "choose another --wsshadow-run"
                    )
    except WsShadowError as e:
        raise pytest.UsageError(f"wsshadow: {e}") from None
    # Under pytest-xdist each worker runs only some items: batching ahead would
    # replay sessions that other workers own, so workers replay one at a time.
    batch = 1 if hasattr(config, "workerinput") else settings.options.concurrency
    config.pluginmanager.register(_Collection(settings, summaries, batch, graph), PLUGIN_NAME)


# ---- replaying -------------------------------------------------------------------


async def replay_check(
    recorded: Session, settings: WsShadowSettings, credentials: Credentials | None = None
) -> ReplayCheck:
    """Replay ``recorded`` against the target (plus the noise runs, concurrently) and check it.

    Never raises for target errors: an unreachable target is ``ReplayCheck.error``.
    Raises BadInput for a credential that refers to an unset environment variable.
    """
    options = settings.options
    if credentials is None:
        credentials = Credentials.resolve(options.credentials, options.env or {})
    runs = settings.run_names()
    replays = await asyncio.gather(
        *(replay_session(recorded, options, run=r, credentials=credentials) for r in runs)
    )
    live, again = replays[0][0], [s for s, _ in replays[1:]]
    config = settings.config.diff.for_route(recorded.route)
    return check_session(
        recorded, live, again, config, target=options.target, timing=settings.timing
    )


async def scenario_checks(
    store: CaptureStore,
    heads: list[SessionHead],
    graph: LinkGraph,
    settings: WsShadowSettings,
    credentials: Credentials | None = None,
) -> dict[str, ReplayCheck]:
    """Replay linked sessions together (``heads``: one scenario, in recorded order), once
    per run name, the runs one after another; check each session against its recording.

    The runs take turns, as ``shadow``'s do with a scenario on one target: at once, the
    members of both replays would meet in the target's state (a room the clients name).
    ``store`` stays open meanwhile. Never raises for target errors.
    """
    options = settings.options
    if credentials is None:
        credentials = Credentials.resolve(options.credentials, options.env or {})
    runs = [
        await replay_scenario(store, heads, graph, options, run=r, credentials=credentials)
        for r in settings.run_names()
    ]
    recorded = {h.id: store.get_session(h.id) for h in heads}
    checks = {}
    for sid, session in recorded.items():
        live, again = runs[0][sid][0], [run[sid][0] for run in runs[1:]]
        config = settings.config.diff.for_route(session.route)
        checks[sid] = check_session(
            session, live, again, config, target=options.target, timing=settings.timing
        )
    return checks


def _run_async(coro: Any) -> Any:
    """Run a coroutine to completion in a private event loop on a worker thread.

    A thread keeps the caller's event loop state (pytest-asyncio's) untouched
    and works from inside a running loop too.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wsshadow") as pool:
        return pool.submit(asyncio.run, coro).result()


def _replays(check: ReplayCheck) -> list[Session]:
    """A check's replayed sessions: the live one, then the noise runs'."""
    return [s for s in (check.live, *check.again) if s is not None]


class _Collection:
    """The plugin object registered when a capture is given: collects and replays."""

    def __init__(
        self,
        settings: WsShadowSettings,
        summaries: Sequence[SessionHead],
        batch: int = 1,
        graph: LinkGraph | None = None,
    ) -> None:
        self.settings = settings
        self.batch = max(1, batch)
        self.summaries = list(summaries)
        self.graph = graph
        # Each selected session of a scenario -> the selected sessions it replays with.
        self.together: dict[str, list[SessionHead]] = {}
        if graph is not None:
            members: dict[str, list[SessionHead]] = {}
            for head in self.summaries:
                scenario = graph.scenario_of.get(head.id)
                if scenario is not None:
                    members.setdefault(scenario, []).append(head)
            for group in members.values():
                if len(group) > 1:
                    self.together.update((h.id, group) for h in group)
        self.pending: list[str] = []
        self.started = time.time()
        self.results: dict[str, ReplayCheck] = {}
        self.warmed = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        top = _CaptureNode.from_parent(
            session, name="wsshadow", nodeid="wsshadow", path=self.settings.capture
        )
        routes: dict[str, _RouteNode] = {}
        for s in self.summaries:
            parent = routes.get(s.route)
            if parent is None:
                parent = routes[s.route] = _RouteNode.from_parent(
                    top, name=s.route, path=self.settings.capture
                )
            items.append(
                WsShadowItem.from_parent(
                    parent, name=s.id, path=self.settings.capture, collection=self, summary=s
                )
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.pending = [i.name for i in session.items if isinstance(i, WsShadowItem)]

    def result(self, session_id: str) -> ReplayCheck:
        """The check of ``session_id``, replaying it with the next batch when not yet done.

        A batch holds up to ``batch`` units: a session alone, or a scenario (its sessions
        replayed together, each item's check coming from that replay).
        """
        if session_id not in self.results:
            units = [self._unit(session_id)]
            taken = set(units[0])
            for sid in self.pending:
                if len(units) >= self.batch:
                    break
                if sid not in self.results and sid not in taken:
                    units.append(self._unit(sid))
                    taken.update(units[-1])
            batch = _run_async(self._batch(units))
            if self.settings.run:
                self._store(batch.values())
            self.results.update(batch)
        return self.results.pop(session_id)

    def _unit(self, session_id: str) -> list[str]:
        group = self.together.get(session_id)
        return [h.id for h in group] if group is not None else [session_id]

    def _store(self, checks: Iterable[ReplayCheck]) -> None:
        """Add a batch's replays to the capture's runs (created on the first batch)."""
        now = time.time()
        names = self.settings.run_names()
        opts = self.settings.options
        with CaptureStore.open(self.settings.capture) as store:
            checks = list(checks)
            sessions = [s for c in checks for s in _replays(c)]
            store.put_sessions(sessions, on_conflict="replace")
            for i, name in enumerate(names):
                done = [r[i] for r in (_replays(c) for c in checks) if len(r) > i]
                errors = sum(1 for r in done if live_failure(r) is not None)
                old = store.get_run(name)
                store.put_run(
                    Run(
                        name,
                        opts.target,
                        Source.REPLAY,
                        opts.settings(),
                        old.started_at if old is not None else self.started,
                        now,
                        (old.sessions if old is not None else 0) + len(done),
                        (old.errors if old is not None else 0) + errors,
                    )
                )

    async def _batch(self, units: list[list[str]]) -> dict[str, ReplayCheck]:
        opts = self.settings.options
        credentials = Credentials.resolve(opts.credentials, opts.env or {})
        if not self.warmed:
            self.warmed = True
            await self._warm_up(credentials)
        # Open while the scenarios replay: their plans read it.
        with CaptureStore.open(self.settings.capture, readonly=True) as store:
            alone = [store.get_session(u[0]) for u in units if len(u) == 1]

            async def singles() -> dict[str, ReplayCheck]:
                checks = await asyncio.gather(
                    *(replay_check(r, self.settings, credentials) for r in alone)
                )
                return {r.id: check for r, check in zip(alone, checks, strict=True)}

            async def scenario(ids: list[str]) -> dict[str, ReplayCheck]:
                assert self.graph is not None
                heads = self.together[ids[0]]
                return await scenario_checks(store, heads, self.graph, self.settings, credentials)

            parts = await asyncio.gather(singles(), *(scenario(u) for u in units if len(u) > 1))
        out: dict[str, ReplayCheck] = {}
        for part in parts:
            out.update(part)
        return out

    async def _warm_up(self, credentials: Credentials) -> None:
        """``--wsshadow-warmup N``: replay the first N sessions once, checked and stored nowhere."""
        # Sessions that stand alone: one of a scenario, alone, waits out every cross-session
        # wait and sends the target stale values (as replay_capture's warm-up).
        standalone = [h for h in self.summaries if h.id not in self.together]
        heads = standalone[: self.settings.options.warmup or 0]
        if not heads:
            return
        with CaptureStore.open(self.settings.capture, readonly=True) as store:
            recorded = [store.get_session(h.id) for h in heads]
        opts = self.settings.options
        await asyncio.gather(
            *(replay_session(r, opts, run="warmup", credentials=credentials) for r in recorded),
            return_exceptions=True,  # the measured replays meet any failure again
        )


# ---- collection nodes -----------------------------------------------------------


class _CaptureNode(pytest.Collector):
    """``wsshadow``: the capture's sessions, grouped by route."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []  # items are made directly (pytest_collection_modifyitems)


class _RouteNode(pytest.Collector):
    """``wsshadow::<route>``."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class WsShadowItem(pytest.Item):
    """One recorded session, replayed against the target and checked against the recording."""

    def __init__(self, *, collection: _Collection, summary: SessionHead, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.summary = summary
        self.check: ReplayCheck | None = None

    def setup(self) -> None:
        try:
            check = self.collection.result(self.name)
        except WsShadowError as e:
            pytest.fail(f"wsshadow: {e}", pytrace=False)
        if check.error is not None and live_failure(check.live) is not None:
            # No stream to compare: the item errors (in setup) with one line.
            pytest.fail(f"wsshadow: {check.target}: {check.error}", pytrace=False)
        self.check = check

    def runtest(self) -> None:
        assert self.check is not None
        if not self.check.equivalent:
            message = self.check.explain()
            group = self.collection.together.get(self.name)
            if group is not None:
                others = ", ".join(h.id for h in group if h.id != self.name)
                message += f"\n  replayed together with the sessions of its scenario: {others}"
            pytest.fail(message, pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"wsshadow {self.summary.route} {self.name}"


# ---- the fixture -------------------------------------------------------------------


class WsShadowReplayer:
    """Replays named sessions of the capture for a custom test (the ``wsshadow_replay`` fixture).

    ``replayer("SESSION_ID")`` blocks and returns a ``ReplayCheck``;
    ``await replayer.replay("SESSION_ID")`` does the same inside an async test.
    Session ids may be prefixes. ``target=`` replays against another URL;
    ``maps=`` replaces the route maps (``maps=()``: the recorded routes as they are).
    """

    def __init__(self, settings: WsShadowSettings) -> None:
        self.settings = settings

    def sessions(self, route: str | None = None) -> list[str]:
        """Recorded session ids, in recorded order (only ``route``'s when given)."""
        with CaptureStore.open(self.settings.capture, readonly=True) as store:
            return [s.id for s in store.summaries() if route is None or s.route == route]

    def recorded(self, session_id: str) -> Session:
        """The recorded session ``session_id`` (an id or a unique prefix)."""
        with CaptureStore.open(self.settings.capture, readonly=True) as store:
            return store.find_session(session_id)

    async def replay(
        self,
        session_id: str,
        *,
        target: str | None = None,
        maps: Sequence[str] | None = None,
    ) -> ReplayCheck:
        """Replay one session and check it against its recording (async); a session of a
        scenario replays with the other sessions of its scenario (unless no links)."""
        settings = self.settings.with_target(target, maps)
        recorded = self.recorded(session_id)
        options = settings.options
        if options.links:
            with CaptureStore.open(settings.capture, readonly=True) as store:
                graph = capture_links(store, options.event_keys, options.link_rules)
                scenario = graph.scenario_of.get(recorded.id)
                if scenario is not None:
                    members = set(graph.scenarios[scenario])
                    heads = [h for h in store.heads() if h.id in members]
                    heads.sort(key=lambda h: h.started_at)
                    checks = await scenario_checks(store, heads, graph, settings)
                    return checks[recorded.id]
        return await replay_check(recorded, settings)

    def __call__(
        self,
        session_id: str,
        *,
        target: str | None = None,
        maps: Sequence[str] | None = None,
    ) -> ReplayCheck:
        """Replay one session and check it against its recording (blocking)."""
        result: ReplayCheck = _run_async(self.replay(session_id, target=target, maps=maps))
        return result


def replayer_for(config: pytest.Config) -> WsShadowReplayer | None:
    """The fixture's replayer, or None when pytest runs without ``--wsshadow-capture``."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return WsShadowReplayer(plugin.settings) if isinstance(plugin, _Collection) else None
