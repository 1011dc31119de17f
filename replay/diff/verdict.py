"""The verdict (pure): equivalent only when it is earned.

``NoiseBudget`` counts, per route, the values the diff compared and how
many of them were suppressed as noise; a route is *not comparable* when a
noise signature with no field path swallows whole payloads or when more
than ``[verdict] max_noise_share`` of its values were suppressed.
``decide_verdict`` turns the differences, the fidelity and the routes'
comparability into ``equivalent`` / ``divergent`` / ``inconclusive`` and
the reasons for an inconclusive one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from wsshadow.replay.config import VerdictConfig
from wsshadow.replay.diff.normalize import Normalized, text_tokens

__all__ = ["VALUE_KINDS", "NoiseBudget", "count_values", "decide_verdict"]

VALUE_KINDS = frozenset(("changed_value", "type_changed", "missing_event", "extra_event"))
"""Kinds of findings that suppress compared values when they are noise."""


def count_values(stream: Iterable[Normalized]) -> int:
    """The values a stream offers for comparison: JSON leaves; a text's skeleton and each of
    its tokens (numbers, ids, times: compared one by one); one per binary message."""
    total = 0
    for n in stream:
        if n.format == "text" and isinstance(n.raw, str):
            total += 1 + len(text_tokens(n.raw)[1])
            continue
        if n.format != "json":
            total += 1
            continue
        stack = [n.value]
        while stack:
            v = stack.pop()
            if isinstance(v, dict):
                if v:
                    stack.extend(v.values())
                else:
                    total += 1
            elif isinstance(v, list):
                if v:
                    stack.extend(v)
                else:
                    total += 1
            else:
                total += 1
    return total


class NoiseBudget:
    """Per route: values compared, and (at the end) values suppressed as noise.

    Counting every JSON leaf of every session costs a tenth of the diff, so
    the values of a route's first ``EXACT`` sessions are counted, and then
    those of one session in ``STRIDE``, weighted by ``STRIDE``.
    """

    EXACT = 200
    STRIDE = 8

    def __init__(self) -> None:
        self.compared: dict[str, int] = {}
        self.seen: dict[str, int] = {}

    def add(self, route: str, stream: Iterable[Normalized]) -> None:
        """Count the values one session's baseline stream offered for comparison on ``route``."""
        n = self.seen.get(route, 0)
        self.seen[route] = n + 1
        if n < self.EXACT:
            weight = 1
        elif n % self.STRIDE == 0:
            weight = self.STRIDE
        else:
            return
        self.compared[route] = self.compared.get(route, 0) + weight * count_values(stream)

    def routes(
        self,
        noise: Iterable[Mapping[str, Any]],
        config: VerdictConfig,
        volatile: Callable[[str, str | None, str], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Each route's suppressed share and comparability, from the report's ``noise`` groups.

        Values of ``volatile`` fields (ids, clocks: mostly values seen once, as
        the alignment-free field checks measured them) are noise that hides
        nothing and do not count against the budget.
        """
        suppressed: dict[str, int] = {}
        whole: dict[str, list[str]] = {}
        for g in noise:
            if g["kind"] not in VALUE_KINDS:
                continue
            route = g["route"]
            path = g.get("path")
            if path is not None and volatile is not None and volatile(route, g["event"], path):
                continue
            suppressed[route] = suppressed.get(route, 0) + int(g.get("occurrences") or 0)
            if g["kind"] in ("changed_value", "type_changed") and g.get("path") is None:
                whole.setdefault(route, []).append(g["signature"])
        out = []
        for route in sorted(set(self.compared) | set(suppressed)):
            compared = self.compared.get(route, 0)
            gone = min(suppressed.get(route, 0), compared) if compared else suppressed.get(route, 0)
            share = gone / compared if compared else (1.0 if gone else 0.0)
            reason = None
            if route in whole:
                reason = f"noise swallows whole payloads ({', '.join(sorted(whole[route])[:3])})"
            elif share > config.max_noise_share:
                reason = (
                    f"{share:.0%} of its compared values were suppressed as noise "
                    f"(more than {config.max_noise_share:.0%})"
                )
            out.append({
                "route": route, "compared_values": compared, "suppressed_values": gone,
                "suppressed_share": round(share, 4), "comparable": reason is None,
                "reason": reason,
            })  # fmt: skip
        return out


def decide_verdict(
    differences: Sequence[Mapping[str, Any]],
    fidelity: Mapping[str, Any],
    config: VerdictConfig,
) -> tuple[str, list[str]]:
    """``(verdict, reasons)``: reasons say why the evidence is short of equivalence.

    ``divergent`` whenever differences survive (the reasons then qualify
    them); ``inconclusive`` without differences but with reasons;
    ``equivalent`` otherwise.
    """
    reasons: list[str] = []
    sessions = fidelity.get("sessions") or {}
    total = int(sessions.get("total") or 0)
    if fidelity.get("measured") and total:
        reproduced = int(sessions.get("reproduced") or 0)
        if reproduced < config.min_reproduced * total:
            causes = fidelity.get("causes") or []
            top = f": {causes[0]['cause']} (x{causes[0]['count']})" if causes else ""
            reasons.append(
                f"{total - reproduced:,} of {total:,} sessions not reproduced by the baseline "
                f"replay ({reproduced / total:.0%} reproduced, {config.min_reproduced:.0%} "
                f"needed){top}"
            )
    for r in fidelity.get("routes") or []:
        if not r.get("comparable", True):
            reasons.append(f"route {r['route']} is not comparable: {r['reason']}")
    if differences:
        return "divergent", reasons
    return ("inconclusive" if reasons else "equivalent"), reasons
