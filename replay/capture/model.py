"""The capture model: one recorded WebSocket connection and its messages.

Everything in wsshadow shares these types: recorders produce them, the store
persists them, replay reads the client side and writes new ones, and the
differ compares the server side. They are pure values: frozen, no I/O, and
time is always passed in, never read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_EPOCH",
    "MAX_SESSION_SECONDS",
    "UNMET_LINK_TAG",
    "CausalWaits",
    "Close",
    "Closer",
    "Direction",
    "Handshake",
    "Headers",
    "Message",
    "Opcode",
    "Provenance",
    "Run",
    "Session",
    "Source",
    "unmet_link_tags",
    "unmet_links",
]

Headers = tuple[tuple[str, str], ...]
"""Headers as an ordered tuple of (name, value) pairs; names keep their case."""

MAX_SESSION_SECONDS = 366 * 86_400
"""The latest a message or close may come after its session opened (importers refuse more)."""

MAX_EPOCH = 1e11
"""The latest wall-clock time (seconds since 1970, the year 5138) importers accept."""


class Direction(StrEnum):
    """Who sent a message."""

    CLIENT = "client"
    SERVER = "server"


class Opcode(StrEnum):
    """What kind of WebSocket message or control frame a message is."""

    TEXT = "text"
    BINARY = "binary"
    PING = "ping"
    PONG = "pong"
    CLOSE = "close"

    @property
    def is_data(self) -> bool:
        """True for text and binary messages, False for control frames."""
        return self in (Opcode.TEXT, Opcode.BINARY)


class Closer(StrEnum):
    """Who ended a session: a side that sent a close frame, or an error."""

    CLIENT = "client"
    SERVER = "server"
    ERROR = "error"


class Source(StrEnum):
    """How a session got into a capture."""

    PROXY = "proxy"
    MIRROR = "mirror"
    ASGI = "asgi"
    HAR = "har"
    JSONL = "jsonl"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class Message:
    """One whole WebSocket message or control frame.

    ``payload`` is ``str`` for text messages and ``bytes`` for everything else
    (binary messages, and the application data of ping, pong and close).
    ``t`` is seconds since the session opened, from a monotonic clock.
    """

    seq: int
    t: float
    direction: Direction
    opcode: Opcode
    payload: str | bytes

    def __post_init__(self) -> None:
        if self.opcode is Opcode.TEXT and not isinstance(self.payload, str):
            raise TypeError("a text message carries str")
        if self.opcode is not Opcode.TEXT and not isinstance(self.payload, bytes):
            raise TypeError(f"a {self.opcode.value} message carries bytes")

    @property
    def size(self) -> int:
        """Payload size in bytes (text counted as UTF-8)."""
        if isinstance(self.payload, str):
            return len(self.payload.encode("utf-8", "surrogatepass"))
        return len(self.payload)


@dataclass(frozen=True, slots=True)
class Handshake:
    """The opening handshake as the client asked for it and the server answered.

    ``status`` is 101 for an accepted upgrade, the HTTP status of a refused
    one, or ``None`` when no answer came (upstream unreachable).
    """

    route: str
    query: str = ""
    request_headers: Headers = ()
    subprotocols: tuple[str, ...] = ()
    status: int | None = 101
    subprotocol: str | None = None
    response_headers: Headers = ()

    @property
    def accepted(self) -> bool:
        """True when the server accepted the upgrade."""
        return self.status == 101

    def request_header(self, name: str) -> str | None:
        """The first request header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.request_headers if k.lower() == lowered), None)

    def response_header(self, name: str) -> str | None:
        """The first response header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class Close:
    """How a session ended.

    ``by`` says who closed it; when it is ``Closer.ERROR``, ``error`` says
    what went wrong (``"upstream unreachable: ..."``, ``"client vanished"``).
    ``code`` is the close code the initiating side sent (None when there was
    no close frame, or an empty one). ``t`` is seconds since the session opened.
    """

    code: int | None
    reason: str = ""
    by: Closer = Closer.SERVER
    error: str | None = None
    t: float | None = None


@dataclass(frozen=True, slots=True)
class CausalWaits:
    """A replayed session's causal waits that timed out (kept in its provenance tags).

    ``timeouts`` client messages were sent only because the server messages
    they waited for never came; ``waited`` seconds were lost waiting past the
    recorded gaps; ``awaited`` are the indexes (among the recorded server
    data messages) of the messages that were awaited in vain.
    """

    timeouts: int
    waited: float
    awaited: tuple[int, ...] = ()

    _PREFIXES = ("causal-timeouts:", "causal-waited-s:", "awaited:")

    def tags(self) -> tuple[str, ...]:
        """The provenance tags that hold it."""
        t, w, a = self._PREFIXES
        return (
            f"{t}{self.timeouts}",
            f"{w}{self.waited:.3f}",
            a + ",".join(map(str, self.awaited)),
        )

    @classmethod
    def from_tags(cls, tags: tuple[str, ...]) -> CausalWaits | None:
        """Read it back from provenance tags; None when no wait timed out (or tags are bad)."""
        t, w, a = cls._PREFIXES
        found = {p: tag[len(p) :] for tag in tags for p in (t, w, a) if tag.startswith(p)}
        try:
            timeouts = int(found.get(t, "0"))
            waited = float(found.get(w, "0"))
            awaited = tuple(int(x) for x in found.get(a, "").split(",") if x)
        except ValueError:
            return None
        return cls(timeouts, waited, awaited) if timeouts > 0 else None


UNMET_LINK_TAG = "unmet-link:"
"""The provenance tag prefix of a link to another session that a replay went without."""


def unmet_link_tags(links: tuple[str, ...]) -> tuple[str, ...]:
    """The provenance tags that hold a replayed session's unmet links (see ``unmet_links``)."""
    return tuple(UNMET_LINK_TAG + link for link in links)


def unmet_links(tags: tuple[str, ...]) -> tuple[str, ...]:
    """The unmet links kept in provenance tags, in words (engine/scenarios.py names them)."""
    return tuple(tag[len(UNMET_LINK_TAG) :] for tag in tags if tag.startswith(UNMET_LINK_TAG))


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a session came from.

    A replayed session names the ``run`` it belongs to and the recorded
    session (``origin``) whose client side it replayed.
    """

    source: Source = Source.PROXY
    tags: tuple[str, ...] = ()
    run: str | None = None
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """One WebSocket connection: handshake, messages in order, and its end.

    ``started_at`` is wall-clock seconds since the epoch when it opened.
    ``close`` is None while a session is still open (or was cut off).
    """

    id: str
    started_at: float
    handshake: Handshake
    messages: tuple[Message, ...] = ()
    close: Close | None = None
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def route(self) -> str:
        """The path the client asked for."""
        return self.handshake.route

    @property
    def duration(self) -> float | None:
        """Seconds from open to close (or to the last message when not closed)."""
        if self.close is not None and self.close.t is not None:
            return self.close.t
        if self.messages:
            return self.messages[-1].t
        return None

    def client_messages(self) -> tuple[Message, ...]:
        """Messages the client sent, in order."""
        return tuple(m for m in self.messages if m.direction is Direction.CLIENT)

    def server_messages(self) -> tuple[Message, ...]:
        """Messages the server sent, in order."""
        return tuple(m for m in self.messages if m.direction is Direction.SERVER)

    def count(self, direction: Direction) -> int:
        """How many messages went in ``direction``."""
        return sum(1 for m in self.messages if m.direction is direction)

    def with_messages(self, messages: tuple[Message, ...]) -> Session:
        """A copy of this session holding ``messages`` instead."""
        return replace(self, messages=messages)


@dataclass(frozen=True, slots=True)
class Run:
    """One replay (or live mirror) of recorded sessions against a target.

    ``settings`` holds the options the run used (pacing, maps, ...), as
    JSON-ready values. Times are wall-clock seconds since the epoch.
    """

    name: str
    target: str
    source: Source = Source.REPLAY
    settings: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    sessions: int = 0
    errors: int = 0
