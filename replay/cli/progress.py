"""Terminal output for ``wsshadow replay``: progress bar, ``--follow`` view, summary.

Like ``replay.output``, this is where terminal decisions live: a progress
bar only when stderr is a terminal, colour only on a terminal, plain stable
lines in a pipe. The engine never prints; it calls these observers.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wsshadow.replay.capture.model import Direction, Message
from wsshadow.replay.cli.console import payload_preview, stderr_console, stdout_console
from wsshadow.replay.engine.run import ReplayObserver, RunResult, SessionOutcome

__all__ = ["FollowView", "ProgressBar", "print_run_summary"]


class ProgressBar(ReplayObserver):
    """A rich progress bar on stderr, shown only when stderr is a terminal.

    Use as a context manager around the run.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stderr_console()
        self.enabled = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.enabled,
        )
        self.tasks: dict[str, Any] = {}
        self.errors: dict[str, int] = {}

    def __enter__(self) -> ProgressBar:
        if self.enabled:  # a disabled rich Progress still writes a newline on stop (rich < 15)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def run_started(self, run: str, total: int) -> None:
        # One bar per run: shadow replays several runs at once through one observer.
        self.tasks[run] = self.progress.add_task(f"replay {run}", total=total, errors=0)
        self.errors[run] = 0

    def session_finished(self, outcome: SessionOutcome) -> None:
        run = outcome.session_id.split(":", 1)[0]
        task = self.tasks.get(run)
        if task is None:
            return
        if outcome.error is not None:
            self.errors[run] += 1
        self.progress.update(task, advance=1, errors=self.errors[run])


class FollowView(ReplayObserver):
    """``--follow``: the live and the recorded streams side by side, as they happen.

    Each line: live time and payload on the left, recorded time and payload on
    the right, ``=`` between them when the payloads are equal and ``≠`` when
    not; client messages are marked ``→``, server messages ``←``.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or stdout_console()
        width = self.console.width if self.console.is_terminal else 160
        self.column = max(24, (width - 30) // 2)

    def session_started(self, origin: str, url: str) -> None:
        self.console.print(f"replaying {escape(origin)} against {escape(url)}")
        self.console.print(f"{'live':>9}    {'':<{self.column}}    {'recorded':>9}")

    def message(self, origin: str, replayed: Message, recorded: Message | None) -> None:
        arrow = "→" if replayed.direction is Direction.CLIENT else "←"
        live = self._cut(payload_preview(replayed))
        if recorded is None:
            right, mark, t_rec = "(not in the recording)", "+", " " * 9
        else:
            right = self._cut(payload_preview(recorded))
            mark = "=" if recorded.payload == replayed.payload else "≠"
            t_rec = f"{recorded.t:8.3f}s"
        style = None
        if self.console.is_terminal:
            style = "green" if mark == "=" else ("yellow" if mark == "≠" else "red")
            if replayed.direction is Direction.CLIENT:
                style = "cyan"
        self.console.print(
            f"{replayed.t:8.3f}s {arrow}  {escape(live):<{self.column}} {mark}  {t_rec} {escape(right)}",
            style=style,
        )

    def session_finished(self, outcome: SessionOutcome) -> None:
        c = outcome.close
        if outcome.error is not None:
            self.console.print(f"session {escape(outcome.origin)}: {escape(outcome.error)}")
        elif c is not None:
            code = "-" if c.code is None else str(c.code)
            self.console.print(
                f"closed by {c.by.value} with {code}; {outcome.server_messages} server messages "
                f"(recorded {outcome.recorded_server_messages})"
            )

    def _cut(self, text: str) -> str:
        if len(text) <= self.column:
            return text
        return text[: self.column - 1] + "…"


def print_run_summary(result: RunResult, *, errors_shown: int = 5) -> None:
    """A few lines on stdout: counts, rates, and the first session errors."""
    console = stdout_console()
    seconds = max(result.ended_at - result.started_at, 1e-9)
    console.print(
        f"run {escape(result.run)} against {escape(result.target)}: "
        f"{result.sessions} sessions, {result.completed} completed, {result.errors} errors; "
        f"{result.messages_sent} messages sent, {result.messages_received} received; "
        f"{seconds:.2f}s ({result.sessions / seconds:.1f} sessions/s)"
    )
    shown = 0
    for outcome in result.outcomes:
        if outcome.error is None:
            continue
        if shown == errors_shown:
            console.print(f"  ... and {result.errors - shown} more errors")
            break
        console.print(f"  {escape(outcome.origin)}: {escape(outcome.error)}")
        shown += 1
