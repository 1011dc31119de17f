"""Terminal output: the only place that decides about colour, width and tty.

Commands hand data to these functions; on a terminal they get rich tables
and colour, in a pipe plain, stable text.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wsshadow.replay.capture.model import Direction, Message, Session
from wsshadow.replay.capture.store import SessionSummary
from wsshadow.replay.diff.dialects import Dialect

__all__ = [
    "error",
    "note",
    "one_line",
    "print_session",
    "print_session_table",
    "progress",
    "report_style",
    "stderr_console",
    "stdout_console",
    "write_text",
]


def stdout_console() -> Console:
    """A console for results: colour only on a terminal, never wrapped in a pipe."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=not tty, width=None if tty else 200)


def stderr_console() -> Console:
    """A console for notes and errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def one_line(message: str, limit: int = 400) -> str:
    """``message`` made safe for one terminal line: no control characters, bounded length."""
    clean = "".join(c if c.isprintable() else "?" for c in message)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def report_style() -> tuple[bool, int]:
    """(colour, width) for a report printed to stdout: colour only on a terminal, honouring NO_COLOR."""
    if not sys.stdout.isatty():
        return False, 100
    color = not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    return color, max(shutil.get_terminal_size((100, 24)).columns, 60)


def write_text(text: str) -> None:
    """Write rendered text to stdout as it is (reports, already formatted)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def error(message: str) -> None:
    """One line on stderr for an error the user can act on."""
    stderr_console().print(
        f"wsshadow: error: {escape(one_line(message))}", markup=True, style="red"
    )


def note(message: str) -> None:
    """One informational line on stderr (results go to stdout)."""
    stderr_console().print(f"wsshadow: {escape(message)}")


def _fmt_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _fmt_duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}s"


def _fmt_close(s: SessionSummary) -> str:
    if s.status is not None and s.status != 101:
        return f"refused {s.status}"
    if s.closed_by == "error":
        return f"error: {s.close_error}" if s.close_error else "error"
    if s.closed_by is None:
        return "open"
    code = "-" if s.close_code is None else str(s.close_code)
    return f"{code} by {s.closed_by}"


def print_session_table(
    summaries: Iterable[SessionSummary],
    title: str = "",
    dialect_of: Callable[[SessionSummary], str] | None = None,
    scenarios: Mapping[str, str] | None = None,
    credentials: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """The ``captures ls`` table; ``dialect_of`` names each session's dialect,
    ``scenarios`` (session -> scenario) adds a scenario column, ``credentials``
    (session -> the credential names its placeholders ask for) a credentials column."""
    console = stdout_console()
    table = Table(
        title=title if console.is_terminal else None,
        box=None,
        show_edge=False,
        pad_edge=False,
    )
    for name, justify in (
        ("session", "left"),
        ("route", "left"),
        ("started", "left"),
        ("duration", "right"),
        ("client", "right"),
        ("server", "right"),
        ("close", "left"),
        ("source", "left"),
        *((("dialect", "left"),) if dialect_of is not None else ()),
        *((("scenario", "left"),) if scenarios is not None else ()),
        *((("credentials", "left"),) if credentials else ()),
    ):
        table.add_column(name, justify=justify, no_wrap=True)
    rows = 0
    for s in summaries:
        source = s.source if s.run is None else f"{s.source}:{s.run}"
        table.add_row(
            s.id,
            escape(s.route),
            _fmt_time(s.started_at),
            _fmt_duration(s.duration),
            str(s.client_messages),
            str(s.server_messages),
            escape(_fmt_close(s)),
            escape(source),
            *((escape(dialect_of(s)),) if dialect_of is not None else ()),
            *((scenarios.get(s.id, "-"),) if scenarios is not None else ()),
            *((escape(",".join(credentials.get(s.id, ())) or "-"),) if credentials else ()),
        )
        rows += 1
    console.print(table)
    if console.is_terminal:
        console.print(f"{rows} sessions", style="dim")


def payload_preview(message: Message, full: bool = False, limit: int = 160) -> str:
    """A one-line view of a payload: text as text, bytes as a length and hex prefix."""
    if isinstance(message.payload, str):
        text = message.payload if full else message.payload.replace("\n", "\\n")
        if not full and len(text) > limit:
            text = text[:limit] + f"… ({len(message.payload)} chars)"
        return text
    data = message.payload
    shown = data if full else data[:32]
    more = "" if full or len(data) <= 32 else "…"
    return f"<{len(data)} bytes> {shown.hex(' ')}{more}"


def print_session(
    session: Session, full: bool = False, dialect: Dialect | None = None, raw: bool = False
) -> None:
    """The ``captures show`` view: handshake, then every message with time and direction.

    With a ``dialect`` that decodes, its events (key, correlation id, value)
    instead of the frames as stored, unless ``raw``.
    """
    console = stdout_console()
    h = session.handshake
    p = session.provenance
    console.print(f"session   {session.id}")
    console.print(
        f"started   {_fmt_time(session.started_at)}  source {p.source.value}"
        + (f"  run {p.run} (from {p.origin})" if p.run else "")
    )
    console.print(f"route     {escape(h.route)}" + (f"?{escape(h.query)}" if h.query else ""))
    if h.subprotocols:
        console.print(f"offered   {escape(', '.join(h.subprotocols))}")
    console.print(
        f"status    {h.status if h.status is not None else 'no response'}"
        + (f"  subprotocol {escape(h.subprotocol)}" if h.subprotocol else "")
    )
    for name, value in h.request_headers:
        console.print(f"  > {escape(name)}: {escape(value)}")
    for name, value in h.response_headers:
        console.print(f"  < {escape(name)}: {escape(value)}")
    if dialect is not None:
        console.print(f"dialect   {dialect.name} ({escape(dialect.title)})")
    console.print()
    if dialect is not None and dialect.decodes and not raw:
        _print_events(console, session, dialect, full)
    else:
        _print_frames(console, session, full)
    c = session.close
    if c is None:
        console.print("(no close recorded)")
    else:
        what = f"closed by {c.by.value}"
        if c.code is not None:
            what += f" with {c.code}"
        if c.reason:
            what += f" {escape(repr(c.reason))}"
        if c.error:
            what += f": {escape(c.error)}"
        t = f"{c.t:9.3f}s" if c.t is not None else " " * 10
        console.print(f"{t}  {what}")


def _print_frames(console: Console, session: Session, full: bool) -> None:
    """The frames as stored: time, direction, opcode, payload."""
    for m in session.messages:
        arrow = "C→S" if m.direction is Direction.CLIENT else "S→C"
        style = "cyan" if m.direction is Direction.CLIENT else "green"
        console.print(
            f"{m.t:9.3f}s  {arrow}  {m.opcode.value:<6} {escape(payload_preview(m, full))}",
            style=style if console.is_terminal else None,
        )


def _print_events(console: Console, session: Session, dialect: Dialect, full: bool) -> None:
    """Decoded events: time, direction, event key, #correlation id, value (control dimmed)."""
    for m, ev in dialect.decode(session.messages):
        arrow = "C→S" if m.direction is Direction.CLIENT else "S→C"
        style = "dim" if ev.control else "cyan" if m.direction is Direction.CLIENT else "green"
        corr = f" #{ev.corr}" if ev.corr is not None else ""
        tag = " (reply)" if ev.reply else " (control)" if ev.control else ""
        value = "" if ev.value is None else " " + json.dumps(ev.value, ensure_ascii=False)
        if not full and len(value) > 160:
            value = value[:160] + "…"
        console.print(
            f"{m.t:9.3f}s  {arrow}  event  {escape(ev.key)}{escape(corr)}{tag}{escape(value)}",
            style=style if console.is_terminal else None,
        )


@contextmanager
def progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback that draws a progress bar on a terminal, nothing in a pipe."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{escape(description)}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        yield update
