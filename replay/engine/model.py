"""The engine's values: ``ReplayOptions`` in, ``SessionOutcome`` and ``RunResult`` out,
``ReplayObserver`` for progress, and the parsers of ``--shard`` and ``--header``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsshadow.replay.capture.model import (
    Close,
    Headers,
    Message,
)
from wsshadow.replay.engine.carryover import (
    DEFAULT_EVENT_KEYS,
    CarryRule,
)
from wsshadow.replay.engine.pacing import (
    Pace,
    PacingSettings,
)
from wsshadow.replay.engine.targets import RouteMap, parse_target
from wsshadow.replay.errors import BadInput

__all__ = [
    "ReplayObserver",
    "ReplayOptions",
    "RunResult",
    "SessionOutcome",
    "in_shard",
    "parse_header",
    "parse_shard",
]


@dataclass(frozen=True)
class ReplayOptions:
    """Everything a replay run needs; the CLI and the config file both build one.

    ``credentials`` maps credential names to values that may hold ``${VAR}``,
    expanded from ``env`` (None: the process environment). ``shard`` is
    ``(index, count)`` with ``0 <= index < count``. ``headers`` override
    recorded request headers of the same name; an empty value removes one.
    Raises BadInput on nonsense values.
    """

    target: str
    maps: tuple[RouteMap, ...] = ()
    pace: Pace = Pace.CAUSAL
    speed: float = 1.0
    concurrency: int = 50
    rate: float = 0.0
    session_ids: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    headers: Headers = ()
    credentials: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    ca: Path | None = None
    causal_timeout: float = 2.0
    idle_timeout: float = 1.0
    close_timeout: float = 5.0
    open_timeout: float = 10.0
    shard: tuple[int, int] | None = None
    follow: bool = False
    carry_over: bool = True
    carry_rules: tuple[CarryRule, ...] = ()
    event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS
    warmup: int | None = None
    """Sessions replayed unrecorded before the measured replay; None: the command's default (0)."""
    links: bool = True  # replay linked sessions together (engine/scenarios.py)
    link_rules: tuple[CarryRule, ...] = ()  # [[carry_over]] scope = "capture"

    def __post_init__(self) -> None:
        parse_target(self.target)
        if self.warmup is not None and self.warmup < 0:
            raise BadInput(f"warmup must not be negative, not {self.warmup}")
        if self.concurrency < 1:
            raise BadInput(f"concurrency must be at least 1, not {self.concurrency}")
        if self.rate < 0:
            raise BadInput(f"rate must not be negative, not {self.rate}")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise BadInput(f"shard {self.shard[0]}/{self.shard[1]}: expected 0 <= I < N")
        try:
            self.pacing()
        except ValueError as e:
            raise BadInput(str(e)) from None

    def pacing(self) -> PacingSettings:
        """The pacing part of the options."""
        return PacingSettings(
            pace=self.pace,
            speed=self.speed,
            causal_timeout=self.causal_timeout,
            idle_timeout=self.idle_timeout,
            close_timeout=self.close_timeout,
        )

    def settings(self) -> dict[str, Any]:
        """The options as JSON-ready values for the run row (credential names, never values)."""
        return {
            "pace": self.pace.value,
            "speed": self.speed,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "maps": [str(m) for m in self.maps],
            "sessions": list(self.session_ids),
            "routes": list(self.routes),
            "headers": [name for name, _ in self.headers],
            "credentials": sorted(k.lower() for k in self.credentials),
            "ca": str(self.ca) if self.ca else None,
            "causal_timeout": self.causal_timeout,
            "idle_timeout": self.idle_timeout,
            "close_timeout": self.close_timeout,
            "shard": list(self.shard) if self.shard else None,
            "carry_over": self.carry_over,
            "carry_rules": [[r.server, r.client, r.event] for r in self.carry_rules],
            "warmup": self.warmup or 0,
            "links": self.links,
            "link_rules": [[r.server, r.client, r.event] for r in self.link_rules],
        }


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """How one replayed session went.

    ``connected`` is True when the target accepted the WebSocket handshake;
    ``error`` says why the session did not run or ended abnormally (None
    when it ran and closed cleanly).
    """

    origin: str
    session_id: str
    url: str
    connected: bool
    status: int | None
    error: str | None
    client_messages: int
    server_messages: int
    recorded_server_messages: int
    close: Close | None
    duration: float
    causal_timeouts: int = 0
    """Client messages sent only because the causal wait for server messages timed out."""
    causal_waited: float = 0.0
    """Seconds spent waiting, past the recorded gaps, for server messages that never came."""
    unmet_links: tuple[str, ...] = ()
    """Links to other sessions of its scenario that were never satisfied, in words: a value
    that never arrived from another session, an event from another session that never
    came (engine/scenarios.py); also kept in the replayed session's provenance tags."""


@dataclass(frozen=True)
class RunResult:
    """A finished run: its name, target, and one outcome per session in selection order.

    ``scenario_timeouts``: client messages of multi-user scenarios sent because a
    causal wait timed out (engine/scenarios.py); 0 when every wait was met.
    """

    run: str
    target: str
    outcomes: tuple[SessionOutcome, ...]
    started_at: float
    ended_at: float
    scenario_timeouts: int = 0

    @property
    def sessions(self) -> int:
        """How many sessions the run replayed (or tried to)."""
        return len(self.outcomes)

    @property
    def connected(self) -> int:
        """Sessions whose handshake the target accepted."""
        return sum(1 for o in self.outcomes if o.connected)

    @property
    def errors(self) -> int:
        """Sessions with an error (not connected, or ended by an error)."""
        return sum(1 for o in self.outcomes if o.error is not None)

    @property
    def completed(self) -> int:
        """Sessions that connected and ended without an error."""
        return sum(1 for o in self.outcomes if o.connected and o.error is None)

    @property
    def causal_timeouts(self) -> int:
        """Client messages sent only because a causal wait timed out, over all sessions."""
        return sum(o.causal_timeouts for o in self.outcomes)

    @property
    def causal_waited(self) -> float:
        """Seconds lost waiting for server messages that never came, over all sessions."""
        return sum(o.causal_waited for o in self.outcomes)

    @property
    def unreachable(self) -> bool:
        """True when there were sessions and the target accepted none of them."""
        return bool(self.outcomes) and self.connected == 0

    @property
    def messages_sent(self) -> int:
        """Client messages sent, over all sessions."""
        return sum(o.client_messages for o in self.outcomes)

    @property
    def messages_received(self) -> int:
        """Server data messages received, over all sessions."""
        return sum(o.server_messages for o in self.outcomes)

    def first_error(self) -> str | None:
        """The first session error, for a one-line summary."""
        return next((o.error for o in self.outcomes if o.error is not None), None)


class ReplayObserver:
    """Hooks a caller can override to watch a run (progress bars, ``--follow``).

    ``message`` is called only when ``ReplayOptions.follow`` is set, with the
    replayed message and the recorded message at the same place (the n-th
    client or server data message), or None.
    """

    def run_started(self, run: str, total: int) -> None:
        """The run selected ``total`` sessions and starts replaying them."""

    def session_started(self, origin: str, url: str) -> None:
        """A session is about to connect."""

    def message(self, origin: str, replayed: Message, recorded: Message | None) -> None:
        """A message was sent or received (only with ``follow``)."""

    def recorded(self, origin: str, route: str, server: tuple[Message, ...]) -> None:
        """The recorded server data messages of a session about to replay (only with ``follow``)."""

    def waited(self, origin: str, seconds: float, messages: int) -> None:
        """A causal wait timed out just now: ``seconds`` lost waiting for ``messages``
        server messages that never came (only with ``follow``)."""

    def session_finished(self, outcome: SessionOutcome) -> None:
        """A session ended (successfully or not)."""


# ---- selection ---------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (``0 <= I < N``); raises BadInput."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise BadInput(f"shard {text!r}: expected I/N with 0 <= I < N, like 0/4")
    return shard


def parse_header(text: str) -> tuple[str, str]:
    """Parse ``'Name: value'`` (as given to ``--header``); raises BadInput."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise BadInput(f"header {text!r}: expected 'Name: value'")
    return name, value.strip()


def in_shard(session_id: str, shard: tuple[int, int] | None) -> bool:
    """True when ``session_id`` belongs to ``shard`` (a stable hash, same on every machine)."""
    if shard is None:
        return True
    digest = hashlib.sha256(session_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]
