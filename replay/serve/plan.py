"""What the mock server decides, without I/O: which recorded session a client
gets, whether a client message matches, what to send next, and which of the
client's own values to carry into the served messages.

``SessionPool`` hands out recorded sessions by route and subprotocol (each
once, or to any number of clients with ``reuse``). A ``Conversation`` walks
one connection through its recorded session: ``sends()`` yields the server
messages due before the next client message (causal order), ``receive()``
checks a client message against the recorded one (``Matcher``: strict, key
or loose) and may switch to another candidate session whose recorded
client side fits better. Values the client generated where the recording had
others (a request id it chose) are substituted into later served messages.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wsshadow.replay.capture.model import Direction, Message, Opcode, Session
from wsshadow.replay.capture.redact import PLACEHOLDER_RE
from wsshadow.replay.config import DiffConfig, RouteDiffConfig
from wsshadow.replay.diff.dialects import Dialect, detect_dialect, get_dialect
from wsshadow.replay.diff.normalize import Normalizer
from wsshadow.replay.engine.carryover import CarryPlan, CarryTracker, plan_carry_over
from wsshadow.replay.report.common import compact

__all__ = [
    "Conversation",
    "MatchMode",
    "Matcher",
    "Mismatch",
    "OnMismatch",
    "Outcome",
    "Pace",
    "ServeOptions",
    "SessionPool",
    "due",
    "matcher_for",
    "render_payload",
    "reverse_carry_plan",
    "select_sessions",
]


class MatchMode(StrEnum):
    """How closely a client must repeat the recorded client side."""

    STRICT = "strict"
    KEY = "key"
    LOOSE = "loose"


class Pace(StrEnum):
    """When server messages go out: at the recorded gaps, or as soon as due."""

    RECORDED = "recorded"
    ASAP = "asap"


class OnMismatch(StrEnum):
    """What a mismatch does: close with 1008, drop the message, or accept it."""

    CLOSE = "close"
    SKIP = "skip"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """How ``serve`` plays a capture."""

    match: MatchMode = MatchMode.STRICT
    pace: Pace = Pace.ASAP
    speed: float = 1.0
    on_mismatch: OnMismatch = OnMismatch.CLOSE
    reuse: bool = False

    def settings(self) -> dict[str, Any]:
        """The options as JSON-ready values (stored with the run)."""
        return {
            "mode": "serve",
            "match": self.match.value,
            "pace": self.pace.value,
            "speed": self.speed,
            "on_mismatch": self.on_mismatch.value,
            "reuse": self.reuse,
        }


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A client message that did not match the recorded one."""

    route: str
    session: str
    index: int
    """Which client message (0-based) of the recorded session was expected."""
    expected: str
    received: str
    why: str

    def line(self) -> str:
        """One log line: where, why, expected and received."""
        return (
            f"mismatch on {self.route} (recorded session {self.session}), client message "
            f"{self.index + 1}: {self.why}; expected {self.expected}; received {self.received}"
        )

    def reason(self) -> str:
        """A close reason (at most 123 bytes) naming the mismatch."""
        text = f"wsshadow: client message {self.index + 1} {self.why}"
        return text.encode("utf-8")[:123].decode("utf-8", "ignore")


def render_payload(payload: str | bytes | None, limit: int = 200) -> str:
    """A payload on one line as the diff shows values: JSON compact, text quoted, bytes sized."""
    if payload is None:
        return "(nothing: the recorded client sent no more messages)"
    if isinstance(payload, bytes):
        return f"<{len(payload)} binary bytes>"
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        value = payload
    return compact(value, limit)


def due(anchor_real: float, anchor_rec: float, t: float, speed: float) -> float:
    """When (on the real clock) a server message recorded at ``t`` is due.

    The recorded gap since the previous message (a client message received,
    or a server message sent, at ``anchor_real``; recorded at ``anchor_rec``)
    or since the opening, divided by ``speed``; never before the anchor.
    """
    return anchor_real + max(0.0, t - anchor_rec) / max(speed, 1e-9)


def select_sessions(
    sessions: Iterable[Session], ids: Sequence[str] = (), routes: Sequence[str] = ()
) -> list[Session]:
    """Recorded sessions to serve: those whose id starts with one of ``ids`` (all
    without), on a route matching one of the ``routes`` globs (all without)."""
    out = []
    for s in sessions:
        if ids and not any(s.id.startswith(i) for i in ids):
            continue
        if routes and not any(fnmatch.fnmatchcase(s.route, g) for g in routes):
            continue
        out.append(s)
    return out


class SessionPool:
    """Recorded sessions by route; each handed out once unless ``reuse``."""

    def __init__(self, sessions: Iterable[Session], reuse: bool = False) -> None:
        self.reuse = reuse
        self._by_route: dict[str, list[Session]] = {}
        for s in sessions:
            self._by_route.setdefault(s.route, []).append(s)
        self._claimed: set[str] = set()

    @property
    def routes(self) -> list[str]:
        """The recorded routes, in order of first appearance."""
        return list(self._by_route)

    def recorded(self, route: str) -> bool:
        """True when the capture has a session on ``route``."""
        return route in self._by_route

    def candidates(self, route: str, offered: Sequence[str]) -> list[Session]:
        """Unclaimed sessions on ``route`` whose selected subprotocol the client offers,
        those offered exactly the same subprotocols first, then in recorded order."""
        found = [
            s
            for s in self._by_route.get(route, ())
            if (self.reuse or s.id not in self._claimed)
            and (s.handshake.subprotocol is None or s.handshake.subprotocol in offered)
        ]
        found.sort(key=lambda s: tuple(s.handshake.subprotocols) != tuple(offered))
        return found

    def claim(self, session_id: str) -> bool:
        """Take a session; False when another client already has it (never with reuse)."""
        if self.reuse:
            return True
        if session_id in self._claimed:
            return False
        self._claimed.add(session_id)
        return True

    def release(self, session_id: str) -> None:
        """Give a session back (the client turned out to match another one)."""
        self._claimed.discard(session_id)

    def remaining(self, route: str) -> int:
        """How many sessions of ``route`` are still unclaimed."""
        return sum(1 for s in self._by_route.get(route, ()) if s.id not in self._claimed)


class Matcher:
    """Compares a client message with the recorded one for one route."""

    def __init__(
        self, mode: MatchMode, config: RouteDiffConfig, dialect: Dialect | None = None
    ) -> None:
        self.mode = mode
        self.normalizer = Normalizer(config)
        self.dialect = dialect if dialect is not None and dialect.decodes else None

    def _events(self, m: Message) -> list[tuple[str, Any]]:
        norm = self.normalizer
        if self.dialect is not None:
            return [
                (ev.key, norm.ignore_rules(ev.key).apply(norm.mask_value(ev.value)))
                for ev in self.dialect.decode_message(Direction.CLIENT, m.payload)
            ]
        n = norm.message(m)
        if n is None:
            return []
        return [(n.key, norm.comparable(n))]

    def mismatch(self, expected: Message, received: Message) -> str | None:
        """Why ``received`` does not match ``expected`` (None when it does)."""
        if self.mode is MatchMode.LOOSE:
            return None
        if expected.opcode is not received.opcode:
            return f"is {received.opcode.value}, expected {expected.opcode.value}"
        want, got = self._events(expected), self._events(received)
        want_keys, got_keys = [k for k, _ in want], [k for k, _ in got]
        if want_keys != got_keys:
            return f"has event {' '.join(got_keys) or '(none)'}, expected {' '.join(want_keys)}"
        if self.mode is MatchMode.KEY:
            return None
        got = [(k, _redacted_like(w, g)) for (k, g), (_, w) in zip(got, want, strict=True)]
        if want != got:
            return "differs from the recorded one"
        return None


def _redacted_like(recorded: Any, live: Any) -> Any:
    """``live`` with the values the capture redacted (``${redacted:...}`` placeholders in
    ``recorded``) replaced by the same placeholders: a live client's secrets match."""
    if isinstance(recorded, str) and PLACEHOLDER_RE.fullmatch(recorded):
        return recorded if isinstance(live, str) else live
    if isinstance(recorded, dict) and isinstance(live, dict):
        return {k: _redacted_like(recorded[k], v) if k in recorded else v for k, v in live.items()}
    if isinstance(recorded, list) and isinstance(live, list) and len(recorded) == len(live):
        return [_redacted_like(r, v) for r, v in zip(recorded, live, strict=True)]
    return live


def matcher_for(mode: MatchMode, config: DiffConfig, session: Session) -> Matcher:
    """The matcher for a recorded session: its route's config and dialect (configured or
    detected from the recording, as the diff does)."""
    route_config = config.for_route(session.route)
    if route_config.dialect is not None:
        dialect: Dialect | None = get_dialect(route_config.dialect)
    else:
        dialect = detect_dialect(session)
    return Matcher(mode, route_config, dialect)


# ---- carry-over in reverse ---------------------------------------------------------


def _mirrored(session: Session) -> Session:
    """The session with client and server swapped, so that replay's carry-over planning
    (values one side issues and the other echoes later) reads it the other way round."""
    flip = {Direction.CLIENT: Direction.SERVER, Direction.SERVER: Direction.CLIENT}
    return session.with_messages(
        tuple(Message(m.seq, m.t, flip[m.direction], m.opcode, m.payload) for m in session.messages)
    )


def reverse_carry_plan(session: Session, event_keys: tuple[str, ...]) -> CarryPlan:
    """Values the recorded client generated that the recorded server echoed later
    (request ids, correlation ids, client-chosen names): replay's ``plan_carry_over``
    on the mirrored session. Its tracker observes the live client's messages and
    rewrites the served server messages (by server data message index)."""
    return plan_carry_over(_mirrored(session), event_keys=event_keys)


# ---- one connection -------------------------------------------------------------------


def _data(session: Session) -> tuple[Message, ...]:
    return tuple(m for m in session.messages if m.opcode in (Opcode.TEXT, Opcode.BINARY))


@dataclass(slots=True)
class Outcome:
    """What ``Conversation.receive`` decided for one client message."""

    accepted: bool
    mismatch: Mismatch | None = None
    switched_from: str | None = None


@dataclass(slots=True)
class Conversation:
    """One client connection walking through a recorded session's messages.

    ``candidates`` are the sessions it may still turn out to be (the lead first);
    ``matcher`` gives each its matcher. Server messages already served and
    client messages already received must be the same in a session it switches to.
    """

    candidates: list[Session]
    matcher: Callable[[Session], Matcher]
    on_mismatch: OnMismatch = OnMismatch.CLOSE
    position: int = 0
    received: list[Message] = field(default_factory=list)
    served: list[str | bytes] = field(default_factory=list)
    _scripts: dict[str, tuple[Message, ...]] = field(default_factory=dict)
    _tracker: CarryTracker | None = None

    @property
    def tracker(self) -> CarryTracker:
        """Reverse carry-over for the lead session: it has seen every client message so far."""
        if self._tracker is None:
            keys = self.matcher(self.lead).normalizer.config.event_keys
            self._tracker = reverse_carry_plan(self.lead, keys).tracker()
            for m in self.received:
                self._tracker.observe_server(m.payload)
        return self._tracker

    @property
    def lead(self) -> Session:
        """The recorded session being served."""
        return self.candidates[0]

    def script(self, session: Session | None = None) -> tuple[Message, ...]:
        """A session's data messages (text and binary), in recorded order."""
        s = session if session is not None else self.lead
        found = self._scripts.get(s.id)
        if found is None:
            found = self._scripts[s.id] = _data(s)
        return found

    @property
    def done(self) -> bool:
        """True when every recorded message has been served or received."""
        return self.position >= len(self.script())

    def sends(self) -> list[Message]:
        """The server messages due now (up to the next recorded client message), with
        the client's carried values substituted; marks them served."""
        script, out = self.script(), []
        while self.position < len(script) and script[self.position].direction is Direction.SERVER:
            m = script[self.position]
            payload = self.tracker.rewrite_client(len(self.served), m.payload)
            out.append(m if payload is m.payload else _with_payload(m, payload))
            self.served.append(m.payload)
            self.position += 1
        return out

    def expected(self) -> Message | None:
        """The recorded client message due next, or None past the last one."""
        script = self.script()
        return script[self.position] if self.position < len(script) else None

    def _fits(self, session: Session, message: Message) -> bool:
        """True when ``session`` has this connection's history as its prefix and
        ``message`` as its next client message."""
        script, matcher = self.script(session), self.matcher(session)
        clients = iter(self.received)
        served = iter(self.served)
        for m in script[: self.position]:
            if m.direction is Direction.SERVER:
                if m.payload != next(served, None):
                    return False
            else:
                got = next(clients, None)
                if got is None or matcher.mismatch(m, got) is not None:
                    return False
        if self.position >= len(script):
            return False
        nxt = script[self.position]
        return nxt.direction is Direction.CLIENT and matcher.mismatch(nxt, message) is None

    def receive(self, message: Message, claim: Callable[[Session], bool] | None = None) -> Outcome:
        """Check a client message against the recorded one; switch to another candidate
        session when only it fits (``claim(session) -> bool`` takes it)."""
        lead, expected = self.lead, self.expected()
        why = None
        if expected is None and self.matcher(lead).mode is MatchMode.LOOSE:
            self.tracker.observe_server(message.payload)
            self.received.append(message)
            return Outcome(True)
        if expected is None:
            why = "is one more than the recording has"
        elif expected.direction is not Direction.CLIENT:  # pragma: no cover - sends() first
            why = "came before the recorded server messages were sent"
        else:
            why = self.matcher(lead).mismatch(expected, message)
        switched = None
        if why is not None:
            for other in self.candidates[1:]:
                if self._fits(other, message) and (claim is None or claim(other)):
                    self.candidates.remove(other)
                    self.candidates.insert(0, other)
                    self._tracker = None  # planned again for the new lead
                    switched, why = lead.id, None
                    expected = self.expected()
                    break
        if why is None:
            assert expected is not None
            self.tracker.observe_server(message.payload)
            self.received.append(message)
            self.position += 1
            return Outcome(True, switched_from=switched)
        mismatch = Mismatch(
            route=lead.route,
            session=lead.id,
            index=len(self.received),
            expected=render_payload(expected.payload if expected is not None else None),
            received=render_payload(message.payload),
            why=why,
        )
        if self.on_mismatch is OnMismatch.CONTINUE and expected is not None:
            self.tracker.observe_server(message.payload)
            self.received.append(message)
            self.position += 1
        return Outcome(False, mismatch)


def _with_payload(m: Message, payload: str | bytes) -> Message:
    return Message(m.seq, m.t, m.direction, m.opcode, payload)
