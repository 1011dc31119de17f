"""Fidelity (pure): did the baseline replay reproduce the recorded session?

A replay that got ``"Game not found."`` where the recording had a game is
no evidence that the candidate behaves like the baseline: both may fail the
same way. ``session_fidelity`` compares the recorded server stream with the
baseline replay's, with the same normalizer and alignment as the diff and
the session's learned noise, and counts the recorded server events the
replay produced equivalently (the recorded close counts as one event).
An event is reproduced when the replay sent an event with the same key in
its place and, for text and binary messages, the same payload (masks and
noise applied); differing fields inside a JSON event do not count against
fidelity, since a replay runs as another user at another time: comparing
values is the diff's business, between two replays.
``FidelityTally`` folds sessions into the report's ``fidelity`` counts and
causes, crediting values that varied between baseline runs anywhere in the
capture (known only at the end) before it decides which sessions stay
unreproduced.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from wsshadow.replay.capture.model import CausalWaits, Closer, Session, unmet_links
from wsshadow.replay.config import RouteDiffConfig, VerdictConfig
from wsshadow.replay.diff.align import align_correlated
from wsshadow.replay.diff.compare import compare_text, signature
from wsshadow.replay.diff.dialects import Dialect
from wsshadow.replay.diff.noise import SessionNoise
from wsshadow.replay.diff.normalize import Normalized, Normalizer, ParseCache

__all__ = [
    "FidelityTally",
    "SessionFidelity",
    "failed_fidelity",
    "session_fidelity",
]

MAX_CAUSES = 20
"""Distinct causes listed in the report (the rest are counted under ``other``)."""
MAX_CAUSE_SESSIONS = 5
_TEXT_KEYS = ("message", "error", "reason", "detail", "msg", "description", "text")
_SNIPPET = 60


@dataclass(slots=True)
class SessionFidelity:
    """How much of one recorded session its baseline replay reproduced.

    ``events`` counts the recorded server events (plus one for a recorded
    close), ``reproduced_events`` those the replay produced equivalently.
    ``value_rows`` holds, for each event not reproduced only because its
    whole payload differs (text, binary), the signatures of those differences: they are
    credited back when they turn out to vary between baseline runs.
    ``cause`` explains a structural failure (error, refused handshake, early
    close, missing events); None when only values differ. ``links`` are the
    links to other sessions of its scenario the baseline replay went without
    (a value that never arrived, an event that never came), named in ``cause``.
    """

    events: int
    reproduced_events: int
    cause: str | None = None
    value_rows: list[frozenset[str]] = field(default_factory=list)
    links: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        """The share of recorded events reproduced (1.0 for a session with none)."""
        return 1.0 if self.events == 0 else self.reproduced_events / self.events


def _count_events(recorded_stream: list[Normalized], recorded: Session) -> int:
    close = recorded.close
    ends = close is not None and close.by in (Closer.SERVER, Closer.CLIENT)
    return len(recorded_stream) + (1 if ends else 0)


def failed_fidelity(
    recorded: Session, norm: Normalizer, error: str, dialect: Dialect | None = None
) -> SessionFidelity:
    """A baseline replay that got no answer reproduced nothing."""
    events = _count_events(norm.stream(recorded, None, dialect), recorded)
    return SessionFidelity(events, 0, error)


def _tally(keys: Iterable[str]) -> str:
    counts = Counter(keys).most_common()
    shown = [f"{k} (x{n})" if n > 1 else k for k, n in counts[:3]]
    return ", ".join(shown) + (", …" if len(counts) > 3 else "")


def _snippet(n: Normalized) -> str:
    """A short text that says what a message was: its message/error text, else its start."""
    value = n.value
    if n.format == "json":
        for node in (value, *(value.values() if isinstance(value, dict) else ())):
            if isinstance(node, dict):
                for k in _TEXT_KEYS:
                    if isinstance(node.get(k), str) and node[k]:
                        return _quote(node[k])
        return ""
    if n.format == "text":
        assert isinstance(n.raw, str)
        return _quote(n.raw)
    return ""


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…") + '"'


def _close_text(s: Session) -> str:
    c = s.close
    if c is None:
        return "not closed"
    code = f" {c.code}" if c.code is not None else ""
    return f"closed by {c.by.value}{code}" if c.by is not Closer.ERROR else f"ended: {c.error}"


def session_fidelity(
    recorded: Session,
    baseline: Session,
    norm: Normalizer,
    config: RouteDiffConfig,
    route: str,
    noise: SessionNoise | None = None,
    baseline_stream: list[Normalized] | None = None,
    cache: ParseCache | None = None,
    dialect: Dialect | None = None,
) -> SessionFidelity:
    """Compare the recording with its baseline replay: how much did the replay reproduce?

    Differences in the session's ``noise`` (what varied between the baseline
    runs) count as reproduced; reorderings and timing do not count against
    fidelity. ``dialect`` decodes both sessions, and replies are paired by
    correlation id as the diff pairs them. Pure.
    """
    cache = cache if cache is not None else {}
    rec_stream = norm.stream(recorded, cache, dialect)
    events = _count_events(rec_stream, recorded)
    hs_rec, hs_base = recorded.handshake.status, baseline.handshake.status
    if hs_rec != hs_base:
        return SessionFidelity(
            events, 0, f"handshake answered {hs_base} where the recording had {hs_rec}"
        )
    learned = noise.signatures if noise is not None else set()
    # Only keys, whole payloads and the close count (module docstring): align the
    # keys and compare no JSON values, which keeps fidelity cheap next to the diff.
    base_stream = (
        baseline_stream if baseline_stream is not None else norm.stream(baseline, cache, dialect)
    )
    loose = {k for k, rule in config.background.items() if rule.unordered}
    if noise is not None:
        loose |= noise.unordered
    optional = {k for k, rule in config.background.items() if rule.optional}
    pairs = align_correlated(rec_stream, base_stream, config.ordering, loose)
    missing: list[str] = []
    extra: list[Normalized] = []
    value_rows: list[frozenset[str]] = []
    for p in pairs:
        if p.cand is None:
            assert p.base is not None
            r = rec_stream[p.base]
            if (
                r.key not in optional
                and signature("missing_event", route, r.event, None) not in learned
            ):
                missing.append(r.key)
            continue
        c = base_stream[p.cand]
        if p.base is None:
            if (
                c.key not in optional
                and signature("extra_event", route, c.event, None) not in learned
            ):
                extra.append(c)
            continue
        r = rec_stream[p.base]
        if r.format == "json" and c.format == "json":
            continue
        if r.format != c.format:
            sig = signature("type_changed", route, r.event, None)
        elif norm.equivalent(r, c):
            continue
        elif r.format == "text":
            # Token by token, as the diff compares text: a number or an id that also
            # varies between the baseline runs does not make the message unreproduced.
            sigs = frozenset(f.signature(route) for f in compare_text(r, c, 0, norm)) - learned
            if sigs:
                value_rows.append(sigs)
            continue
        else:
            sig = signature("changed_value", route, r.event, None)
        if sig not in learned:
            value_rows.append(frozenset((sig,)))
    close_lost = False
    rc, bc = recorded.close, baseline.close
    for attr in ("code", "by"):
        vr = getattr(rc, attr) if rc is not None else None
        vb = getattr(bc, attr) if bc is not None else None
        if vr != vb and signature("close", route, None, attr) not in learned:
            close_lost = True
    counted_close = events > len(rec_stream)
    lost = len(missing) + len(value_rows) + (1 if close_lost and counted_close else 0)
    cause: str | None = None
    sent = len(base_stream)
    if (
        bc is not None
        and bc.by is Closer.SERVER
        and sent < len(rec_stream)
        and (close_lost or missing)
    ):
        code = f" {bc.code}" if bc.code is not None else ""
        cause = f"closed by server{code} after {sent} of {len(rec_stream)} messages"
        if extra and missing:
            cause += f" (answered {_answer(extra)})"
    elif extra and missing:
        cause = f"baseline answered {_answer(extra)} where the recording had {_tally(missing)}"
    elif missing:
        cause = f"baseline did not send {_tally(missing)}"
    elif close_lost and counted_close:
        cause = f"baseline {_close_text(baseline)} where the recording was {_close_text(recorded)}"
    waits = CausalWaits.from_tags(baseline.provenance.tags)
    if waits is not None:
        keys = [rec_stream[i].key for i in waits.awaited if i < len(rec_stream)]
        timed_out = f"causal wait timed out {_times(waits.timeouts)}"
        if keys:
            timed_out += f" awaiting {_tally(keys)}"
        cause = f"{cause}; {timed_out}" if cause else timed_out
    links = unmet_links(baseline.provenance.tags)
    if links:  # the root, first: the first link to another session this replay went without
        named = links[0] + (f" (and {len(links) - 1} more unmet links)" if len(links) > 1 else "")
        cause = f"{named}; {cause}" if cause else named
    return SessionFidelity(events, events - lost, cause, value_rows, links)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _answer(extra: list[Normalized]) -> str:
    """``error "Game not found."`` (x3): the most common unexpected event, with its text."""
    counts = Counter(n.key for n in extra)
    key, n = counts.most_common(1)[0]
    first = next(m for m in extra if m.key == key)
    snippet = _snippet(first)
    text = f"{key} {snippet}" if snippet else key
    return text + (f" (x{n})" if n > 1 else "")


def _cause_group(cause: str) -> str:
    # Sessions of other scenarios failing the same way group together: the link's
    # value and session ids aside.
    cause = re.sub(r"value '[^']*'", "value '#'", cause)
    cause = re.sub(r"\b(of|for) session [\w.:-]+", r"\1 session #", cause)
    cause = re.sub(r"never arrived: [\w.:-]+ ", "never arrived: # ", cause)
    return re.sub(r"\d+", "#", cause)


@dataclass(slots=True)
class _Unreproduced:
    session: str
    route: str
    fidelity: SessionFidelity


@dataclass(slots=True)
class _Cause:
    cause: str
    count: int = 0
    sessions: list[str] = field(default_factory=list)


class FidelityTally:
    """Sessions' fidelity folded into the report's ``fidelity`` object.

    Memory: counters, plus one small entry per session below the threshold
    (whose values may still be credited as noise at the end).
    """

    def __init__(self, config: VerdictConfig) -> None:
        self.config = config
        self.sessions = 0
        self.events = 0
        self.reproduced_events = 0
        self.reproduced_sessions = 0
        self.pending: list[_Unreproduced] = []

    def add(self, session: str, route: str, fid: SessionFidelity) -> None:
        """Count one session's fidelity."""
        self.sessions += 1
        if fid.share >= self.config.min_session_fidelity:
            self.reproduced_sessions += 1
            self.events += fid.events
            self.reproduced_events += fid.reproduced_events
        else:
            self.pending.append(_Unreproduced(session, route, fid))

    def finish(
        self, noise: Container[str]
    ) -> tuple[dict[str, Any], dict[str, tuple[float, str | None]]]:
        """The ``fidelity`` counts and causes, and (share, cause) of each session first found
        below the threshold (cause None when credited values brought it back above).

        ``noise`` holds the signatures seen between baseline runs anywhere:
        values that differ from the recording only in those ways count as
        reproduced.
        """
        causes: dict[str, _Cause] = {}
        other = 0
        shares: dict[str, tuple[float, str | None]] = {}
        reproduced_sessions = self.reproduced_sessions
        events, reproduced_events = self.events, self.reproduced_events
        for u in self.pending:
            fid = u.fidelity
            still = [sigs for sigs in fid.value_rows if not all(s in noise for s in sigs)]
            credited = len(fid.value_rows) - len(still)
            share = 1.0 if fid.events == 0 else (fid.reproduced_events + credited) / fid.events
            events += fid.events
            reproduced_events += fid.reproduced_events + credited
            if share >= self.config.min_session_fidelity:
                reproduced_sessions += 1
                shares[u.session] = (share, None)
                continue
            cause = fid.cause or _value_cause(still)
            shares[u.session] = (share, cause)
            key = _cause_group(cause)
            c = causes.get(key)
            if c is None:
                if len(causes) >= MAX_CAUSES:
                    other += 1
                    continue
                c = causes[key] = _Cause(cause)
            c.count += 1
            if len(c.sessions) < MAX_CAUSE_SESSIONS:
                c.sessions.append(u.session)
        listed = sorted(causes.values(), key=lambda c: (-c.count, c.cause))
        out: dict[str, Any] = {
            "measured": True,
            "sessions": {
                "total": self.sessions,
                "reproduced": reproduced_sessions,
                "unreproduced": self.sessions - reproduced_sessions,
            },
            "reproduced_share": (
                round(reproduced_sessions / self.sessions, 4) if self.sessions else 1.0
            ),
            "events": {"recorded": events, "reproduced": reproduced_events},
            "causes": [
                {"cause": c.cause, "count": c.count, "sessions": c.sessions} for c in listed
            ],
        }
        if other:
            out["causes"].append({"cause": "other causes", "count": other, "sessions": []})
        return out, shares


def _event_of(sig: str) -> str:
    """The event (and field) part of a payload signature, in words (``-``: no event key)."""
    parts = sig.split(" ")[2:]
    if parts and parts[0] != "-":
        return " ".join(parts)
    path = " ".join(parts[1:])
    return "messages without an event key" + (f" (at {path})" if path else "")


def _value_cause(rows: list[frozenset[str]]) -> str:
    sigs = Counter(s for sigs in rows for s in sigs)
    shown = [_event_of(sig) + (f" (x{n})" if n > 1 else "") for sig, n in sigs.most_common(3)]
    more = ", …" if len(sigs) > 3 else ""
    return f"payloads differ from the recording: {', '.join(shown)}{more}"
