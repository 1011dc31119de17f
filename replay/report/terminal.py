"""The terminal report (rich): verdict, counts, difference groups, noise, timing, examples.

Rendered to a string for a given width and colour flag, so that the same
call serves a terminal (colour) and a pipe or a golden test (plain, stable).
"""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from wsshadow.replay.report.common import (
    Example,
    clean_text,
    count_word,
    details_by_session,
    dialects_text,
    example_for,
    fidelity_reasons,
    is_marked,
    p_text,
    pretty_lines,
    share,
    side_stats,
    sorted_groups,
    timing_findings,
    timing_gates,
    timing_headline,
    timing_method,
    truncate,
)

__all__ = ["render_terminal"]

MAX_GROUPS = 20
MAX_NOISE = 5
MAX_ERRORED = 10
MAX_EXAMPLE_LINES = 30


def _t(value: Any) -> str:
    return clean_text(str(value))


def _verdict(report: dict[str, Any]) -> Text:
    s = report["sessions"]
    groups = len(report["differences"])
    if report["verdict"] == "equivalent":
        line = Text("EQUIVALENT", style="bold green")
        line.append(f"  no differences in {count_word(s['total'], 'session')}", style="green")
    elif report["verdict"] == "inconclusive":
        line = Text("INCONCLUSIVE", style="bold yellow")
        line.append(
            f"  no differences in {count_word(s['total'], 'session')}, "
            "but not enough evidence of equivalence",
            style="yellow",
        )
    else:
        affected = s["divergent"] + s["errored"]
        line = Text("DIVERGENT", style="bold red")
        line.append(
            f"  {count_word(groups, 'difference group')} in {affected:,} of "
            f"{count_word(s['total'], 'session')}",
            style="red",
        )
    headline = timing_headline(report)
    if headline is not None and report["verdict"] == "divergent" and not groups:
        return Text(f"DIVERGENT  {headline}", style="bold red")
    if headline is not None:
        line.append(f"  · {headline}", style="red" if timing_gates(report) else "yellow")
    return line


def _reasons(report: dict[str, Any]) -> Text | None:
    """Why the evidence falls short of equivalence: right under the verdict."""
    reasons = fidelity_reasons(report)
    if not reasons:
        return None
    out = Text()
    for i, reason in enumerate(reasons):
        if i:
            out.append("\n")
        out.append(f"  {_t(truncate(reason, 400))}", style="yellow")
    return out


def _fidelity(report: dict[str, Any]) -> RenderableType | None:
    """Replay fidelity and the routes' noise budget (schema_version 2 reports)."""
    f = report.get("fidelity")
    if not isinstance(f, dict):
        return None
    if not f.get("measured"):
        return _budget(f)
    s = f.get("sessions") or {}
    ev = f.get("events") or {}
    total, reproduced = int(s.get("total") or 0), int(s.get("reproduced") or 0)
    head = Text("Fidelity  ", style="bold")
    head.append(
        f"{reproduced:,} of {count_word(total, 'session')} reproduced by the baseline replay "
        f"({share(reproduced, total)}) · {int(ev.get('reproduced') or 0):,} of "
        f"{int(ev.get('recorded') or 0):,} recorded events"
    )
    parts: list[RenderableType] = [head]
    causes = [c for c in f.get("causes") or [] if isinstance(c, dict)]
    if causes:
        table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2))
        table.add_column(justify="right", no_wrap=True)
        table.add_column(overflow="fold", ratio=1)
        table.add_column(style="dim", overflow="fold", max_width=24)
        for c in causes[:MAX_NOISE]:
            sessions = c.get("sessions") or []
            table.add_row(
                f"{int(c.get('count') or 0):,}",
                _t(truncate(str(c.get("cause") or ""), 300)),
                _t(str(sessions[0])) if sessions else "",
            )
        parts.append(table)
    budget = _budget(f)
    if budget is not None:
        parts.append(budget)
    return Group(*parts)


def _budget(f: dict[str, Any]) -> Text | None:
    """One line: each route's share of compared values suppressed as noise."""
    routes = [r for r in f.get("routes") or [] if isinstance(r, dict)]
    if not routes:
        return None
    line = Text("Noise budget  ", style="bold")
    line.append(
        " · ".join(
            f"{_t(str(r.get('route')))} {float(r.get('suppressed_share') or 0):.1%}"
            + ("" if r.get("comparable", True) else " (not comparable)")
            for r in routes[:MAX_GROUPS]
        )
    )
    limit = (f.get("thresholds") or {}).get("max_noise_share")
    if isinstance(limit, int | float):
        line.append(f"  of compared values suppressed as noise (max {limit:.0%})", "dim")
    return line


def _target(side: Any) -> str:
    if not isinstance(side, dict):
        return "-"
    target = side.get("target") or "-"
    run = side.get("run")
    return _t(f"{target} (run {run})" if run else target)


def _header(report: dict[str, Any]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    t.add_row("baseline", _target(report.get("baseline")))
    t.add_row("candidate", _target(report.get("candidate")))
    if report.get("capture"):
        t.add_row("capture", _t(report["capture"]))
    if report.get("noise_runs"):
        t.add_row("noise runs", _t(", ".join(str(r) for r in report["noise_runs"])))
    if report.get("generated_at"):
        t.add_row("generated", _t(report["generated_at"]))
    dialects = dialects_text(report)
    if dialects is not None:
        t.add_row("dialects", _t(dialects))
    return t


def _sessions(report: dict[str, Any]) -> Text:
    s = report["sessions"]
    line = Text("Sessions  ", style="bold")
    line.append(f"{s['total']:,} total")
    line.append("  ·  ")
    line.append(f"{s['equivalent']:,} equivalent", style="green")
    line.append("  ·  ")
    line.append(f"{s['divergent']:,} divergent", style="red" if s["divergent"] else None)
    line.append("  ·  ")
    line.append(f"{s['errored']:,} errored", style="magenta" if s["errored"] else None)
    return line


def _groups(report: dict[str, Any], groups: list[dict[str, Any]]) -> RenderableType:
    total = report["sessions"]["total"]
    if not groups:
        return Text("No differences.", style="green")
    table = Table(title=None, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("difference", overflow="fold", ratio=1)
    table.add_column("sessions", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("example", overflow="fold", max_width=24)
    for i, g in enumerate(groups[:MAX_GROUPS], 1):
        examples = g.get("examples") or []
        sessions = g.get("sessions") or []
        example = (examples[0].get("session") if examples else None) or (
            sessions[0] if sessions else "-"
        )
        count = int(g.get("count") or 0)
        table.add_row(str(i), _t(g["signature"]), f"{count:,}", share(count, total), _t(example))
    parts: list[RenderableType] = [Text("Differences", style="bold"), table]
    if len(groups) > MAX_GROUPS:
        parts.append(
            Text(f"… and {count_word(len(groups) - MAX_GROUPS, 'more group')}", style="dim")
        )
    return Group(*parts)


def _noise(report: dict[str, Any]) -> RenderableType:
    noise = sorted_groups(report["noise"])
    occurrences = sum(int(n.get("count") or 0) for n in noise)
    head = Text("Noise suppressed  ", style="bold")
    head.append(
        f"{count_word(len(noise), 'signature')}, {count_word(occurrences, 'occurrence')}",
        style="dim" if not noise else None,
    )
    if not noise:
        return head
    table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="fold", ratio=1)
    table.add_column(style="dim", overflow="fold", max_width=36)
    for n in noise[:MAX_NOISE]:
        table.add_row(
            f"{int(n.get('count') or 0):,}", _t(n["signature"]), _t(n.get("reason") or "")
        )
    parts: list[RenderableType] = [head, table]
    if len(noise) > MAX_NOISE:
        parts.append(
            Text(f"  … and {count_word(len(noise) - MAX_NOISE, 'more signature')}", style="dim")
        )
    return Group(*parts)


def _ms(value: Any) -> str:
    return f"{value:,.1f} ms" if isinstance(value, int | float) else "-"


def _change(base: Any, cand: Any) -> Text:
    if not isinstance(base, int | float) or not isinstance(cand, int | float) or base <= 0:
        return Text("")
    ratio = cand / base
    style = "red" if ratio >= 1.5 else ("yellow" if ratio > 1.1 else "green")
    return Text(f"×{ratio:.2f}", style=style)


def _timing(report: dict[str, Any]) -> RenderableType:
    timing = report.get("timing")
    if not isinstance(timing, dict) or not timing:
        return Text("Timing  no latency measured", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("latency")
    table.add_column("baseline", justify="right")
    table.add_column("candidate", justify="right")
    table.add_column("ratio", justify="right")
    for p in ("p50", "p95"):
        b, c = timing.get(f"baseline_{p}_ms"), timing.get(f"candidate_{p}_ms")
        table.add_row(p, _ms(b), _ms(c), _change(b, c))
    return Group(Text("Timing", style="bold"), table)


def _timing_findings(report: dict[str, Any]) -> RenderableType | None:
    found = timing_findings(report)
    method = timing_method(report)
    if not found and method is None:
        return None
    parts: list[RenderableType] = []
    if found:
        headline = timing_headline(report) or ""
        style = "bold red" if timing_gates(report) else "bold yellow"
        parts.append(Text(f"Timing findings  {headline}", style=style))
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("event", overflow="fold")
        for col in ("median", "p95", "samples"):
            table.add_column(f"{col} base → cand", justify="right", no_wrap=True)
        table.add_column("p", justify="right")
        for f in found:
            b, c = side_stats(f, "baseline"), side_stats(f, "candidate")
            table.add_row(
                _t(f["signature"]), f"{b[0]} → {c[0]} ms", f"{b[1]} → {c[1]} ms",
                f"{b[2]} / {c[2]}", p_text(f),
            )  # fmt: skip
        parts.append(table)
    else:
        parts.append(Text("Timing findings  none", style="bold"))
    if method is not None:
        parts.append(Text(f"  {method}", style="dim"))
    return Group(*parts)


def _side(value: Any, present: bool, marks: list[tuple[str, ...]], sign: str, style: str) -> Text:
    if not present:
        return Text("(absent)", style="dim italic")
    lines = pretty_lines(value)
    out = Text()
    for i, line in enumerate(lines[:MAX_EXAMPLE_LINES]):
        if i:
            out.append("\n")
        if is_marked(line.path, marks):
            out.append(f"{sign} {line.text}", style=style)
        else:
            out.append(f"  {line.text}")
    if len(lines) > MAX_EXAMPLE_LINES:
        out.append(f"\n  … {len(lines) - MAX_EXAMPLE_LINES} more lines", style="dim")
    return out


def _example(n: int, group: dict[str, Any], ex: Example) -> RenderableType:
    where = f"session {ex.session}, {ex.where}" if ex.session else ex.where
    title = Text(f"{n}. ", style="bold")
    title.append(_t(group["signature"]), style="bold")
    title.append(f"  ({_t(where)})", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=True)
    table.add_column("expected (baseline)", ratio=1, overflow="fold")
    table.add_column("actual (candidate)", ratio=1, overflow="fold")
    table.add_row(
        _side(ex.expected, ex.expected_present, ex.fields, "-", "bold red"),
        _side(ex.actual, ex.actual_present, ex.fields, "+", "bold green"),
    )
    return Group(title, table)


def _errored(report: dict[str, Any]) -> RenderableType | None:
    errored = [d for d in report.get("session_details") or [] if d.get("verdict") == "errored"]
    if not errored:
        return None
    table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold", ratio=1)
    for d in errored[:MAX_ERRORED]:
        table.add_row(
            _t(d["session"]),
            _t(d.get("route") or "-"),
            _t(truncate(str(d.get("error") or "error"), 300)),
        )
    parts: list[RenderableType] = [Text("Errored sessions", style="bold magenta"), table]
    if len(errored) > MAX_ERRORED:
        parts.append(Text(f"  … and {count_word(len(errored) - MAX_ERRORED, 'more')}", style="dim"))
    return Group(*parts)


def render_terminal(
    report: dict[str, Any], *, color: bool = False, width: int = 100, examples: int = 3
) -> str:
    """The terminal report as a string: ANSI colour when ``color``, else plain text."""
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=max(width, 40),
        force_terminal=color,
        color_system="truecolor" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={},
    )
    groups = sorted_groups(report["differences"])
    console.print(_verdict(report))
    reasons = _reasons(report)
    if reasons is not None:
        console.print(reasons)
    console.print(_header(report))
    console.print()
    console.print(_sessions(report))
    console.print()
    console.print(_groups(report, groups))
    errored = _errored(report)
    if errored is not None:
        console.print()
        console.print(errored)
    fidelity = _fidelity(report)
    if fidelity is not None:
        console.print()
        console.print(fidelity)
    console.print()
    console.print(_noise(report))
    console.print()
    console.print(_timing(report))
    timing_section = _timing_findings(report)
    if timing_section is not None:
        console.print()
        console.print(timing_section)
    details = details_by_session(report)
    if groups and examples > 0:
        console.print()
        shown = min(examples, len(groups))
        console.print(Text(f"Examples (top {count_word(shown, 'group')})", style="bold"))
    for i, group in enumerate(groups[:examples], 1):
        console.print(Rule(style="dim", characters="─"))
        console.print(_example(i, group, example_for(group, details)))
    if groups and len(groups) > examples:
        console.print(Rule(style="dim", characters="─"))
        console.print(Text("More examples in the HTML report: --format html", style="dim"))
    out = buf.getvalue()
    # Trailing spaces from table padding make goldens and pipes noisy.
    return "\n".join(line.rstrip() for line in out.split("\n"))
