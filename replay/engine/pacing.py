"""Replay pacing: when to send each recorded client message, and when to close.

A pure state machine, in the style of the websockets protocol core: the
engine feeds it what happened (``server_message_arrived``,
``server_closed``, ``time_passed``) and asks it what to do now
(``what_to_send``) and when to ask again (``next_deadline``). Times are
plain floats from whatever monotonic clock the caller uses; nothing here
reads a clock, sleeps or touches a socket.

Policies:

- ``causal`` (default): a client message goes once the target has sent as
  many server data messages as the recording had before it, or once the
  recorded gap since the previous client message plus ``causal_timeout``
  has passed, whichever comes first.
- ``recorded``: each client message at its recorded time divided by ``speed``.
- ``asap``: every client message at once.

The end of a session follows the recording: when the client closed it (or
nobody did), wait until the target has sent as many server data messages as
recorded or has been idle for ``idle_timeout``, then close with the recorded
code; when the server closed it, wait up to ``close_timeout`` for the
target to close, then close.

Both waits are bounded from the end of the script (the moment the last
client message went), whatever the target keeps sending: at most twice the
recording's own tail (its close time minus its last client message) plus
the timeout. A target that sends a message every second forever no longer
holds a session open forever (``end_bound``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from wsshadow.replay.capture.model import Close, Closer, Direction, Message, Opcode, Session

__all__ = [
    "Action",
    "ClientStep",
    "CloseSession",
    "Pace",
    "Pacer",
    "PacingPlan",
    "PacingSettings",
    "flood_limit",
    "plan_frames",
    "plan_session",
]

# Close codes an endpoint may not send in a close frame (RFC 6455 7.4.1).
_UNSENDABLE_CODES = frozenset({1005, 1006, 1015})


class Pace(StrEnum):
    """How replayed client messages are timed."""

    CAUSAL = "causal"
    RECORDED = "recorded"
    ASAP = "asap"


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """The pacing policy and its timeouts, in seconds."""

    pace: Pace = Pace.CAUSAL
    speed: float = 1.0
    causal_timeout: float = 2.0
    idle_timeout: float = 1.0
    close_timeout: float = 5.0

    max_server_messages: int | None = None
    """Past this many server data messages a session is closed as ``flooded``
    (None: ``flood_limit`` of the recorded count)."""

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        for name in ("causal_timeout", "idle_timeout", "close_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


class ClientStep(NamedTuple):
    """One recorded client data message and what preceded it in the recording.

    ``number`` is its position among the client data messages; ``seq``, ``t``
    and ``payload`` are the recorded message's; ``after_server`` how many
    server data messages the recording had before it; ``gap`` the recorded
    seconds since the previous client data message (or since open). A
    named tuple: a plan makes one per client message, in one C call each.
    """

    number: int
    seq: int
    t: float
    payload: str | bytes
    after_server: int
    gap: float

    @property
    def message(self) -> Message:
        """The recorded client message."""
        opcode = Opcode.TEXT if isinstance(self.payload, str) else Opcode.BINARY
        return Message(self.seq, self.t, Direction.CLIENT, opcode, self.payload)


@dataclass(frozen=True, slots=True)
class PacingPlan:
    """What a recorded session asks replay to do, independent of any target.

    ``server_total`` is the number of server data messages recorded;
    ``closed_by`` who ended the recording (None when it was cut off);
    ``close_code``/``close_reason`` what to close with; ``close_t`` when.
    """

    steps: tuple[ClientStep, ...]
    server_total: int
    closed_by: Closer | None
    close_code: int
    close_reason: str
    close_t: float


_new_step = tuple.__new__

FLOOD_FACTOR = 10
FLOOD_MINIMUM = 10_000


def flood_limit(recorded_server_messages: int) -> int:
    """How many server data messages a replayed session takes before it counts as
    flooded: ten times the recording's, and at least 10,000."""
    return max(FLOOD_FACTOR * recorded_server_messages, FLOOD_MINIMUM)


Frames = Iterable[tuple[int, float, str, str, str | bytes]]
"""Recorded frames as ``(seq, t, direction, opcode, payload)``, direction and
opcode as their values (``Direction``/``Opcode`` members are equal to them)."""


def plan_session(session: Session) -> PacingPlan:
    """The pacing plan of a recorded session (its client data messages, counted)."""
    frames = ((m.seq, m.t, m.direction, m.opcode, m.payload) for m in session.messages)
    return plan_frames(frames, session.close, accepted=session.handshake.accepted)


def plan_frames(frames: Frames, close: Close | None, *, accepted: bool = True) -> PacingPlan:
    """The pacing plan of a recorded session given as frames (see ``Frames``).

    ``close`` is how the recording ended; ``accepted`` False when the
    recorded handshake was refused.
    """
    steps: list[ClientStep] = []
    append = steps.append
    new, step = _new_step, ClientStep
    server_seen = client_seen = 0
    last_client_t = last_t = 0.0
    for seq, t, direction, opcode, payload in frames:
        last_t = t
        if opcode != "text" and opcode != "binary":
            continue
        if direction == "server":
            server_seen += 1
            continue
        gap = t - last_client_t
        append(new(step, (client_seen, seq, t, payload, server_seen, gap if gap > 0.0 else 0.0)))
        client_seen += 1
        last_client_t = t
    code = 1000
    if close is not None and close.code is not None and close.code not in _UNSENDABLE_CODES:
        code = close.code
    close_t = close.t if close is not None and close.t is not None else last_t
    closed_by = close.by if close is not None else None
    if not accepted:
        # The recording was refused: against a target that accepts, just close again.
        closed_by = None
    return PacingPlan(
        steps=tuple(steps),
        server_total=server_seen,
        closed_by=closed_by,
        close_code=code,
        close_reason=close.reason if close is not None and close.by is Closer.CLIENT else "",
        close_t=close_t,
    )


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Action: close the connection now with ``code`` and ``reason``.

    ``timed_out`` is True when the recording ended with the server closing
    and the target did not close within ``close_timeout``.
    """

    code: int
    reason: str = ""
    timed_out: bool = False


Action = ClientStep | CloseSession
"""What ``what_to_send`` hands out: a client step to send now, or a close."""


class Pacer:
    """The pacing state machine for one replayed session.

    Create it when the connection opens (``start`` is that time), then loop:
    act on ``what_to_send(now)``, wait for a server message or
    ``next_deadline()``, report what happened. ``finished`` turns True after
    a ``CloseSession`` action or ``server_closed``.

    Under causal pacing, a client message sent only because the wait for
    server messages timed out is counted: ``timeouts``, ``waited`` (seconds
    spent waiting in vain past the recorded gap) and ``awaited`` (the
    indexes of the recorded server messages that had not come, at most
    ``MAX_AWAITED``).
    """

    MAX_AWAITED = 20

    def __init__(self, plan: PacingPlan, settings: PacingSettings, start: float) -> None:
        self.plan = plan
        self.settings = settings
        self.start = start
        self.next_step = 0
        self.server_count = 0
        self.last_send = start
        self.last_activity = start
        self.finished = False
        self.server_closed_at: float | None = None
        # Read on every message: kept flat so the hot path does no attribute chains.
        self._steps = plan.steps
        self._total = len(plan.steps)
        self._causal = settings.pace is Pace.CAUSAL
        self._causal_timeout = settings.causal_timeout
        self.timeouts = 0
        self.waited = 0.0
        self.awaited: list[int] = []
        self.unanswered = 0
        """Recorded server messages awaited in vain (each counted once)."""
        self._awaited_upto = 0
        # The end-of-session bound (see end_bound): the recording's tail after its last
        # client message, and when the script ended (set once every step went).
        last_t = plan.steps[-1].t if plan.steps else 0.0
        tail = max(0.0, plan.close_t - last_t)
        if settings.pace is Pace.RECORDED:
            tail /= settings.speed
        wait = settings.close_timeout if plan.closed_by is Closer.SERVER else settings.idle_timeout
        self._after_script = 2 * tail + wait
        self.script_end: float | None = None if plan.steps else start

    # ---- events -------------------------------------------------------------

    def server_message_arrived(self, now: float) -> None:
        """The target sent a data message at ``now``."""
        self.server_count += 1
        if now > self.last_activity:
            self.last_activity = now

    def server_closed(self, now: float) -> None:
        """The target closed the connection (or it was lost): the session is over."""
        self.server_closed_at = now
        self.finished = True

    def time_passed(self, now: float) -> None:
        """Time moved on with nothing received; kept for symmetry, state is time-free."""
        del now

    # ---- questions ------------------------------------------------------------

    @property
    def sent_all(self) -> bool:
        """True once every client message has been handed out."""
        return self.next_step >= len(self.plan.steps)

    def what_to_send(self, now: float) -> tuple[Action, ...]:
        """The actions due at ``now``; handed-out sends count as sent at ``now``."""
        if self.finished:
            return ()
        steps = self._steps
        total = self._total
        first = i = self.next_step
        if i < total:
            if self._causal:
                # _due for causal pacing, inlined: this runs once per server message.
                timeout = self._causal_timeout
                count = self.server_count
                last_send = self.last_send
                while i < total:
                    step = steps[i]
                    if step.after_server > count:
                        if now < last_send + step.gap + timeout:
                            break
                        self._timed_out(step, count, now - last_send - step.gap)
                    i += 1
                    last_send = now
            else:
                while i < total and self._due(steps[i], now):
                    i += 1
            if i == first:
                return ()
            self.next_step = i
            self.last_send = now
            if now > self.last_activity:
                self.last_activity = now
            if i < total:
                return steps[first:i]  # a slice of the plan's tuple: no list, no copy per step
            self.script_end = now
        close = self._close_due(now)
        if close is None:
            return steps[first:i]
        self.finished = True
        return (*steps[first:i], close)

    def next_deadline(self) -> float | None:
        """When ``what_to_send`` may next have something without a server message.

        None once finished. A deadline already past means: ask again now.
        """
        if self.finished:
            return None
        if self._causal and self.next_step < self._total:
            step = self._steps[self.next_step]
            return self.last_send + step.gap + self._causal_timeout
        s = self.settings
        if not self.sent_all:
            step = self.plan.steps[self.next_step]
            if s.pace is Pace.ASAP:
                return self.last_send
            if s.pace is Pace.RECORDED:
                return self.start + step.t / s.speed
            return self.last_send + step.gap + s.causal_timeout
        bound = self.end_bound
        if self.plan.closed_by is Closer.SERVER:
            return min(self.last_activity + s.close_timeout, bound)
        quiet_at = self.last_activity + s.idle_timeout
        if self.server_count >= self.plan.server_total:
            quiet_at = self.last_send
        if s.pace is Pace.RECORDED:
            quiet_at = max(quiet_at, self.start + self.plan.close_t / s.speed)
        return min(quiet_at, bound)

    @property
    def end_bound(self) -> float:
        """The latest a session waits after its script: the end of the script plus
        twice the recording's tail plus ``close_timeout`` (the recording ended with
        the server closing) or ``idle_timeout``, however busy the target is."""
        end = self.script_end if self.script_end is not None else self.last_send
        return end + self._after_script

    def unmet_links(self) -> tuple[str, ...]:
        """Links to other sessions this session went without, in words (scenarios only)."""
        return ()

    # ---- rules ------------------------------------------------------------------

    def _timed_out(self, step: ClientStep, count: int, waited: float) -> None:
        self.timeouts += 1
        self.waited += max(0.0, waited)
        self.unanswered += max(0, step.after_server - max(count, self._awaited_upto))
        self._awaited_upto = max(self._awaited_upto, step.after_server)
        room = self.MAX_AWAITED - len(self.awaited)
        if room > 0:
            missing = [i for i in range(count, step.after_server) if i not in self.awaited]
            self.awaited.extend(missing[:room])

    def _due(self, step: ClientStep, now: float) -> bool:
        s = self.settings
        if s.pace is Pace.ASAP:
            return True
        if s.pace is Pace.RECORDED:
            return now >= self.start + step.t / s.speed
        if self.server_count >= step.after_server:
            return True
        return now >= self.last_send + step.gap + s.causal_timeout

    def _close_due(self, now: float) -> CloseSession | None:
        s = self.settings
        plan = self.plan
        bounded = now >= self.end_bound
        if plan.closed_by is Closer.SERVER:
            if now >= self.last_activity + s.close_timeout or bounded:
                return CloseSession(1000, "", timed_out=True)
            return None
        quiet = self.server_count >= plan.server_total or now >= self.last_activity + s.idle_timeout
        if bounded:
            return CloseSession(plan.close_code, plan.close_reason)
        if not quiet:
            return None
        if s.pace is Pace.RECORDED and now < self.start + plan.close_t / s.speed:
            return None
        return CloseSession(plan.close_code, plan.close_reason)
