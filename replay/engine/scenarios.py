"""Scenarios: linked recorded sessions replayed together.

``engine/links.py`` finds which recorded sessions depend on each other (a
join code issued to one and typed by another, a move broadcast to the
others); this module replays each group (a scenario) as one unit:

- sessions start in recorded order, each once the sessions linked to it
  have connected and sent what they had sent by its recorded start (under
  ``--pace recorded`` also not before its recorded offset; under causal
  pacing the offsets are compressed to those conditions);
- a client message waits, besides its own session's causal condition, until
  every linked session has sent the client messages recorded before it
  (``sent`` gates: never timed out, they point only back in recorded time,
  and a session that ends releases them), and until the values it uses
  from other sessions have arrived there (``value`` gates: timed out like
  the causal wait, counted from when the ``sent`` gates opened);
- a session's end waits likewise for what its linked sessions sent before
  its recorded close, so a spectator does not hang up before the last move;
- values flow as the replay produces them: B sends the join code the
  replayed A actually received.

Sessions in no scenario replay exactly as before, through the same code.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from wsshadow.replay.capture.store import CaptureStore, FrameColumns, SessionHead
from wsshadow.replay.engine.carryover import (
    CarryPlan,
    CarryRule,
    CarryTracker,
    event_of,
    leaves,
    value_at,
)
from wsshadow.replay.engine.links import LinkGraph, discover_links, scenario_key
from wsshadow.replay.engine.pacing import Pace, Pacer, PacingPlan, PacingSettings
from wsshadow.replay.engine.run import ReplayOptions, in_shard, select_sessions
from wsshadow.replay.errors import CaptureError

__all__ = [
    "ScenarioSchedule",
    "SessionHooks",
    "capture_links",
    "scenario_notes",
    "select_with_scenarios",
    "with_scenarios",
]

_MAX_NEIGHBOURS = 64  # linked sessions one session waits on (a big room: the nearest ones)
_FAR = 3600.0  # "no deadline": a gate opening wakes the session
_DONE = 1 << 60

Gate = tuple[int, int]
"""``(slot, count)``: the scenario's session ``slot`` has connected and sent ``count``
client data messages (or has ended)."""
ValueGate = tuple[int, Any]
"""``(slot, value)``: the recorded ``value`` issued to session ``slot`` has arrived in its
replay (or that session has ended)."""


_known: weakref.WeakKeyDictionary[CaptureStore, tuple[Any, LinkGraph]] = weakref.WeakKeyDictionary()


def capture_links(
    store: CaptureStore, event_keys: tuple[str, ...], rules: tuple[CarryRule, ...] = ()
) -> LinkGraph:
    """Discover the links between a capture's recorded sessions (reads every data frame once).

    Kept per open store while its recorded sessions stay the same: ``shadow``'s
    baseline, candidate and noise runs share one discovery.
    """
    key = (event_keys, rules, store.count_sessions())
    known = _known.get(store)
    if known is not None and known[0] == key:
        return known[1]
    graph = discover_links(store.data_frames_by_session(), event_keys=event_keys, rules=rules)
    _known[store] = (key, graph)
    return graph


def scenario_notes(store: CaptureStore, options: ReplayOptions) -> list[str]:
    """One line per ``--session`` whose scenario brings other sessions into the run."""
    if not options.links or not options.session_ids:
        return []
    graph = capture_links(store, options.event_keys, options.link_rules)
    notes = []
    for prefix in options.session_ids:
        sid = store.find_session(prefix).id
        scenario = graph.scenario_of.get(sid)
        if scenario is not None:
            size = len(graph.scenarios[scenario])
            notes.append(
                f"session {sid} is in scenario {scenario}: its {size} sessions replay together "
                "(--no-links: alone)"
            )
    return notes


def with_scenarios(report: dict[str, Any], graph: LinkGraph) -> dict[str, Any]:
    """The report with each ``session_details`` entry's scenario id (None: in none)."""
    for detail in report.get("session_details") or []:
        if isinstance(detail, dict) and "session" in detail:
            detail["scenario"] = graph.scenario_of.get(detail["session"])
    return report


def select_with_scenarios(
    store: CaptureStore, options: ReplayOptions
) -> tuple[list[SessionHead], LinkGraph | None]:
    """``select_sessions``, scenario-aware: ``--session`` brings its whole scenario and
    ``--shard`` hashes scenarios, never splitting one. The graph is None with ``links`` off
    or when no session is linked (then the selection is exactly ``select_sessions``'s).
    """
    if not options.links:
        return select_sessions(store, options), None
    graph = capture_links(store, options.event_keys, options.link_rules)
    if not graph.scenarios:
        return select_sessions(store, options), None
    narrowed = options
    if options.session_ids:
        whole: set[str] = set()
        for prefix in options.session_ids:
            sid = store.find_session(prefix).id
            whole.add(sid)
            scenario = graph.scenario_of.get(sid)
            if scenario is not None:
                whole.update(graph.scenarios[scenario])
        narrowed = replace(narrowed, session_ids=tuple(sorted(whole)))
    if options.shard is not None:
        narrowed = replace(narrowed, shard=None)
    heads = select_sessions(store, narrowed)
    if options.shard is not None:
        heads = [h for h in heads if in_shard(scenario_key(h.id, graph), options.shard)]
    return heads, graph


# ---- the shared state of one scenario's replay --------------------------------------


class _Board:
    """What the replayed sessions of one scenario have done so far, and who waits on whom."""

    def __init__(self, size: int, watchers: list[set[int]]) -> None:
        self.sent = [-1] * size  # -1: not connected yet
        self.received = [0] * size
        self.ended = [False] * size
        self.values: dict[Any, Any] = {}  # recorded value -> the value its replay received
        self.watchers = watchers  # slot -> slots with a gate on it
        self.wakers: list[Callable[[], None] | None] = [None] * size
        self.timeouts = 0  # client messages sent by a timed-out wait
        self._changed: asyncio.Future[None] | None = None

    def all_sent(self, gates: tuple[Gate, ...]) -> bool:
        sent = self.sent
        return all(sent[a] >= n for a, n in gates)

    def has_values(self, gates: tuple[ValueGate, ...], received: tuple[Gate, ...] = ()) -> bool:
        ended = self.ended
        got = self.received
        return all(v in self.values or ended[a] for a, v in gates) and all(
            got[a] >= n or ended[a] for a, n in received
        )

    def arrived(self, slot: int) -> None:
        self.received[slot] += 1
        if self.watchers[slot]:
            self._notify(slot)

    def set_sent(self, slot: int, count: int) -> None:
        if count > self.sent[slot]:
            self.sent[slot] = count
            self._notify(slot)

    def value(self, slot: int, old: Any, new: Any) -> None:
        if old not in self.values:
            self.values[old] = new
            self._notify(slot)

    def end(self, slot: int) -> None:
        self.sent[slot] = _DONE
        self.ended[slot] = True
        self.wakers[slot] = None
        self._notify(slot)

    def _notify(self, slot: int) -> None:
        for w in self.watchers[slot]:
            wake = self.wakers[w]
            if wake is not None:
                wake()
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds (checked after every change)."""
        while not ready():
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await self._changed


@dataclass(frozen=True)
class _Gates:
    """One session's waits on the other sessions of its scenario."""

    start: tuple[Gate, ...]
    steps: tuple[tuple[Gate, ...], ...]
    values: tuple[tuple[ValueGate, ...], ...]
    received: tuple[tuple[Gate, ...], ...]
    end: tuple[Gate, ...]
    offset: float  # recorded seconds after the scenario's first session


class ScenarioPacer(Pacer):
    """Causal (or recorded, or asap) pacing plus the scenario's gates (see the module doc)."""

    def __init__(
        self,
        plan: PacingPlan,
        settings: PacingSettings,
        start: float,
        board: _Board,
        slot: int,
        gates: _Gates,
    ) -> None:
        super().__init__(plan, settings, start)
        self.board = board
        self.slot = slot
        self.gates = gates
        self._opened = -1
        board.set_sent(slot, 0)

    def _hard(self, i: int) -> tuple[Gate, ...]:
        if i < self._total:
            return self.gates.steps[i] if i < len(self.gates.steps) else ()
        return self.gates.end

    def _soft_ok(self, i: int) -> bool:
        g = self.gates
        if i >= len(g.values):
            return True
        return self.board.has_values(g.values[i], g.received[i])

    def _open(self, i: int, now: float) -> bool:
        if not self.board.all_sent(self._hard(i)):
            return False
        if self._opened != i:
            # Waits count from when what this message depends on happened.
            self._opened = i
            if i < self._total:
                self.last_send = max(self.last_send, now)
            else:
                # The end-of-session bound (pacing's end_bound) counts from here too:
                # a spectator's script ends early, its linked sessions' much later.
                self.last_activity = max(self.last_activity, now)
                self.script_end = max(self.script_end or now, now)
        return True

    def what_to_send(self, now: float) -> tuple[Any, ...]:
        if self.finished:
            return ()
        self.board.set_sent(self.slot, self.next_step)  # what was handed out is sent by now
        s = self.settings
        out: list[Any] = []
        while self.next_step < self._total:
            i = self.next_step
            if not self._open(i, now):
                return tuple(out)
            step = self._steps[i]
            values_ok = self._soft_ok(i)
            if s.pace is Pace.CAUSAL:
                ready = values_ok and self.server_count >= step.after_server
                if not ready:
                    if now < self.last_send + step.gap + s.causal_timeout:
                        break
                    self.board.timeouts += 1
                    # Counted like an in-session timeout too (the session's cause says so).
                    waited = now - self.last_send - step.gap
                    self._timed_out(step, min(self.server_count, step.after_server), waited)
            elif s.pace is Pace.RECORDED:
                due = self.start + step.t / s.speed
                if now < due or (not values_ok and now < due + s.causal_timeout):
                    break
            elif not values_ok and now < self.last_send + s.causal_timeout:
                break
            out.append(step)
            self.next_step += 1
            self.last_send = now
            if now > self.last_activity:
                self.last_activity = now
        if self.next_step >= self._total and self._open(self._total, now):
            close = self._close_due(now)
            if close is not None:
                self.finished = True
                out.append(close)
        return tuple(out)

    def next_deadline(self) -> float | None:
        if self.finished:
            return None
        self.board.set_sent(self.slot, self.next_step)
        i = self.next_step
        if not self.board.all_sent(self._hard(i)):
            return self.last_send + _FAR  # the board wakes this session when the gate opens
        base = super().next_deadline()
        if i < self._total and base is not None and not self._soft_ok(i):
            s = self.settings
            if s.pace is Pace.RECORDED:
                return max(base, self.start + self._steps[i].t / s.speed + s.causal_timeout)
            if s.pace is Pace.ASAP:
                return self.last_send + s.causal_timeout
        return base


class _ScenarioTracker(CarryTracker):
    """Carry-over inside the session, plus values crossing to and from other sessions."""

    def __init__(
        self,
        inner: CarryTracker | None,
        cross: CarryTracker | None,
        sources: dict[tuple[str | None, int], tuple[tuple[tuple[Any, ...], Any], ...]],
        board: _Board,
        slot: int,
        event_keys: tuple[str, ...],
    ) -> None:
        super().__init__(CarryPlan(event_keys=event_keys))
        self.inner = inner
        self.cross = cross
        self.sources = sources
        self.board = board
        self.slot = slot
        self.event_keys = event_keys

    def observe_server(self, payload: str | bytes) -> None:
        if self.inner is not None:
            self.inner.observe_server(payload)
        self.board.arrived(self.slot)
        if not self.sources or not isinstance(payload, str):
            return
        try:
            doc = json.loads(payload)
        except (ValueError, RecursionError):
            doc = None
        event = event_of(doc, self.event_keys)
        occurrence = self._occurrences.get(event, 0)
        self._occurrences[event] = occurrence + 1
        for path, old in self.sources.get((event, occurrence), ()):
            found, new = value_at(doc, path)
            if found and type(new) is type(old):
                self.board.value(self.slot, old, new)

    def rewrite_client(self, index: int, payload: str | bytes) -> str | bytes:
        if self.inner is not None:
            payload = self.inner.rewrite_client(index, payload)
        if self.cross is not None:
            payload = self.cross.rewrite_client(index, payload)
        return payload


class SessionHooks:
    """What ``engine/run.py`` asks of a scenario for one of its sessions."""

    def __init__(self, board: _Board, slot: int, gates: _Gates, tracker: _ScenarioTracker) -> None:
        self.board = board
        self.slot = slot
        self.gates = gates
        self._tracker = tracker

    def pacer(
        self, plan: PacingPlan, settings: PacingSettings, start: float, wake: Callable[[], None]
    ) -> Pacer:
        """The session's pacer; ``wake`` interrupts its wait when a gate may have opened."""
        self.board.wakers[self.slot] = wake
        return ScenarioPacer(plan, settings, start, self.board, self.slot, self.gates)

    def tracker(self, inner: CarryTracker | None) -> CarryTracker:
        """The session's carry-over tracker, around its own (``inner``, None when idle)."""
        self._tracker.inner = inner
        return self._tracker


# ---- scheduling a run's scenarios ------------------------------------------------


Play = Callable[[int, SessionHead, SessionHooks | None], Awaitable[None]]
"""``engine/run.py``'s per-session coroutine: (selection index, head, hooks)."""


class ScenarioSchedule:
    """The scenarios of one run's selection: which selection indexes replay together."""

    def __init__(
        self,
        graph: LinkGraph,
        selected: list[SessionHead],
        store: CaptureStore,
        options: ReplayOptions,
    ) -> None:
        self.graph = graph
        self.selected = selected
        self.store = store
        self.options = options
        self.groups: dict[int, list[int]] = {}  # first index -> the indexes of its scenario
        self.followers: set[int] = set()
        by_scenario: dict[str, list[int]] = {}
        for index, head in enumerate(selected):
            scenario = graph.scenario_of.get(head.id)
            if scenario is not None:
                by_scenario.setdefault(scenario, []).append(index)
        for indexes in by_scenario.values():
            if len(indexes) > 1:
                self.groups[indexes[0]] = indexes
                self.followers.update(indexes[1:])
        self.timeouts = 0

    def follows(self, index: int) -> bool:
        """True for a session replayed with the first session of its scenario."""
        return index in self.followers

    def leads(self, index: int) -> bool:
        """True for the first selected session of a scenario of two or more."""
        return index in self.groups

    async def play(self, index: int, play: Play) -> None:
        """Replay the scenario led by selection ``index``, its sessions together."""
        indexes = self.groups[index]
        heads = [self.selected[i] for i in indexes]
        try:
            board, gates, trackers = self._plan(heads)
        except CaptureError:  # a damaged session: each fails (or replays) alone
            for i, head in zip(indexes, heads, strict=True):
                await play(i, head, None)
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def member(slot: int) -> None:
            try:
                g = gates[slot]
                await board.until(lambda: board.all_sent(g.start))
                if self.options.pace is Pace.RECORDED:
                    delay = t0 + g.offset / self.options.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                hooks = SessionHooks(board, slot, g, trackers[slot])
                await play(indexes[slot], heads[slot], hooks)
            finally:
                board.end(slot)

        tasks = [asyncio.create_task(member(slot)) for slot in range(len(indexes))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.timeouts += board.timeouts

    def _plan(
        self, heads: list[SessionHead]
    ) -> tuple[_Board, list[_Gates], list[_ScenarioTracker]]:
        """The gates and value routes of one scenario, from its recorded sessions."""
        ids = [h.id for h in heads]
        slot_of = {sid: n for n, sid in enumerate(ids)}
        loaded = self.store.get_session_frames(ids)
        starts = [s.started_at for s, _ in loaded]
        client_times: list[list[float]] = []
        server_times: list[list[float]] = []
        server_texts: list[list[str | bytes]] = []
        closes: list[float] = []
        for (session, frames), start in zip(loaded, starts, strict=True):
            client, server, server_t = _data_of(frames)
            client_times.append([start + t for t in client])
            server_times.append([start + t for t in server_t])
            server_texts.append(server)
            last = frames.t[-1] if len(frames) else 0.0
            close_t = session.close.t if session.close is not None else None
            closes.append(start + (close_t if close_t is not None else last))
        neighbours = self.graph.neighbours()
        near: list[list[int]] = []
        for sid in ids:
            linked = sorted(slot_of[o] for o in neighbours.get(sid, ()) if o in slot_of)
            near.append(linked[:_MAX_NEIGHBOURS])
        uses: list[dict[int, list[Any]]] = [{} for _ in ids]
        value_gates: list[dict[int, list[ValueGate]]] = [{} for _ in ids]
        sources: list[dict[tuple[str | None, int], list[tuple[tuple[Any, ...], Any]]]] = [
            {} for _ in ids
        ]
        for link in self.graph.links:
            if link.kind != "value" or link.source not in slot_of or link.target not in slot_of:
                continue
            a, b = slot_of[link.source], slot_of[link.target]
            location = _locate(server_texts[a], link.source_index, link.value, self.options)
            if location is None:
                continue
            place, path = location
            sources[a].setdefault(place, []).append((path, link.value))
            uses[b].setdefault(link.target_index, []).append(link.value)
            value_gates[b].setdefault(link.target_index, []).append((a, link.value))
        watchers: list[set[int]] = [set() for _ in ids]
        gates: list[_Gates] = []
        first = min(starts)
        for b in range(len(ids)):
            earlier = [a for a in range(len(ids)) if (starts[a], a) < (starts[b], b)]
            start_gates = tuple(
                (a, bisect_left(client_times[a], starts[b])) for a in earlier[-_MAX_NEIGHBOURS:]
            )
            steps = tuple(
                tuple((a, n) for a in near[b] if (n := bisect_left(client_times[a], t)) > 0)
                for t in client_times[b]
            )
            n_steps = len(client_times[b])
            values = tuple(tuple(value_gates[b].get(k, ())) for k in range(n_steps))
            # What the linked sessions had received by then: the server's answers to
            # them come first, as recorded (waited for like the causal condition).
            received = tuple(
                tuple((a, n) for a in near[b] if (n := bisect_left(server_times[a], t)) > 0)
                for t in client_times[b]
            )
            end = tuple((a, n) for a in near[b] if (n := bisect_left(client_times[a], closes[b])))
            gates.append(_Gates(start_gates, steps, values, received, end, starts[b] - first))
            for a, _ in (*start_gates, *end, *(g for s in (*steps, *received) for g in s)):
                watchers[a].add(b)
            for vs in values:
                for a, _ in vs:
                    watchers[a].add(b)
        board = _Board(len(ids), watchers)
        trackers = []
        keys = self.options.event_keys
        for b in range(len(ids)):
            cross = None
            if uses[b]:
                cross = CarryPlan(
                    uses={k: tuple(v) for k, v in uses[b].items()}, event_keys=keys
                ).tracker()
                cross.mapping = board.values
            frozen = {k: tuple(v) for k, v in sources[b].items()}
            trackers.append(_ScenarioTracker(None, cross, frozen, board, b, keys))
        return board, gates, trackers


def _data_of(frames: FrameColumns) -> tuple[list[float], list[str | bytes], list[float]]:
    """A recorded session's client data message times, server data message payloads
    and times."""
    client: list[float] = []
    server: list[str | bytes] = []
    server_t: list[float] = []
    for _, t, direction, opcode, payload in frames:
        if opcode != "text" and opcode != "binary":
            continue
        if direction == "server":
            server.append(payload)
            server_t.append(t)
        else:
            client.append(t)
    return client, server, server_t


def _locate(
    server: list[str | bytes], index: int, value: Any, options: ReplayOptions
) -> tuple[tuple[str | None, int], tuple[Any, ...]] | None:
    """Where a value sits in a recorded server message: ((event, occurrence), path)."""
    if index >= len(server) or not isinstance(server[index], str):
        return None
    docs = []
    for payload in server[: index + 1]:
        try:
            docs.append(json.loads(payload) if isinstance(payload, str) else None)
        except (ValueError, RecursionError):
            docs.append(None)
    event = event_of(docs[index], options.event_keys)
    occurrence = sum(1 for d in docs[:index] if event_of(d, options.event_keys) == event)
    path = next((p for p, v in leaves(docs[index]) if type(v) is type(value) and v == value), None)
    if path is None:
        return None
    return (event, occurrence), path
