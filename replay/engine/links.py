"""Links between recorded sessions, and the scenarios they form.

Real WebSocket apps are multi-user: a join code issued to one connection is
typed by another user, a move by one player is broadcast to the others.
This module finds such relations in a recording, without replaying
anything:

- a *value link*: a value the server sent to session A (the carry-over rule:
  a string of 6+ characters, or an integer in an id-named field) that a
  client later sends in session B, B's own server never having sent it
  before. No client may have sent the value before the server first did
  (then it is the users', not the server's). Strings that read like words
  (``message``, ``agent_thinking``) or contain spaces are not ids and are
  skipped, as are event names.
- a *causal link*: a server message in B caused by a client message in A.
  B's server message is a candidate when B's own client was quiet for the
  ``window`` before it (it is nobody's answer to B). Its cause is A's latest
  client message within the ``window`` before it, when either they share a
  field value (``{"x": 1, "y": 2}`` moved, ``{"text": "hi"}`` said), or the
  same payload reached two or more quiet sessions within the window and A
  itself got it as the answer to that message (a broadcast; pushes to more
  than ``broadcast_cap`` sessions at once are server-wide and link nothing).

Linked sessions form scenarios (connected components, union-find). The
work is linear in the messages, plus one sort of the client messages by
time. Payloads are scanned by ``engine/link_scan.py`` (as text, parsed as
JSON only when they hold escapes); an answer (a server message right after
its own client's) needs only its ids, and a repeated answer text (acks,
broadcasts, static replies) is scanned once.

Pure: frames in, links out.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from wsshadow.replay.engine.carryover import DEFAULT_EVENT_KEYS, CarryRule
from wsshadow.replay.engine.link_scan import answer_ids, ruled_values, scan_text

__all__ = [
    "DEFAULT_WINDOW",
    "Link",
    "LinkGraph",
    "RecordedFrames",
    "discover_links",
    "scenario_key",
]

DEFAULT_WINDOW = 0.2
"""Seconds: how soon after a client message another session's server message counts as its effect."""

_PAIRS = 4  # field values kept per client message for the shared-value test
_ZEROS = (0,) * _PAIRS
_MIX = 1_000_003  # (session, text hash) -> one int, for the set of answers
_ANSWERS = 4096  # answers' ids kept: acks, broadcasts and static answers repeat
_SCAN = 32  # client messages looked at, latest first, for one server message's cause

RecordedFrames = tuple[str, float, Iterable[tuple[float, str, str | None]]]
"""One recorded session for discovery: ``(id, started_at, frames)``; ``frames`` are its
data messages in order as ``(t, direction, text)``, ``text`` None for a binary message."""


@dataclass(frozen=True, slots=True)
class Link:
    """Evidence that session ``target`` depends on session ``source``.

    ``kind`` is ``"value"`` (``value`` was sent by the server to ``source`` in
    its server data message ``source_index`` and by ``target``'s client in its
    client data message ``target_index``) or ``"event"`` (``source``'s client
    data message ``source_index`` caused ``target``'s server data message
    ``target_index``; ``value`` is that message's event, or None;
    ``evidence`` says why: ``shared value`` or ``broadcast``).
    Indexes count data messages of one direction, from 0, as pacing does.
    """

    kind: str
    source: str
    source_index: int
    target: str
    target_index: int
    value: str | int | None = None
    evidence: str = ""

    def describe(self) -> str:
        """One line for listings."""
        if self.kind == "value":
            return (
                f"value {self.value!r}: server message {self.source_index} of {self.source} "
                f"-> client message {self.target_index} of {self.target}"
            )
        event = f" {self.value!r}" if self.value is not None else ""
        return (
            f"event{event} ({self.evidence}): client message {self.source_index} of "
            f"{self.source} -> server message {self.target_index} of {self.target}"
        )


@dataclass
class LinkGraph:
    """The links of a recording and the scenarios they form.

    ``scenarios`` maps a scenario id (its earliest session's id) to its
    sessions in recorded order; sessions without links are in no scenario.
    """

    links: list[Link] = field(default_factory=list)
    scenarios: dict[str, list[str]] = field(default_factory=dict)
    scenario_of: dict[str, str] = field(default_factory=dict)

    def links_of(self, scenario: str) -> list[Link]:
        """The links inside one scenario."""
        return [lk for lk in self.links if self.scenario_of.get(lk.source) == scenario]

    def neighbours(self) -> dict[str, set[str]]:
        """Each linked session's directly linked sessions."""
        out: dict[str, set[str]] = {}
        for lk in self.links:
            out.setdefault(lk.source, set()).add(lk.target)
            out.setdefault(lk.target, set()).add(lk.source)
        return out


def scenario_key(session_id: str, graph: LinkGraph | None) -> str:
    """What scheduling hashes for a session: its scenario's id, or its own id when alone."""
    if graph is None:
        return session_id
    return graph.scenario_of.get(session_id, session_id)


# ---- scanning payloads ------------------------------------------------------------

# ---- discovery -----------------------------------------------------------------------


class _Components:
    """Union-find over session numbers."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb


def discover_links(
    sessions: Iterable[RecordedFrames],
    *,
    event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS,
    window: float = DEFAULT_WINDOW,
    broadcast_cap: int = 64,
    rules: tuple[CarryRule, ...] = (),
) -> LinkGraph:
    """Find the value and causal links between recorded sessions, and their scenarios.

    ``sessions`` may be a generator (read once, in any order). ``rules`` are
    explicit cross-session carry-over rules (``[[carry_over]] scope =
    "capture"``): any value of the server path's last field (in messages with
    the rule's event, if given) counts as issued, any value of the client
    path's last field as used, whatever it looks like. Raises nothing on odd
    payloads: what is not JSON holds no values.
    """
    server_fields: dict[str, set[str | None]] = {}
    for rule in rules:
        server_fields.setdefault(rule.server.split(".")[-1], set()).add(rule.event)
    any_event: set[str | None] = {None}
    client_fields = {rule.client.split(".")[-1]: any_event for rule in rules}
    ids: list[str] = []
    starts: list[float] = []
    # value -> (absolute time, session number, server index) of its first server sending
    issued: dict[str | int, tuple[float, int, int]] = {}
    client_first: dict[str | int, float] = {}
    uses: list[tuple[str | int, float, int, int]] = []  # value, time, session, client index
    c_time = array("d")
    c_session = array("l")
    c_index = array("l")
    c_pairs = array("q")
    quiet: list[tuple[float, int, int, str | None, int, frozenset[int]]] = []
    echoes: set[int] = set()  # (session, text) of server messages that answered its own client
    answered: dict[str, list[str | int]] = {}  # answer text -> its ids (never changed)
    for sid, started_at, frames in sessions:
        number = len(ids)
        ids.append(sid)
        starts.append(started_at)
        own_server: set[str | int] = set()
        own_client: set[str | int] = set()
        last_own = float("-inf")
        ci = si = 0
        for t, direction, text in frames:
            at = started_at + t
            if direction == "server":
                if text is not None:
                    quiet_now = at - last_own >= window
                    if quiet_now or "\\" in text or rules:
                        event, values, pairs = scan_text(text, event_keys)
                        if rules:
                            values += ruled_values(pairs, server_fields, event)
                    else:  # an answer: only its ids matter (a repeated answer, scanned once)
                        known = answered.get(text)
                        if known is None:
                            if len(answered) >= _ANSWERS:
                                answered.clear()
                            known = answered[text] = answer_ids(text)
                        values = known
                    for v in values:
                        if v not in own_client:
                            own_server.add(v)
                            first = issued.get(v)
                            if first is None or at < first[0]:
                                issued[v] = (at, number, si)
                    if quiet_now:
                        hashes = frozenset(hash(p) for p in pairs)
                        quiet.append((at, number, si, event, hash(text), hashes))
                    else:
                        echoes.add(number * _MIX ^ hash(text))
                si += 1
                continue
            if text is not None:
                _, values, pairs = scan_text(text, event_keys, inner=True)
                if rules:
                    values += ruled_values(pairs, client_fields, None)
                for v in values:
                    seen = client_first.get(v)
                    if seen is None or at < seen:
                        client_first[v] = at
                    if v not in own_server and v not in own_client:
                        uses.append((v, at, number, ci))
                    own_client.add(v)
                c_time.append(at)
                c_session.append(number)
                c_index.append(ci)
                c_pairs.extend(map(hash, pairs[:_PAIRS]))
                if len(pairs) < _PAIRS:
                    c_pairs.extend(_ZEROS[len(pairs) :])
            last_own = at
            ci += 1

    graph = LinkGraph()
    links = graph.links
    # Value links: the first server sending of a value, in another session, before the use,
    # and no client anywhere said it before the server did.
    for v, at, b, k in uses:
        source = issued.get(v)
        if source is None:
            continue
        t_issued, a, j = source
        if a == b or t_issued >= at or client_first.get(v, at) < t_issued:
            continue
        links.append(Link("value", ids[a], j, ids[b], k, v))

    # Causal links: client messages sorted by time, each quiet server message looks back.
    order = sorted(range(len(c_time)), key=c_time.__getitem__)
    times = [c_time[i] for i in order]
    seen_pairs: set[tuple[int, int, int, int]] = set()

    def cause_of(at: float, b: int, hashes: frozenset[int] | None, echo: int = 0) -> int | None:
        """The latest client message of another session within the window before ``at``
        sharing a field value with it (``hashes``), or whose session got the same text
        (``echo``, the text's hash) as an answer."""
        hi = bisect_right(times, at)
        lo = bisect_left(times, at - window, 0, hi)
        for pos in range(hi - 1, max(lo, hi - _SCAN) - 1, -1):
            i = order[pos]
            if c_session[i] == b:
                return None  # B's own message came later: an answer to B, not an effect
            if hashes is None:
                if c_session[i] * _MIX ^ echo in echoes:
                    return i
                continue
            if not hashes.isdisjoint(c_pairs[i * _PAIRS : i * _PAIRS + _PAIRS]):
                return i
        return None

    copies: dict[int, list[tuple[float, int, int, str | None]]] = {}
    for at, b, si, event, text_hash, hashes in quiet:
        copies.setdefault(text_hash, []).append((at, b, si, event))
        if not hashes:
            continue
        i = cause_of(at, b, hashes)
        if i is not None:
            key = (c_session[i], c_index[i], b, si)
            if key not in seen_pairs:
                seen_pairs.add(key)
                a = c_session[i]
                links.append(Link("event", ids[a], c_index[i], ids[b], si, event, "shared value"))
    for text_hash, group in copies.items():
        if len(group) < 2:
            continue
        group.sort()
        start = 0
        while start < len(group):
            end = start + 1
            while end < len(group) and group[end][0] - group[start][0] <= window:
                end += 1
            cluster = group[start:end]
            start = end
            recipients = {b for _, b, _, _ in cluster}
            if not 2 <= len(recipients) <= broadcast_cap:
                continue
            first_at = cluster[0][0]
            i = cause_of(first_at, -1, None, text_hash)
            if i is None or c_session[i] in recipients:
                continue
            a = c_session[i]
            for _, b, si, event in cluster:
                key = (a, c_index[i], b, si)
                if key not in seen_pairs:
                    seen_pairs.add(key)
                    links.append(Link("event", ids[a], c_index[i], ids[b], si, event, "broadcast"))

    # Scenarios: connected components, named by their earliest session.
    components = _Components()
    number_of = {sid: n for n, sid in enumerate(ids)}
    for lk in links:
        components.union(number_of[lk.source], number_of[lk.target])
    linked = {number_of[lk.source] for lk in links} | {number_of[lk.target] for lk in links}
    members: dict[int, list[int]] = {}
    for n in linked:
        members.setdefault(components.find(n), []).append(n)
    for group_members in members.values():
        group_members.sort(key=lambda n: (starts[n], n))
        scenario = ids[group_members[0]]
        graph.scenarios[scenario] = [ids[n] for n in group_members]
        for n in group_members:
            graph.scenario_of[ids[n]] = scenario
    graph.scenarios = dict(sorted(graph.scenarios.items(), key=lambda kv: starts[number_of[kv[0]]]))
    return graph
