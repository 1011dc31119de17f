"""Align two streams of event keys (pure), so that a missing event is one finding.

``align_streams`` matches the baseline's and the candidate's event keys by
longest common subsequence; what is left over is paired by key as *moved*
(reordered) messages, and the rest is *missing* (baseline only) or *extra*
(candidate only). Keys declared unordered, and every key under the
``per-key`` ordering, are matched in order within their key only, so their
position relative to other events never counts. Under ``window:N`` a move
of at most N positions is not a reordering.

The alignment is a mirror image when the two streams are swapped.

``align_correlated`` first sets apart the messages a dialect correlated
(replies to requests, a subscription's messages, by correlation id): each
correlation id's messages are aligned with the other side's of the same id,
so the order in which replies complete never counts; everything else is
aligned as above.
"""

from __future__ import annotations

import difflib
from collections import defaultdict, deque
from collections.abc import Collection, Sequence
from typing import NamedTuple, Protocol

from wsshadow.replay.config import Ordering

__all__ = ["Keyed", "Pair", "align_correlated", "align_streams", "lcs_pairs"]

_STRICT = Ordering()

_DP_LIMIT = 1_000_000
"""Above this many cells the LCS falls back to difflib's (not always minimal) matcher."""


class Pair(NamedTuple):
    """One row of an alignment: indexes into the baseline and candidate streams.

    ``base`` None: an extra candidate message; ``cand`` None: a missing one;
    ``moved``: both present but the message changed places.
    """

    base: int | None
    cand: int | None
    moved: bool = False

    @property
    def status(self) -> str:
        """``equal`` (matched), ``moved``, ``missing`` or ``extra``."""
        if self.base is None:
            return "extra"
        if self.cand is None:
            return "missing"
        return "moved" if self.moved else "equal"


def lcs_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of ``a`` and ``b``, in order."""
    n, m = len(a), len(b)
    start = 0
    while start < n and start < m and a[start] == b[start]:
        start += 1
    end_a, end_b = n, m
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    pairs = [(i, i) for i in range(start)]
    mid_a, mid_b = a[start:end_a], b[start:end_b]
    if mid_a and mid_b:
        if len(mid_a) * len(mid_b) > _DP_LIMIT:
            sm = difflib.SequenceMatcher(None, list(mid_a), list(mid_b), autojunk=False)
            for block in sm.get_matching_blocks():
                pairs.extend((start + block.a + k, start + block.b + k) for k in range(block.size))
        else:
            pairs.extend((start + i, start + j) for i, j in _dp(mid_a, mid_b))
    pairs.extend((end_a + k, end_b + k) for k in range(n - end_a))
    return pairs


def _dp(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        ai = a[i]
        for j in range(m - 1, -1, -1):
            if ai == b[j]:
                row[j] = below[j + 1] + 1
            else:
                r, d = row[j + 1], below[j]
                row[j] = r if r > d else d
    out = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def align_streams(
    base: Sequence[str],
    cand: Sequence[str],
    ordering: Ordering = _STRICT,
    unordered: Collection[str] = (),
) -> list[Pair]:
    """Align two key streams; returns rows in baseline order, extras where they fell."""
    if list(base) == list(cand):
        new = tuple.__new__
        return [new(Pair, (i, i, False)) for i in range(len(base))]
    if tuple(base) > tuple(cand):
        # Always compute in one orientation, so that swapping the streams mirrors the result.
        return [Pair(p.cand, p.base, p.moved) for p in _align(cand, base, ordering, unordered)]
    return _align(base, cand, ordering, unordered)


def _align(
    base: Sequence[str], cand: Sequence[str], ordering: Ordering, unordered: Collection[str]
) -> list[Pair]:
    loose = set(unordered)
    if ordering.mode == "per-key":
        loose |= set(base) | set(cand)
    ordered_a = [i for i, k in enumerate(base) if k not in loose]
    ordered_b = [j for j, k in enumerate(cand) if k not in loose]
    matched: list[Pair] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for x, y in lcs_pairs([base[i] for i in ordered_a], [cand[j] for j in ordered_b]):
        i, j = ordered_a[x], ordered_b[y]
        matched.append(Pair(i, j))
        used_a.add(i)
        used_b.add(j)
    # Leftovers with the same key, paired in order: moved (ordered keys) or matched (loose keys).
    rank_a = {i: r for r, i in enumerate(ordered_a)}
    rank_b = {j: r for r, j in enumerate(ordered_b)}
    waiting: dict[str, deque[int]] = defaultdict(deque)
    for j, k in enumerate(cand):
        if j not in used_b:
            waiting[k].append(j)
    leftovers: list[Pair] = []
    for i, k in enumerate(base):
        if i in used_a:
            continue
        queue = waiting.get(k)
        if queue:
            j = queue.popleft()
            used_b.add(j)
            moved = k not in loose
            if moved and ordering.mode == "window":
                moved = abs(rank_a[i] - rank_b[j]) > ordering.window
            leftovers.append(Pair(i, j, moved))
        else:
            leftovers.append(Pair(i, None))
    extras = [Pair(None, j) for j in range(len(cand)) if j not in used_b]
    return _display_order(matched + leftovers, extras)


class Keyed(Protocol):
    """What ``align_correlated`` reads of a message: its key and correlation id."""

    @property
    def key(self) -> str: ...

    @property
    def corr(self) -> str | None: ...


def _subset(
    base: Sequence[Keyed],
    cand: Sequence[Keyed],
    at_a: list[int],
    at_b: list[int],
    ordering: Ordering,
    unordered: Collection[str],
) -> list[Pair]:
    """``align_streams`` over the messages at ``at_a`` / ``at_b``, as indexes of the whole."""
    rows = align_streams([base[i].key for i in at_a], [cand[j].key for j in at_b], ordering,
                         unordered)  # fmt: skip
    return [
        Pair(
            at_a[p.base] if p.base is not None else None,
            at_b[p.cand] if p.cand is not None else None,
            p.moved,
        )
        for p in rows
    ]


def align_correlated(
    base: Sequence[Keyed],
    cand: Sequence[Keyed],
    ordering: Ordering = _STRICT,
    unordered: Collection[str] = (),
) -> list[Pair]:
    """Align two streams of messages, correlated ones by correlation id (see the module).

    Without any correlation id this is ``align_streams`` over the keys.
    """
    groups_a: dict[str, list[int]] = defaultdict(list)
    groups_b: dict[str, list[int]] = defaultdict(list)
    free_a: list[int] = []
    free_b: list[int] = []
    for i, n in enumerate(base):
        (free_a if n.corr is None else groups_a[n.corr]).append(i)
    for j, n in enumerate(cand):
        (free_b if n.corr is None else groups_b[n.corr]).append(j)
    if not groups_a and not groups_b:
        return align_streams([n.key for n in base], [n.key for n in cand], ordering, unordered)
    rows = _subset(base, cand, free_a, free_b, ordering, unordered)
    for corr in dict.fromkeys([*groups_a, *groups_b]):
        rows += _subset(base, cand, groups_a.get(corr, []), groups_b.get(corr, []), ordering,
                        unordered)  # fmt: skip
    return _display_order([p for p in rows if p.base is not None],
                          [p for p in rows if p.base is None])  # fmt: skip


def _display_order(with_base: list[Pair], extras: list[Pair]) -> list[Pair]:
    """Baseline order; each extra right after the baseline row its predecessor matched."""
    anchor_of: dict[int, int] = {}
    for p in with_base:
        if p.cand is not None and p.base is not None:
            anchor_of[p.cand] = p.base
    keyed: list[tuple[int, int, int, Pair]] = []
    for p in with_base:
        assert p.base is not None
        keyed.append((p.base, 0, 0, p))
    if extras:
        last = -1
        extra_at = {p.cand for p in extras}
        n = max(max(anchor_of, default=-1), max(j for j in extra_at if j is not None)) + 1
        anchors: dict[int, int] = {}
        for j in range(n):
            if j in extra_at:
                anchors[j] = last
            elif j in anchor_of:
                last = max(last, anchor_of[j])
        for p in extras:
            assert p.cand is not None
            keyed.append((anchors[p.cand], 1, p.cand, p))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in keyed]
