"""One scenario's replay, as it goes: what its sessions have done, and each session's waits.

``engine/scenarios.py`` plans a scenario from its recorded sessions and schedules it;
this module holds what its sessions share while they replay (``ScenarioBoard``), each
session's waits on the others (``SessionGates``) and the pacer that honours them
(``ScenarioPacer``), the carry-over tracker that moves values across sessions
(``ScenarioTracker``), and the names of the links a session went without
(``ScenarioPacer.unmet_links``). No socket here: the pacer is a state machine, the
board wakes waiting sessions through the callbacks it is given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsshadow.replay.engine.carryover import (
    CarryPlan,
    CarryTracker,
    event_of,
    message_doc,
    value_at,
)
from wsshadow.replay.engine.links import Link
from wsshadow.replay.engine.pacing import Pace, Pacer, PacingPlan, PacingSettings

__all__ = [
    "Gate",
    "ScenarioBoard",
    "ScenarioPacer",
    "ScenarioTracker",
    "SessionGates",
    "SessionHooks",
    "ValueGate",
    "describe_payload",
]

_FAR = 3600.0  # "no deadline": a gate opening wakes the session
_DONE = 1 << 60
_MAX_UNMET = 5  # distinct unmet links named per session
_SNIPPET = 60
_TEXT_KEYS = ("message", "error", "reason", "detail", "msg", "text")

Gate = tuple[int, int]
"""``(slot, count)``: the scenario's session ``slot`` has connected and sent ``count``
client data messages (or has ended)."""
ValueGate = tuple[int, Any]
"""``(slot, value)``: the recorded ``value`` issued to session ``slot`` has arrived in its
replay (or that session has ended)."""


class ScenarioBoard:
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
        # To name a link that was never satisfied (the session's cause says which):
        self.ids: list[str] = [""] * size
        self.caused_by: dict[Gate, Link] = {}  # (slot, server index) -> the event link into it
        self.issued_at: dict[ValueGate, int] = {}  # (slot, value) -> recorded server index
        self.keep: list[frozenset[int]] = [frozenset()] * size  # server indexes to remember
        self.got: dict[Gate, str] = {}  # (slot, server index) -> what its replay got there

    def all_sent(self, gates: tuple[Gate, ...]) -> bool:
        sent = self.sent
        return all(sent[a] >= n for a, n in gates)

    def has_values(self, gates: tuple[ValueGate, ...], received: tuple[Gate, ...] = ()) -> bool:
        ended = self.ended
        got = self.received
        return all(v in self.values or ended[a] for a, v in gates) and all(
            got[a] >= n or ended[a] for a, n in received
        )

    def arrived(self, slot: int, payload: str | bytes, event_keys: tuple[str, ...]) -> None:
        index = self.received[slot]
        if index in self.keep[slot]:
            self.got[slot, index] = describe_payload(payload, event_keys)
        self.received[slot] = index + 1
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

    def unmet_value(self, a: int, value: Any) -> str:
        """A value link whose value has not arrived, in words."""
        sid = self.ids[a]
        index = self.issued_at.get((a, value))
        where = f" from server message {index}" if index is not None else ""
        got = self.got.get((a, index)) if index is not None else None
        if got is not None:
            why = f"{sid} got {got} in its place"
        else:
            n = self.received[a]
            why = f"{sid} {'ended after' if self.ended[a] else 'had received'} {_messages(n)}"
        return f"waited for value {value!r}{where} of session {sid} (never arrived: {why})"

    def unmet_event(self, slot: int, first: int, upto: int) -> str | None:
        """The first event link into ``slot``'s server messages ``first..upto-1``, in words."""
        for k in range(first, upto):
            link = self.caused_by.get((slot, k))
            if link is not None:
                event = f"event {link.value!r}" if link.value is not None else "an event"
                return (
                    f"{event} caused by client message {link.source_index} of session {link.source}"
                )
        return None

    def unmet_received(self, a: int, n: int) -> str | None:
        """A wait for linked session ``a`` to have received ``n`` server messages, in words,
        when what it waited for there was caused by another session (else None)."""
        sid, got = self.ids[a], self.received[a]
        what = self.unmet_event(a, got, n)
        if what is None:
            return None
        return f"waited for session {sid} to receive {what} (it had received {_messages(got)})"

    async def until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds (checked after every change)."""
        while not ready():
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await self._changed


@dataclass(frozen=True)
class SessionGates:
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
        board: ScenarioBoard,
        slot: int,
        gates: SessionGates,
    ) -> None:
        super().__init__(plan, settings, start)
        self.board = board
        self.slot = slot
        self.gates = gates
        self._opened = -1
        self.unmet: dict[str, int] = {}  # the links never satisfied, in words, and how often
        board.set_sent(slot, 0)

    def unmet_links(self) -> tuple[str, ...]:
        return tuple(f"{d} (x{n})" if n > 1 else d for d, n in self.unmet.items())

    def _note(self, description: str) -> None:
        if description in self.unmet or len(self.unmet) < _MAX_UNMET:
            self.unmet[description] = self.unmet.get(description, 0) + 1

    def _note_unmet(self, i: int, step: Any, timed_out: bool) -> None:
        """Name what step ``i`` goes without: values that never came from the other
        sessions and (when its wait timed out) the events and answers it waited for."""
        g, board = self.gates, self.board
        values = g.values[i] if i < len(g.values) else ()
        for a, v in values:
            if v not in board.values:
                self._note(board.unmet_value(a, v))
        if not timed_out:
            return
        if self.server_count < step.after_server:
            what = board.unmet_event(self.slot, self.server_count, step.after_server)
            if what is not None:
                self._note(f"causal wait for {what} timed out")
        if i < len(g.received):
            got = board.received
            for a, n in g.received[i]:
                if got[a] < n and not board.ended[a]:
                    unmet = board.unmet_received(a, n)
                    if unmet is not None:
                        self._note(unmet)

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
                    self._note_unmet(i, step, True)
                    # Counted like an in-session timeout too (the session's cause says so).
                    waited = now - self.last_send - step.gap
                    self._timed_out(step, min(self.server_count, step.after_server), waited)
                elif i < len(self.gates.values) and self.gates.values[i]:
                    self._note_unmet(i, step, False)  # a value whose source ended without it
            elif s.pace is Pace.RECORDED:
                due = self.start + step.t / s.speed
                if now < due or (not values_ok and now < due + s.causal_timeout):
                    break
                self._note_unmet(i, step, False)
            elif not values_ok and now < self.last_send + s.causal_timeout:
                break
            else:
                self._note_unmet(i, step, False)
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


class ScenarioTracker(CarryTracker):
    """Carry-over inside the session, plus values crossing to and from other sessions."""

    def __init__(
        self,
        inner: CarryTracker | None,
        cross: CarryTracker | None,
        sources: dict[tuple[str | None, int], tuple[tuple[tuple[Any, ...], Any], ...]],
        board: ScenarioBoard,
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
        self.board.arrived(self.slot, payload, self.event_keys)
        if not self.sources or not isinstance(payload, str):
            return
        doc = message_doc(payload)
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

    def __init__(
        self, board: ScenarioBoard, slot: int, gates: SessionGates, tracker: ScenarioTracker
    ) -> None:
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


def _messages(n: int) -> str:
    return f"{n} server message" + ("" if n == 1 else "s")


def describe_payload(payload: str | bytes, event_keys: tuple[str, ...]) -> str:
    """What a server message was, in a few words: ``error "no such game"``, ``created``."""
    if isinstance(payload, bytes):
        return f"a binary message ({len(payload)} bytes)"
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        doc = None
    if doc is None:
        text = " ".join(payload.split())
        return '"' + (text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…") + '"'
    event = event_of(doc, event_keys)
    said = None
    if isinstance(doc, dict):
        said = next((doc[k] for k in _TEXT_KEYS if isinstance(doc.get(k), str) and doc[k]), None)
    if said is not None:
        said = '"' + (said if len(said) <= _SNIPPET else said[: _SNIPPET - 1] + "…") + '"'
    return " ".join(x for x in (event, said) if x) or "a message without an event"
