"""State carry-over: server-issued values that the client echoes later.

A recorded conversation often has the server issue a value (a thread id, a
run id, a token) that the client uses in a later message. Replayed as
recorded, that later message would carry the old value, which the target
never issued. Carry-over finds such values in the recording (a string of 6+
characters, or an integer in a field named like an id, first seen in a
server message and later contained in a client message), remembers where
the server put it (the server message's event key, its occurrence, and the
JSON path), and while replaying replaces it with what the target put at the
same place. Explicit rules (server path, client path, optional event) cover
what automatic matching cannot see.

Pure: payloads in, payloads out. Paths are dotted (``data.thread_id``), with
``*`` for one level, ``**`` for any depth and list indexes as levels.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wsshadow.replay.capture.framing import json_spans
from wsshadow.replay.capture.model import Direction, Session
from wsshadow.replay.capture.redact import PLACEHOLDER_RE
from wsshadow.replay.errors import BadInput

__all__ = [
    "DEFAULT_EVENT_KEYS",
    "CarryPlan",
    "CarryRule",
    "CarryTracker",
    "event_of",
    "leaves",
    "match_path",
    "may_carry",
    "message_doc",
    "parse_path",
    "plan_carry_over",
    "value_at",
]

DEFAULT_EVENT_KEYS = ("type", "event")
"""Fields whose value names a message's event; the first present one counts."""

Path = tuple[str | int, ...]
Scalar = str | int
Location = tuple[str | None, int]
"""A server message's place in a stream: its event key and occurrence of that key."""

_MIN_LEN = 6
_UNSEEN = object()
_ID_NUMBER = re.compile(r'[iI][dD]"\s*:\s*-?[0-9]')


@dataclass(frozen=True, slots=True)
class CarryRule:
    """Copy the value at ``server`` (in server messages with event ``event``, if given)
    into ``client`` in later client messages."""

    server: str
    client: str
    event: str | None = None

    def __post_init__(self) -> None:
        parse_path(self.server)
        parse_path(self.client)


def parse_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into segments; raises BadInput on an empty segment."""
    segments = tuple(path.split("."))
    if not path or any(not s for s in segments):
        raise BadInput(f"path {path!r}: expected dotted keys like data.thread_id")
    return segments


def _segment_matches(segment: str, key: str | int) -> bool:
    return segment == "*" or segment == str(key)


def match_path(doc: Any, segments: tuple[str, ...]) -> list[tuple[Path, Any]]:
    """Every (concrete path, value) in ``doc`` that the path pattern matches."""
    out: list[tuple[Path, Any]] = []

    def walk(node: Any, i: int, at: Path) -> None:
        if i == len(segments):
            out.append((at, node))
            return
        seg = segments[i]
        if seg == "**":
            walk(node, i + 1, at)
            for key, child in _children(node):
                walk(child, i, (*at, key))
            return
        for key, child in _children(node):
            if _segment_matches(seg, key):
                walk(child, i + 1, (*at, key))

    walk(doc, 0, ())
    return out


def _children(node: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def leaves(node: Any, at: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every leaf of a JSON value with its path, in document order."""
    if isinstance(node, dict | list):
        for key, child in _children(node):
            yield from leaves(child, (*at, key))
    else:
        yield at, node


def value_at(doc: Any, path: Path) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` in a JSON value, or ``(False, None)`` where it is absent."""
    node = doc
    for key in path:
        if isinstance(node, dict) and isinstance(key, str):
            if key not in node:
                return False, None
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return False, None
    return True, node


def _set(doc: Any, path: Path, value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _id_like(path: Path) -> bool:
    last = next((k for k in reversed(path) if isinstance(k, str)), "")
    return last.lower().endswith("id")


def _issuable(path: Path, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) >= _MIN_LEN and not PLACEHOLDER_RE.search(value)
    return isinstance(value, int) and _id_like(path)


def message_doc(payload: str | bytes) -> Any:
    """The JSON document of a message, framed or not (Socket.IO's ``42[...]``, a STOMP
    body): None when it holds no single document. Carry-over, inside a session and
    across a scenario's sessions, reads server messages with this, so that a value
    found in a framed message is also looked for there."""
    return _parse_framed(payload)[0]


def _parse_framed(payload: str | bytes) -> tuple[Any, str, str]:
    """The JSON document of a message, with the framing around it (Socket.IO's ``42``
    before, say): (document or None, prefix, suffix)."""
    if not isinstance(payload, str):
        return None, "", ""
    try:
        return json.loads(payload), "", ""
    except (ValueError, RecursionError):
        pass
    spans = json_spans(payload)
    if len(spans) != 1:
        return None, "", ""
    start, end = spans[0]
    return json.loads(payload[start:end]), payload[:start], payload[end:]


def event_of(doc: Any, event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS) -> str | None:
    """The event key of a parsed message: the first of ``event_keys`` it has, as text."""
    if isinstance(doc, dict):
        for key in event_keys:
            value = doc.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
    return None


@dataclass(frozen=True)
class CarryPlan:
    """What to carry over in one session.

    ``sources`` maps a server message location to the (path, recorded value)
    pairs issued there that a later client message uses; ``uses`` maps a
    client data message's index to the recorded values it contains.
    ``rule_recorded`` maps (rule index, client index) to the value the rule's
    server path held in the recording before that client message: a rule
    rewrites only client values equal to it (echoes), so a client that
    deliberately sent something else is replayed as recorded.
    """

    sources: dict[Location, tuple[tuple[Path, Scalar], ...]] = field(default_factory=dict)
    uses: dict[int, tuple[Scalar, ...]] = field(default_factory=dict)
    rules: tuple[CarryRule, ...] = ()
    event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS
    rule_recorded: dict[tuple[int, int], Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """False when replay can skip carry-over entirely (nothing to watch)."""
        return bool(self.uses or self.rules)

    def tracker(self) -> CarryTracker:
        """A fresh tracker for one replay of the session."""
        return CarryTracker(self)


def may_carry(frames: Iterable[tuple[str, str, str | bytes]]) -> bool:
    """A cheap, conservative test on raw text: False only when nothing can be carried over.

    ``frames`` are a recorded session's ``(direction, opcode, payload)``,
    direction and opcode as their values (or the enum members, equal to
    them). Most sessions (echoes, chat without ids) fail it, which spares
    them the JSON walk of every message. Without backslashes, the JSON
    strings of a text are exactly the odd pieces of ``text.split('"')``.
    """
    issued: set[str] = set()
    said: set[str] = set()
    id_number = _ID_NUMBER.search
    client_texts: set[str] = set()  # every text the client sent so far
    unsplit: list[str] = []  # client texts whose strings are not in ``said`` yet
    for direction, opcode, text in frames:
        if opcode != "text" or type(text) is not str:
            continue
        if "\\" in text:
            return True  # escapes: raw text and parsed values may differ
        if direction == "server":
            # The regex needs 'd"' or 'D"': two substring tests spare most texts the search.
            if ('d"' in text or 'D"' in text) and id_number(text):
                return True
            if text in client_texts:
                continue  # an echo of what the client said: it issues nothing
            # ``said`` is brought up to date only now: echo sessions never need it.
            for sent in unsplit:
                said.update(sent.split('"')[1::2])
            unsplit.clear()
            # Set operations, then the length test on what is left (usually nothing).
            fresh = set(text.split('"')[1::2]).difference(said)
            for v in fresh:
                if len(v) >= _MIN_LEN:
                    issued.add(v)
        else:
            for v in issued:
                if v in text:
                    return True
            if text not in client_texts:
                client_texts.add(text)
                unsplit.append(text)
    return False


def _may_carry(session: Session) -> bool:
    return may_carry((m.direction, m.opcode, m.payload) for m in session.messages)


@functools.lru_cache(maxsize=8)
def _nothing_to_carry(event_keys: tuple[str, ...]) -> CarryPlan:
    """The plan of every session without carry-over, made once (nothing ever changes it)."""
    return CarryPlan(event_keys=event_keys)


def plan_carry_over(
    session: Session,
    rules: tuple[CarryRule, ...] = (),
    event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS,
    *,
    possible: bool | None = None,
) -> CarryPlan:
    """Find the server-issued values a recorded session's client echoes later.

    ``possible`` is ``may_carry`` of the session when the caller has it already.
    """
    if possible is None:
        possible = _may_carry(session)
    if not rules and not possible:
        return _nothing_to_carry(event_keys)
    recorded = _rule_values(session, rules, event_keys) if rules else {}
    if not possible:
        return CarryPlan(rules=rules, event_keys=event_keys, rule_recorded=recorded)
    client_seen: set[Any] = {v for _, v in session.handshake.request_headers}
    for piece in session.handshake.query.split("&"):
        client_seen.add(piece.partition("=")[2])
    issued: dict[Scalar, tuple[Location, Path]] = {}
    occurrences: dict[str | None, int] = {}
    used_at: dict[Scalar, tuple[Location, Path]] = {}
    uses: dict[int, tuple[Scalar, ...]] = {}
    client_index = 0
    for m in session.messages:
        if not m.opcode.is_data:
            continue
        doc = message_doc(m.payload)
        if m.direction is Direction.SERVER:
            event = event_of(doc, event_keys)
            occurrence = occurrences.get(event, 0)
            occurrences[event] = occurrence + 1
            if doc is None:
                continue
            for path, value in leaves(doc):
                if _issuable(path, value) and value not in client_seen and value not in issued:
                    issued[value] = ((event, occurrence), path)
            continue
        found: list[Scalar] = []
        if issued:
            sent: list[tuple[Path, Any]] = (
                list(leaves(doc)) if doc is not None else [((), m.payload)]
            )
            for _, leaf in sent:
                if isinstance(leaf, bool) or not isinstance(leaf, str | int):
                    continue
                if leaf in issued:
                    found.append(leaf)
                elif isinstance(leaf, str) and len(leaf) > _MIN_LEN:
                    found.extend(v for v in issued if isinstance(v, str) and v in leaf)
        if found:
            unique = tuple(dict.fromkeys(found))
            uses[client_index] = unique
            for value in unique:
                used_at.setdefault(value, issued[value])
        if doc is not None:
            client_seen.update(v for _, v in leaves(doc) if isinstance(v, str | int))
        client_index += 1
    sources: dict[Location, list[tuple[Path, Scalar]]] = {}
    for used, (location, path) in used_at.items():
        sources.setdefault(location, []).append((path, used))
    return CarryPlan(
        sources={k: tuple(v) for k, v in sources.items()},
        uses=uses,
        rules=rules,
        event_keys=event_keys,
        rule_recorded=recorded,
    )


def _rule_values(
    session: Session, rules: tuple[CarryRule, ...], event_keys: tuple[str, ...]
) -> dict[tuple[int, int], Any]:
    """(rule, client index) -> the rule's recorded server value before that client message."""
    paths = [parse_path(r.server) for r in rules]
    latest: dict[int, Any] = {}
    out: dict[tuple[int, int], Any] = {}
    client_index = 0
    for m in session.messages:
        if not m.opcode.is_data:
            continue
        if m.direction is Direction.SERVER:
            doc = message_doc(m.payload)
            if doc is None:
                continue
            event = event_of(doc, event_keys)
            for i, rule in enumerate(rules):
                if rule.event is None or rule.event == event:
                    matches = match_path(doc, paths[i])
                    if matches:
                        latest[i] = matches[0][1]
            continue
        for i, value in latest.items():
            out[(i, client_index)] = value
        client_index += 1
    return out


class CarryTracker:
    """Carry-over during one replay: watch the target's messages, rewrite the client's."""

    def __init__(self, plan: CarryPlan) -> None:
        self.plan = plan
        self.mapping: dict[Scalar, Scalar] = {}
        self.rule_values: dict[int, Any] = {}
        self._occurrences: dict[str | None, int] = {}

    def observe_server(self, payload: str | bytes) -> None:
        """Note what the target issued in one server data message."""
        if not self.plan.active:
            return
        doc = message_doc(payload)
        event = event_of(doc, self.plan.event_keys)
        occurrence = self._occurrences.get(event, 0)
        self._occurrences[event] = occurrence + 1
        if doc is None:
            return
        for path, old in self.plan.sources.get((event, occurrence), ()):
            ok, new = value_at(doc, path)
            if ok and type(new) is type(old) and old not in self.mapping:
                self.mapping[old] = new
        for i, rule in enumerate(self.plan.rules):
            if rule.event is not None and rule.event != event:
                continue
            matches = match_path(doc, parse_path(rule.server))
            if matches:
                self.rule_values[i] = matches[0][1]

    def rewrite_client(self, index: int, payload: str | bytes) -> str | bytes:
        """Client data message ``index`` with carried-over values substituted."""
        olds = [v for v in self.plan.uses.get(index, ()) if v in self.mapping]
        if not isinstance(payload, str) or not (olds or self.rule_values):
            return payload
        doc, prefix, suffix = _parse_framed(payload)
        if doc is None:
            text = payload
            for old in olds:
                if isinstance(old, str):
                    text = text.replace(old, str(self.mapping[old]))
            return text
        changed = False
        for path, value in list(leaves(doc)):
            new = self._substitute(value, olds)
            if new is not value and path:
                _set(doc, path, new)
                changed = True
            elif new is not value:
                doc, changed = new, True
        for i, rule in enumerate(self.plan.rules):
            if i not in self.rule_values:
                continue
            echoed = self.plan.rule_recorded.get((i, index), _UNSEEN)
            for path, value in match_path(doc, parse_path(rule.client)):
                if echoed is not _UNSEEN and value != echoed:
                    continue  # not an echo of what the server said in the recording
                if path and value != self.rule_values[i]:
                    _set(doc, path, self.rule_values[i])
                    changed = True
        if not changed:
            return payload
        return prefix + json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + suffix

    def _substitute(self, value: Any, olds: list[Scalar]) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return value
        for old in olds:
            if type(value) is type(old) and value == old:
                return self.mapping[old]
        if isinstance(value, str):
            text = value
            for old in olds:
                if isinstance(old, str) and old in text:
                    text = text.replace(old, str(self.mapping[old]))
            return text if text != value else value
        return value
