"""Session results folded into the report's parts with flat memory (``DiffAccumulator``):
per-signature groups with capped examples, noise, fidelity, field checks, timing and
the session details that get aligned rows. Pure."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wsshadow.replay.config import DiffConfig, VerdictConfig
from wsshadow.replay.diff.compare import (
    Finding,
    SessionComparison,
    signature,
)
from wsshadow.replay.diff.distributions import FieldDistributions
from wsshadow.replay.diff.fidelity import (
    FidelityTally,
)
from wsshadow.replay.diff.noise import NoiseModel
from wsshadow.replay.diff.normalize import Normalized, display_payload
from wsshadow.replay.diff.session import SessionResult
from wsshadow.replay.diff.timing import LatencySamples
from wsshadow.replay.diff.verdict import NoiseBudget, decide_verdict
from wsshadow.replay.report.build import LatencyHistogram

__all__ = [
    "MAX_DETAIL_DIFFERENCES",
    "MAX_DIVERGENT_ROWS",
    "MAX_EQUIVALENT_ROWS",
    "MAX_EXAMPLES",
    "MAX_GROUP_SESSIONS",
    "MAX_ROWS",
    "DiffAccumulator",
    "fold_across_events",
]


MAX_ROWS = 1000
"""Rows kept per session in session_details."""
MAX_DIVERGENT_ROWS = 500
MAX_EQUIVALENT_ROWS = 50
MAX_GROUP_SESSIONS = 1000
"""Session ids listed per difference group (``sessions_truncated`` says when cut)."""
MAX_DETAIL_DIFFERENCES = 100
"""Findings listed per session in session_details."""
MAX_EXAMPLES = 3


# ---- accumulating ------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    kind: str
    route: str
    event: str | None
    path: str | None
    sessions: list[str] = field(default_factory=list)
    count: int = 0
    occurrences: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    masked_sessions: int = 0
    masked_occurrences: int = 0


def _side(n: Normalized | None) -> dict[str, Any] | None:
    if n is None:
        return None
    payload: Any
    if n.format == "binary":
        assert isinstance(n.raw, bytes)
        payload = base64.b64encode(n.raw).decode("ascii")
    else:
        payload = display_payload(n)
    return {"seq": n.seq, "t": n.t, "format": n.format, "payload": payload}


def _rows(comp: SessionComparison, sigs_by_row: dict[int, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(comp.pairs[:MAX_ROWS]):
        b = comp.base[p.base] if p.base is not None else None
        c = comp.cand[p.cand] if p.cand is not None else None
        status = p.status
        fields = comp.fields.get(i, [])
        if status == "equal" and fields:
            status = "changed"
        key = b.key if b is not None else c.key if c is not None else ""
        rows.append({
            "status": status, "key": key, "baseline": _side(b), "candidate": _side(c),
            "fields": list(fields), "_sigs": sigs_by_row.get(i, []),
        })  # fmt: skip
    return rows


_FOLDABLE = ("changed_value", "type_changed")


def fold_across_events(
    differences: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One finding for a field that changed the same way in several events.

    Groups of the same kind, route and field path that affect exactly the
    same sessions (a field renamed or truncated in every event of those
    sessions, say) become one group with event ``*`` and an ``events`` list;
    anything else is left as it is. Returns the new list and a map from each
    folded signature to the signature that now stands for it.
    """
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for d in differences:
        if d["kind"] in _FOLDABLE and d["path"] and not d.get("sessions_truncated"):
            key = (d["kind"], d["route"], d["path"], tuple(sorted(d["sessions"])))
            buckets.setdefault(key, []).append(d)
    renamed: dict[str, str] = {}
    folded_ids: set[int] = set()
    out: list[dict[str, Any]] = []
    for (kind, route, path, _), group in buckets.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda d: d["event"] or "")
        signature = f"{kind} {route} * {path}"
        examples: list[dict[str, Any]] = []
        for d in group:
            for e in d["examples"]:
                if len(examples) < MAX_EXAMPLES and all(
                    x["session"] != e["session"] for x in examples
                ):
                    examples.append(e)
            renamed[d["signature"]] = signature
            folded_ids.add(id(d))
        first = group[0]
        out.append({
            **first, "signature": signature, "event": "*",
            "events": [d["event"] for d in group],
            "occurrences": sum(d["occurrences"] for d in group), "examples": examples,
            "candidate_sessions": max(d["candidate_sessions"] for d in group),
            "noise_sessions": max(d["noise_sessions"] for d in group),
        })  # fmt: skip
    out += [d for d in differences if id(d) not in folded_ids]
    return out, renamed


class DiffAccumulator:
    """Folds ``SessionResult``s into the report's groups, noise and session details.

    Pure: feed ``add()`` in capture order, then call ``finish()`` once.
    """

    def __init__(
        self,
        config: DiffConfig,
        keep_details: bool = True,
        verdict: VerdictConfig | None = None,
    ) -> None:
        self.config = config
        self.verdict_config = verdict if verdict is not None else VerdictConfig()
        self.fidelity = FidelityTally(self.verdict_config)
        self.budget = NoiseBudget()
        self.fields = FieldDistributions(config.noise.significance)
        self.field_findings: dict[str, list[dict[str, Any]]] = {}
        self.samples = LatencySamples()
        self.model = NoiseModel(config.noise)
        self.groups: dict[str, _Group] = {}
        self.details: list[dict[str, Any]] = []
        self.session_sigs: list[frozenset[str]] = []
        self.keep_details = keep_details
        self.verdicts = {"equivalent": 0, "divergent": 0, "errored": 0}
        self.divergent_sigs: Counter[frozenset[str]] = Counter()
        self.baseline_latency = LatencyHistogram()
        self.candidate_latency = LatencyHistogram()
        self.dialects: dict[str, Counter[str]] = {}

    def _group(self, f: Finding, route: str, sig: str) -> _Group:
        g = self.groups.get(sig)
        if g is None:
            g = self.groups[sig] = _Group(f.kind, route, f.event, f.path)
        return g

    def add(self, r: SessionResult) -> None:
        """Fold one session's result in."""
        if r.dialect is not None:
            self.dialects.setdefault(r.route, Counter())[r.dialect] += 1
        per_session_noise = r.noise.signatures if r.noise is not None else set()
        kept: list[tuple[str, Finding]] = []
        masked: set[str] = set()
        seen_here: set[str] = set()
        for f in r.findings:
            sig = f.signature(r.route)
            if f.kind != "error" and sig in per_session_noise:
                masked.add(sig)
                g = self._group(f, r.route, sig)
                g.masked_occurrences += 1
                continue
            kept.append((sig, f))
            g = self._group(f, r.route, sig)
            g.occurrences += 1
            if sig not in seen_here:
                seen_here.add(sig)
                g.count += 1
                if len(g.sessions) < MAX_GROUP_SESSIONS:
                    g.sessions.append(r.session)
            if len(g.examples) < MAX_EXAMPLES and all(
                e["session"] != r.session for e in g.examples
            ):
                g.examples.append({"session": r.session, "expected": f.expected,
                                   "actual": f.actual})  # fmt: skip
        for sig in masked:
            self.groups[sig].masked_sessions += 1
        if r.error is None:
            self.model.add(r.noise, {f.signature(r.route) for f in r.findings})
        if r.fidelity is not None:
            self.fidelity.add(r.session, r.route, r.fidelity)
        if r.comparison is not None:
            self.baseline_latency.extend(r.comparison.base_latencies)
            self.candidate_latency.extend(r.comparison.cand_latencies)
            self.budget.add(r.route, r.comparison.base)
            if r.varying:
                self.fields.track(r.route, r.varying)
            if r.route in self.fields.tracked:
                mask = r.normalizer.mask_value if r.normalizer is not None else None
                self.fields.add_session(
                    r.session,
                    r.route,
                    [(r.comparison.base, mask), *((s, mask) for s in r.noise_streams)],
                    (r.comparison.cand, mask),
                )
            self.samples.add(
                r.route, r.comparison.base_by_event, r.comparison.cand_by_event,
                r.noise_latencies,
            )  # fmt: skip
        provisional = "errored" if r.error else "divergent" if kept else "equivalent"
        self.verdicts[provisional] += 1
        if not self.keep_details:
            if kept:
                self.divergent_sigs[frozenset(sig for sig, _ in kept)] += 1
            return
        self.session_sigs.append(frozenset(sig for sig, _ in kept))
        self.details.append({
            "session": r.session, "route": r.route, "verdict": provisional, "error": r.error,
            "baseline_session": r.baseline_session, "candidate_session": r.candidate_session,
            "dialect": r.dialect,
            "differences": [
                {"kind": f.kind, "signature": sig, "event": f.event, "path": f.path,
                 "expected": f.expected, "actual": f.actual, "row": f.row}
                for sig, f in kept[:MAX_DETAIL_DIFFERENCES]
            ],
            "differences_truncated": len(kept) > MAX_DETAIL_DIFFERENCES,
            "noise": sorted(masked),
            "handshake": r.handshake, "close": r.close,
            "rows": None, "rows_truncated": False,
            "noise_sessions": list(r.noise_sessions),
            "reproduced": round(r.fidelity.share, 4) if r.fidelity is not None else None,
            "cause": None,
            "unmet_links": list(r.fidelity.links) if r.fidelity is not None else [],
        })  # fmt: skip

    def finish(self) -> dict[str, Any]:
        """Decide noise across sessions; returns the report's computed parts.

        Keys: ``differences``, ``noise``, ``sessions``, ``timing``,
        ``session_details``.
        """
        suppressed = {sig for sig in self.groups if self.model.is_noise(sig)}
        differences: list[dict[str, Any]] = []
        noise: list[dict[str, Any]] = []
        for sig, g in self.groups.items():
            base = {"signature": sig, "kind": g.kind, "route": g.route, "event": g.event,
                    "path": g.path}  # fmt: skip
            noise_sessions = self.model.noise_sessions.get(sig, 0)
            candidate_sessions = self.model.candidate_sessions.get(sig, 0)
            if sig in suppressed:
                noise.append({
                    **base, "count": g.count + g.masked_sessions,
                    "occurrences": g.occurrences + g.masked_occurrences,
                    "candidate_sessions": candidate_sessions, "noise_sessions": noise_sessions,
                    "reason": "varies between baseline runs",
                })  # fmt: skip
                continue
            if g.masked_sessions:
                noise.append({
                    **base, "count": g.masked_sessions, "occurrences": g.masked_occurrences,
                    "candidate_sessions": candidate_sessions, "noise_sessions": noise_sessions,
                    "reason": "varies between baseline runs of the same sessions",
                })  # fmt: skip
            if g.count:
                differences.append({
                    **base, "sessions": list(g.sessions), "count": g.count,
                    "sessions_truncated": g.count > len(g.sessions),
                    "occurrences": g.occurrences, "examples": list(g.examples),
                    "candidate_sessions": candidate_sessions, "noise_sessions": noise_sessions,
                })  # fmt: skip
        self._field_checks(differences, noise)
        differences, renamed = fold_across_events(differences)
        differences.sort(key=lambda d: (-d["count"], d["signature"]))
        noise.sort(key=lambda d: (-d["count"], d["signature"]))
        self.suppressed = suppressed
        counts = {"total": sum(self.verdicts.values()), **self.verdicts}
        if self.keep_details:
            counts.update(equivalent=0, divergent=0, errored=0)
            for detail, sigs in zip(self.details, self.session_sigs, strict=True):
                self._finalize(detail, sigs, suppressed)
                for d in detail["differences"]:
                    d["signature"] = renamed.get(d["signature"], d["signature"])
                counts[detail["verdict"]] += 1
            self._mark_field_findings(counts)
        else:  # provisionally divergent sessions whose every signature turned out noise
            healed = sum(n for sigs, n in self.divergent_sigs.items() if not (sigs - suppressed))
            counts["divergent"] -= healed
            counts["equivalent"] += healed
        fidelity = self._fidelity(noise)
        verdict, reasons = decide_verdict(differences, fidelity, self.verdict_config)
        fidelity["reasons"] = reasons
        timing_summary = self.samples.summary(self.config.timing, self.verdict_config.timing)
        if self.verdict_config.timing == "gate" and timing_summary["findings"]:
            verdict = "divergent"  # [verdict] timing = "gate": a timing finding is a difference
        return {
            "verdict": verdict,
            "fidelity": fidelity,
            "differences": differences,
            "noise": noise,
            "sessions": counts,
            "timing": {
                "baseline_p50_ms": self.baseline_latency.percentile(50),
                "candidate_p50_ms": self.candidate_latency.percentile(50),
                "baseline_p95_ms": self.baseline_latency.percentile(95),
                "candidate_p95_ms": self.candidate_latency.percentile(95),
                **timing_summary,
            },
            "session_details": self.details,
            "dialects": {
                route: [name for name, _ in counts.most_common()]
                for route, counts in sorted(self.dialects.items())
            },
        }

    def _fidelity(self, noise: list[dict[str, Any]]) -> dict[str, Any]:
        v = self.verdict_config
        thresholds = {"min_session_fidelity": v.min_session_fidelity,
                      "min_reproduced": v.min_reproduced, "max_noise_share": v.max_noise_share}  # fmt: skip
        if self.fidelity.sessions:
            out, shares = self.fidelity.finish(self.model.noise_sessions)
            for detail in self.details:
                entry = shares.get(detail["session"])
                if entry is not None:
                    detail["reproduced"], detail["cause"] = round(entry[0], 4), entry[1]
        else:
            out = {"measured": False}
        out["thresholds"] = thresholds
        out["routes"] = self.budget.routes(noise, v, self.fields.volatile)
        return out

    def _field_checks(self, differences: list[dict[str, Any]], noise: list[dict[str, Any]]) -> None:
        """Add the alignment-free field findings that positional comparison called noise."""
        found = self.fields.findings()
        if not found:
            return
        reported = {d["signature"] for d in differences}
        for f in found:
            sig = signature("changed_value", f.route, f.event, f.path)
            if sig in reported:
                continue
            noise[:] = [n for n in noise if n["signature"] != sig]
            sessions = list(f.sessions)
            example = {"session": sessions[0] if sessions else None,
                       "expected": f.expected, "actual": f.actual}  # fmt: skip
            differences.append({
                "signature": sig, "kind": "changed_value", "route": f.route,
                "event": f.event, "path": f.path, "sessions": sessions,
                "count": max(len(sessions), 1), "sessions_truncated": True,
                "occurrences": f.count, "examples": [example],
                "candidate_sessions": self.model.candidate_sessions.get(sig, 0),
                "noise_sessions": self.model.noise_sessions.get(sig, 0),
                "check": "distribution", "reason": f.reason,
            })  # fmt: skip
            reported.add(sig)
            for s in sessions:
                self.field_findings.setdefault(s, []).append({
                    "kind": "changed_value", "signature": sig, "event": f.event,
                    "path": f.path, "expected": f.expected, "actual": f.actual, "row": None,
                })  # fmt: skip

    def _mark_field_findings(self, counts: dict[str, int]) -> None:
        """The sessions a field check names get its difference (and are divergent)."""
        for detail in self.details:
            found = self.field_findings.get(detail["session"])
            if not found:
                continue
            sigs = {d["signature"] for d in found}
            detail["differences"].extend(found)
            detail["noise"] = [n for n in detail["noise"] if n not in sigs]
            if detail["verdict"] == "equivalent":
                detail["verdict"] = "divergent"
                counts["equivalent"] -= 1
                counts["divergent"] += 1

    @staticmethod
    def _finalize(detail: dict[str, Any], sigs: frozenset[str], suppressed: set[str]) -> None:
        gone = sigs & suppressed
        if gone:
            detail["differences"] = [d for d in detail["differences"] if d["signature"] not in gone]
            detail["noise"] = sorted(set(detail["noise"]) | gone)
        if detail["verdict"] == "divergent" and not (sigs - suppressed):
            detail["verdict"] = "equivalent"

    def rows_wanted(self) -> list[int]:
        """Indexes of the session details that get rows (call after ``finish``).

        Every divergent and errored session up to 500, equivalent ones up to 50.
        """
        wanted, divergent, equivalent = [], 0, 0
        for i, detail in enumerate(self.details):
            if detail["verdict"] == "equivalent":
                if equivalent < MAX_EQUIVALENT_ROWS:
                    equivalent += 1
                    wanted.append(i)
            elif divergent < MAX_DIVERGENT_ROWS:
                divergent += 1
                wanted.append(i)
        return wanted

    def attach_rows(self, index: int, result: SessionResult) -> None:
        """Give a session detail its aligned rows, from the same session diffed again."""
        detail = self.details[index]
        if result.comparison is None:
            detail["rows"] = []
            return
        noise = set(detail["noise"])
        sigs_by_row: dict[int, list[str]] = {}
        sigs_by_field: dict[tuple[int, str], list[str]] = {}
        for f in result.findings:
            if f.row is not None:
                sig = f.signature(result.route)
                sigs_by_row.setdefault(f.row, []).append(sig)
                if f.path is not None:
                    sigs_by_field.setdefault((f.row, f.path), []).append(sig)
        rows = _rows(result.comparison, sigs_by_row)
        for i, row in enumerate(rows):
            row_sigs = row.pop("_sigs")
            if row["status"] != "equal" and all(s in noise for s in row_sigs):
                row["status"] = "noise"
            # Highlight only what differs for real; fields that vary between
            # baseline runs anyway (ids, clocks) are listed apart.
            quiet = [
                p
                for p in row["fields"]
                if (i, p) in sigs_by_field and all(s in noise for s in sigs_by_field[i, p])
            ]
            if quiet:
                row["fields"] = [p for p in row["fields"] if p not in quiet]
                row["noise_fields"] = quiet
        detail["rows"] = rows
        detail["rows_truncated"] = len(result.comparison.pairs) > MAX_ROWS
