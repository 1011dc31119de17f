"""The Markdown report for a pull-request comment, always under 65,000 characters.

Verdict, counts, a table of the top difference groups, noise and timing, then
one collapsible ``<details>`` section per group with an example, added while
the budget lasts. Payload text is escaped: table cells backslash-escape
Markdown and entity-escape HTML; examples sit in fenced code blocks whose
fence is longer than any backtick run inside.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from wsshadow.replay.report.common import (
    Example,
    clean_text,
    count_word,
    details_by_session,
    dialects_text,
    example_for,
    fidelity_reasons,
    p_text,
    share,
    side_stats,
    sorted_groups,
    timing_findings,
    timing_headline,
    timing_method,
    truncate,
)

__all__ = ["MAX_CHARS", "md_escape", "render_markdown"]

MAX_CHARS = 65_000
"""GitHub refuses comments over 65,536 characters; we stay under this bound."""

MAX_TABLE_GROUPS = 25
MAX_NOISE = 10
MAX_DETAIL_CHARS = 6_000
MAX_PAYLOAD_CHARS = 2_500
MAX_SESSIONS_LISTED = 20

# Inline Markdown that could start markup inside a paragraph or a table cell.
# Cells and paragraphs never start with our payload text, so line-start
# markers (#, -, +, 1.) need no escaping.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(text: Any, limit: int | None = None) -> str:
    """Text safe in a Markdown table cell or paragraph: no markup, no HTML, no mentions, one line."""
    s = clean_text(str(text))
    if limit:
        s = truncate(s, limit)
    s = html.escape(s, quote=False)  # & < > as entities: no raw HTML reaches the page
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("@", "@&#8203;")  # no @mentions from payloads


def _summary_escape(text: Any, limit: int = 200) -> str:
    """Text inside ``<summary>`` (raw HTML: no Markdown processing there).

    Brackets become entities and ``@`` gets a zero-width space anyway: some
    renderers do process Markdown there, and GitHub links mentions in any text.
    """
    s = html.escape(truncate(clean_text(str(text)), limit), quote=True)
    return s.replace("[", "&#91;").replace("]", "&#93;").replace("@", "@&#8203;")


def _fence(body: str, info: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _json_block(value: Any, present: bool) -> str:
    if not present:
        return "_(absent)_"
    body = clean_text(json.dumps(value, ensure_ascii=False, indent=2), keep_newlines=True)
    body = truncate(body, MAX_PAYLOAD_CHARS)
    return _fence(body, "json")


def _target(side: Any) -> str:
    if not isinstance(side, dict):
        return "-"
    text = md_escape(side.get("target") or "-", 200)
    if side.get("run"):
        text += f" (run {md_escape(side['run'], 100)})"
    return text


def _head(report: dict[str, Any]) -> list[str]:
    s = report["sessions"]
    if report["verdict"] == "equivalent":
        verdict = (
            f"### ✅ wsshadow: equivalent — no differences in {count_word(s['total'], 'session')}"
        )
    elif report["verdict"] == "divergent" and not report["differences"] and timing_findings(report):
        verdict = f"### ❌ wsshadow: divergent — {timing_headline(report)}"
    elif report["verdict"] == "inconclusive":
        verdict = (
            f"### ⚠️ wsshadow: inconclusive — no differences in "
            f"{count_word(s['total'], 'session')}, but not enough evidence of equivalence"
        )
    else:
        groups = len(report["differences"])
        verdict = (
            f"### ❌ wsshadow: divergent — {count_word(groups, 'difference group')} in "
            f"{s['divergent'] + s['errored']:,} of {count_word(s['total'], 'session')}"
        )
    lines = [verdict]
    reasons = fidelity_reasons(report)
    if reasons:
        lines.append("")
        lines += [f"- ⚠️ {md_escape(r, 500)}" for r in reasons[:10]]
    lines += [
        "",
        f"**{s['total']:,}** sessions: **{s['equivalent']:,}** equivalent · "
        f"**{s['divergent']:,}** divergent · **{s['errored']:,}** errored",
        "",
        f"Baseline {_target(report.get('baseline'))} → candidate {_target(report.get('candidate'))}",
    ]
    fidelity = report.get("fidelity")
    if isinstance(fidelity, dict) and fidelity.get("measured"):
        fs = fidelity.get("sessions") or {}
        total, reproduced = int(fs.get("total") or 0), int(fs.get("reproduced") or 0)
        lines += [
            "",
            f"Fidelity: **{reproduced:,}** of {count_word(total, 'session')} reproduced by the "
            f"baseline replay ({share(reproduced, total)})",
        ]
        for c in (fidelity.get("causes") or [])[:5]:
            if isinstance(c, dict):
                lines.append(f"- {int(c.get('count') or 0):,} × {md_escape(c.get('cause'), 300)}")
    dialects = dialects_text(report)
    if dialects is not None:
        lines += ["", f"Dialects: {md_escape(dialects, 500)}"]
    timing = report.get("timing")
    if isinstance(timing, dict) and timing:

        def ms(key: str) -> str:
            v = timing.get(key)
            return f"{v:,.1f} ms" if isinstance(v, int | float) else "-"

        lines += [
            "",
            "| latency | baseline | candidate |",
            "| --- | ---: | ---: |",
            f"| p50 | {ms('baseline_p50_ms')} | {ms('candidate_p50_ms')} |",
            f"| p95 | {ms('baseline_p95_ms')} | {ms('candidate_p95_ms')} |",
        ]
    return lines


def _groups_table(report: dict[str, Any], groups: list[dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    total = report["sessions"]["total"]
    lines = [
        "",
        "#### Differences",
        "",
        "| # | difference | sessions | share | example |",
        "| ---: | --- | ---: | ---: | --- |",
    ]
    for i, g in enumerate(groups[:MAX_TABLE_GROUPS], 1):
        examples = g.get("examples") or []
        sessions = g.get("sessions") or []
        example = (examples[0].get("session") if examples else None) or (
            sessions[0] if sessions else "-"
        )
        count = int(g.get("count") or 0)
        lines.append(
            f"| {i} | {md_escape(g['signature'], 300)} | {count:,} | "
            f"{share(count, total)} | {md_escape(example, 80)} |"
        )
    if len(groups) > MAX_TABLE_GROUPS:
        lines += [
            "",
            f"… and {count_word(len(groups) - MAX_TABLE_GROUPS, 'more group')} "
            "(see the HTML or JSON report).",
        ]
    return lines


def _noise(report: dict[str, Any]) -> list[str]:
    noise = sorted_groups(report["noise"])
    if not noise:
        return ["", "No noise suppressed."]
    occurrences = sum(int(n.get("count") or 0) for n in noise)
    lines = [
        "",
        f"<details><summary>Noise suppressed: {count_word(len(noise), 'signature')}, "
        f"{count_word(occurrences, 'occurrence')}</summary>",
        "",
        "| signature | occurrences | reason |",
        "| --- | ---: | --- |",
    ]
    for n in noise[:MAX_NOISE]:
        lines.append(
            f"| {md_escape(n['signature'], 300)} | {int(n.get('count') or 0):,} | "
            f"{md_escape(n.get('reason') or '', 200)} |"
        )
    if len(noise) > MAX_NOISE:
        lines += ["", f"… and {count_word(len(noise) - MAX_NOISE, 'more signature')}."]
    lines += ["", "</details>"]
    return lines


MAX_TIMING = 20


def _timing_findings(report: dict[str, Any]) -> list[str]:
    found = timing_findings(report)
    method = timing_method(report)
    if not found:
        return [] if method is None else ["", f"No timing findings ({md_escape(method, 600)})."]
    lines = [
        "",
        f"#### ⏱ {md_escape(timing_headline(report) or '', 200)}",
        "",
        "| event | median (ms) base → cand | p95 (ms) base → cand | samples | p |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for f in found[:MAX_TIMING]:
        b, c = side_stats(f, "baseline"), side_stats(f, "candidate")
        lines.append(
            f"| {md_escape(f['signature'], 300)} | {b[0]} → {c[0]} | {b[1]} → {c[1]} | "
            f"{b[2]} / {c[2]} | {p_text(f)} |"
        )
    if len(found) > MAX_TIMING:
        lines += ["", f"… and {count_word(len(found) - MAX_TIMING, 'more')}."]
    if method is not None:
        lines += ["", f"_{md_escape(method, 600)}_"]
    return lines


def _detail(i: int, group: dict[str, Any], ex: Example) -> str:
    sessions = [str(s) for s in group.get("sessions") or []]
    count = int(group.get("count") or len(sessions))
    listed = ", ".join(md_escape(s, 80) for s in sessions[:MAX_SESSIONS_LISTED])
    if len(sessions) > MAX_SESSIONS_LISTED:
        listed += f", … ({len(sessions) - MAX_SESSIONS_LISTED:,} more)"
    where = f"session {ex.session}, {ex.where}" if ex.session else ex.where
    fields = ", ".join(".".join(f) for f in ex.fields if f)
    parts = [
        f"<details><summary>{i}. {_summary_escape(group['signature'])} — "
        f"{count_word(count, 'session')}</summary>",
        "",
        f"Sessions: {listed or '-'}",
        "",
        f"Example ({md_escape(where, 200)})"
        + (f", differing: {md_escape(fields, 300)}" if fields else "")
        + ":",
        "",
        "**expected (baseline)**",
        "",
        _json_block(ex.expected, ex.expected_present),
        "",
        "**actual (candidate)**",
        "",
        _json_block(ex.actual, ex.actual_present),
        "",
        "</details>",
    ]
    text = "\n".join(parts)
    if len(text) > MAX_DETAIL_CHARS:
        # A single huge example would starve the others: show the values only.
        parts[8] = _fence(truncate(clean_text(json.dumps(ex.expected, ensure_ascii=False)), 1500))
        parts[12] = _fence(truncate(clean_text(json.dumps(ex.actual, ensure_ascii=False)), 1500))
        text = "\n".join(parts)
    return text


def render_markdown(report: dict[str, Any], *, max_chars: int = MAX_CHARS) -> str:
    """The Markdown report, guaranteed shorter than ``max_chars`` characters."""
    groups = sorted_groups(report["differences"])
    head = "\n".join(
        _head(report) + _groups_table(report, groups) + _noise(report) + _timing_findings(report)
    )
    footer_room = 200
    if len(head) + footer_room >= max_chars:  # only with absurd limits
        return truncate(head, max_chars - 1)
    out = [head]
    used = len(head)
    details = details_by_session(report)
    shown = 0
    if groups:
        title = "\n\n#### Examples\n"
        out.append(title)
        used += len(title)
    for i, group in enumerate(groups, 1):
        block = "\n" + _detail(i, group, example_for(group, details)) + "\n"
        if used + len(block) + footer_room >= max_chars:
            break
        out.append(block)
        used += len(block)
        shown += 1
    if shown < len(groups):
        out.append(
            f"\n_{count_word(len(groups) - shown, 'more group')} not shown here "
            "(comment size limit): see the HTML or JSON report._\n"
        )
    text = "".join(out).rstrip("\n") + "\n"
    return text if len(text) < max_chars else truncate(text, max_chars - 1)
