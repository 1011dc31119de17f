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
What a scenario's sessions share while they replay, and the pacer that makes
each wait, are ``engine/scenario_pacing.py``; this module selects, plans and
schedules.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from wsshadow.replay.capture.model import Session
from wsshadow.replay.capture.store import CaptureStore, FrameColumns, SessionHead
from wsshadow.replay.engine.carryover import CarryPlan, CarryRule, event_of, leaves, message_doc
from wsshadow.replay.engine.credentials import Credentials, shared_identities
from wsshadow.replay.engine.links import LinkGraph, discover_links, scenario_key
from wsshadow.replay.engine.model import SessionOutcome
from wsshadow.replay.engine.pacing import Pace
from wsshadow.replay.engine.run import ReplayOptions, in_shard, select_sessions
from wsshadow.replay.engine.scenario_pacing import (
    ScenarioBoard,
    ScenarioPacer,
    ScenarioTracker,
    SessionGates,
    SessionHooks,
    ValueGate,
)
from wsshadow.replay.engine.session import _play
from wsshadow.replay.errors import CaptureError

__all__ = [
    "ScenarioPacer",
    "ScenarioSchedule",
    "SessionHooks",
    "capture_links",
    "replay_scenario",
    "scenario_notes",
    "select_with_scenarios",
    "with_scenarios",
]

_MAX_NEIGHBOURS = 64  # linked sessions one session waits on (a big room: the nearest ones)

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
    """One line per ``--session`` whose scenario brings other sessions into the run, and
    one when a scenario's several recorded users would all replay as one test user."""
    if not options.links:
        return []
    plain = any("#" not in key for key in options.credentials)
    if not options.session_ids and not plain:
        return []
    graph = capture_links(store, options.event_keys, options.link_rules)  # the run's, cached
    notes = []
    if graph.scenarios and plain:
        needed = store.credentials_needed()
        shared = []
        for key, members in graph.scenarios.items():
            names = {n for sid in members for n in needed.get(sid, ())}
            found = shared_identities(names, options.credentials)
            if found:
                shared.append((key, found))
        if shared:
            first, found = shared[0]
            more = f" (and {len(shared) - 1} more scenarios)" if len(shared) > 1 else ""
            notes.append(
                f"hint: scenario {first}{more} has several recorded users "
                f"({', '.join(n for names in found.values() for n in names)}) that one "
                f"credential fills, so they replay as one user (--credential "
                f"{next(iter(found))}#N=VALUE for each)"
            )
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


async def replay_scenario(
    store: CaptureStore,
    heads: list[SessionHead],
    graph: LinkGraph,
    options: ReplayOptions,
    *,
    run: str,
    credentials: Credentials,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, tuple[Session, SessionOutcome]]:
    """Replay recorded sessions together as the scenarios of ``graph`` they form (waits and
    values crossing sessions, as ``replay_capture`` does), storing nothing.

    ``heads`` in recorded order; sessions of no scenario among them replay alone, all at
    once. Returns each recorded session's replayed session (id ``RUN:ORIGIN``) and outcome,
    by recorded id. Never raises for target errors; ``store`` stays open meanwhile (the
    plan reads it) and raises CaptureError for a damaged session.
    """
    loaded = dict(zip([h.id for h in heads], store.get_session_frames([h.id for h in heads]),
                      strict=True))  # fmt: skip
    out: dict[str, tuple[Session, SessionOutcome]] = {}

    async def one(index: int, head: SessionHead, hooks: SessionHooks | None = None) -> None:
        recorded, frames = loaded[head.id]
        played, outcome = await _play(
            recorded, frames, options, run=run, credentials=credentials,
            ssl_context=ssl_context, hooks=hooks,
        )  # fmt: skip
        out[head.id] = (played.session(), outcome)

    schedule = ScenarioSchedule(graph, heads, store, options)
    units = [
        schedule.play(i, one) if schedule.leads(i) else one(i, head)
        for i, head in enumerate(heads)
        if not schedule.follows(i)
    ]
    await asyncio.gather(*units)
    return out


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
    ) -> tuple[ScenarioBoard, list[SessionGates], list[ScenarioTracker]]:
        """The gates and value routes of one scenario, from its recorded sessions."""
        ids = [h.id for h in heads]
        slot_of = {sid: n for n, sid in enumerate(ids)}
        loaded = self.store.get_session_frames(ids)
        starts = [s.started_at for s, _ in loaded]
        client_times: list[list[float]] = []
        server_times: list[list[float]] = []
        server_texts: list[list[str | bytes]] = []
        client_texts: list[list[str | bytes]] = []
        closes: list[float] = []
        for (session, frames), start in zip(loaded, starts, strict=True):
            client, client_text, server, server_t = _data_of(frames)
            client_times.append([start + t for t in client])
            client_texts.append(client_text)
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
            # The link names the value's first use; the client may send it again (a room's
            # code in every message to the room): those carry the replayed value too.
            needle = link.value if isinstance(link.value, str) else str(link.value)
            texts = client_texts[b]
            for k in range(link.target_index + 1, len(texts)):
                text = texts[k]
                if isinstance(text, str) and needle in text:
                    later = uses[b].setdefault(k, [])
                    if link.value not in later:
                        later.append(link.value)
        watchers: list[set[int]] = [set() for _ in ids]
        gates: list[SessionGates] = []
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
            gates.append(SessionGates(start_gates, steps, values, received, end, starts[b] - first))
            for a, _ in (*start_gates, *end, *(g for s in (*steps, *received) for g in s)):
                watchers[a].add(b)
            for vs in values:
                for a, _ in vs:
                    watchers[a].add(b)
        board = ScenarioBoard(len(ids), watchers)
        board.ids = ids
        keep: list[set[int]] = [set() for _ in ids]
        for link in self.graph.links:
            if link.source not in slot_of or link.target not in slot_of:
                continue
            a, b = slot_of[link.source], slot_of[link.target]
            if link.kind == "value":
                board.issued_at.setdefault((a, link.value), link.source_index)
                keep[a].add(link.source_index)
            else:
                board.caused_by.setdefault((b, link.target_index), link)
        board.keep = [frozenset(k) for k in keep]
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
            trackers.append(ScenarioTracker(None, cross, frozen, board, b, keys))
        return board, gates, trackers


def _data_of(
    frames: FrameColumns,
) -> tuple[list[float], list[str | bytes], list[str | bytes], list[float]]:
    """A recorded session's client data message times and payloads, server data message
    payloads and times."""
    client: list[float] = []
    client_text: list[str | bytes] = []
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
            client_text.append(payload)
    return client, client_text, server, server_t


def _locate(
    server: list[str | bytes], index: int, value: Any, options: ReplayOptions
) -> tuple[tuple[str | None, int], tuple[Any, ...]] | None:
    """Where a value sits in a recorded server message: ((event, occurrence), path)."""
    if index >= len(server) or not isinstance(server[index], str):
        return None
    docs = [message_doc(payload) for payload in server[: index + 1]]
    event = event_of(docs[index], options.event_keys)
    occurrence = sum(1 for d in docs[:index] if event_of(d, options.event_keys) == event)
    path = next((p for p, v in leaves(docs[index]) if type(v) is type(value) and v == value), None)
    if path is None:
        return None
    return (event, occurrence), path
