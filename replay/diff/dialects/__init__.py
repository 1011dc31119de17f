"""Protocol dialects: what framed WebSocket messages mean (pure).

A dialect turns a session's messages into events (``Event``: key,
correlation id, value, control flag); the normalizer aligns and compares
those instead of the raw payloads. Built in: ``socketio``, ``graphql``,
``jsonrpc``, ``stomp``, ``phoenix``, ``signalr``, ``actioncable``,
``mqtt``, ``generic`` (newline-delimited or prefixed JSON), ``json``
(plain JSON, the default) and ``raw`` (as plain JSON, never detected).
Third-party dialects register a ``Dialect`` subclass under the entry-point
group ``wsshadow.dialects`` (docs/dialects.md).

``detect_dialect`` picks one per session from its subprotocol, route and
first messages; ``get_dialect`` returns one by name (an override).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType

from wsshadow.replay.capture.model import Session
from wsshadow.replay.config import DiffConfig, RouteDiffConfig
from wsshadow.replay.diff.dialects.actioncable import ActionCable
from wsshadow.replay.diff.dialects.base import Dialect, Event, decode_nested
from wsshadow.replay.diff.dialects.graphql import GraphQLWs
from wsshadow.replay.diff.dialects.jsonrpc import JsonRpc
from wsshadow.replay.diff.dialects.mqtt import Mqtt
from wsshadow.replay.diff.dialects.phoenix import Phoenix
from wsshadow.replay.diff.dialects.plain import Generic, PlainJson, Raw
from wsshadow.replay.diff.dialects.signalr import SignalR
from wsshadow.replay.diff.dialects.socketio import SocketIO
from wsshadow.replay.diff.dialects.stomp import Stomp
from wsshadow.replay.errors import BadInput

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Dialect",
    "Event",
    "check_dialect_names",
    "decode_nested",
    "detect_dialect",
    "dialect_names",
    "dialects",
    "get_dialect",
    "session_dialect",
]

ENTRY_POINT_GROUP = "wsshadow.dialects"
"""Entry-point group under which other packages register ``Dialect`` subclasses."""

BUILTIN: tuple[Dialect, ...] = (
    SocketIO(), GraphQLWs(), JsonRpc(), Stomp(), Phoenix(), SignalR(), ActionCable(), Mqtt(),
    Generic(), PlainJson(), Raw(),
)  # fmt: skip

_log = logging.getLogger(__name__)
_loaded: Mapping[str, Dialect] | None = None


def _plugins() -> list[Dialect]:
    out = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            dialect = cls() if isinstance(cls, type) else cls
        except Exception as e:  # a broken plugin must not break the diff of everything else
            _log.warning("dialect entry point %s could not be loaded: %s", ep.name, e)
            continue
        if not isinstance(dialect, Dialect) or not dialect.name:
            _log.warning("dialect entry point %s is not a named Dialect", ep.name)
            continue
        out.append(dialect)
    return out


def dialects() -> Mapping[str, Dialect]:
    """Every dialect by name: the built-in ones, then those registered by entry point
    (a plug-in may not replace a built-in name)."""
    global _loaded
    if _loaded is None:
        found = {d.name: d for d in BUILTIN}
        for d in _plugins():
            found.setdefault(d.name, d)
        _loaded = MappingProxyType(found)
    return _loaded


def dialect_names() -> tuple[str, ...]:
    """The names ``dialect = "..."`` accepts."""
    return tuple(dialects())


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; raises BadInput naming the known ones."""
    found = dialects().get(name)
    if found is None:
        raise BadInput(f"unknown dialect {name!r} (known: {', '.join(dialect_names())})")
    return found


def detect_dialect(session: Session, *more: Session) -> Dialect:
    """The dialect that fits a session best: the highest ``detect`` score, plain
    JSON when nothing claims it (``json`` also for sessions without messages).

    With ``more`` sessions (replays of the same recorded session), each
    dialect scores its best over all of them: the choice does not depend on
    which one is named first.
    """
    heads = [(s.handshake, s.messages[:32]) for s in (session, *more)]
    best: Dialect = dialects()["json"]
    score = 0
    for d in dialects().values():
        s = max(d.detect(handshake, head) for handshake, head in heads)
        if s > score:
            best, score = d, s
    return best


def session_dialect(config: RouteDiffConfig, *sessions: Session | None) -> Dialect | None:
    """The dialect of a recorded session: the configured one, else detected over
    ``sessions`` (its replays, or the recording; None without any).

    Raises BadInput for a configured name no installed dialect has."""
    if config.dialect is not None:
        return get_dialect(config.dialect)
    present = [s for s in sessions if s is not None]
    return detect_dialect(*present) if present else None


def check_dialect_names(config: DiffConfig) -> None:
    """Raise BadInput when ``config`` (``[diff]`` or a route) names an unknown dialect."""
    for name in (config.dialect, *(o.dialect for o in config.routes.values())):
        if name is not None:
            get_dialect(name)
