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
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.diff.align import align_streams
from wsshadow.replay.diff.normalize import Normalized, Normalizer
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
    the right; client messages are marked ``→``, server messages ``←``.
    Client messages are paired in order (they are the replay's own). A live
    server message is paired as the diff aligns streams: with the next
    recorded server message of the same event key not yet paired (one that
    was skipped, when the live stream reorders), compared with the diff's
    masks and ignore rules: ``=`` equal, ``≠`` different, ``+`` not in the
    recording. When the session ends, the recorded messages that never came
    are listed (``-``), and the two whole streams are aligned by the diff's
    aligner for a one-line count. A causal wait that timed out shows in
    place. Payloads are cut (with ``…``) only on a terminal too narrow for them.
    """

    LOOKAHEAD = 200

    def __init__(self, console: Console | None = None, config: DiffConfig | None = None) -> None:
        self.console = console or stdout_console()
        self.config = config if config is not None else DiffConfig()
        self.narrow = self.console.is_terminal
        self.column = max(24, (self.console.width - 30) // 2) if self.narrow else 0
        self.norm: Normalizer | None = None
        self.route_config = self.config.for_route("")
        self.expected: list[Normalized] = []
        self.expected_messages: tuple[Message, ...] = ()
        self.paired: list[bool] = []
        self.cursor = 0
        self.live: list[Normalized] = []

    def session_started(self, origin: str, url: str) -> None:
        self.console.print(f"replaying {escape(origin)} against {escape(url)}")
        self.console.print(f"{'live':>9}    {'':<{self.column or 40}}    {'recorded':>9}")

    def recorded(self, origin: str, route: str, server: tuple[Message, ...]) -> None:
        self.route_config = self.config.for_route(route)
        self.norm = Normalizer(self.route_config)
        self.expected_messages = tuple(m for m in server if self.norm.message(m) is not None)
        self.expected = [n for n in map(self.norm.message, self.expected_messages) if n]
        self.paired = [False] * len(self.expected)
        self.cursor = 0
        self.live = []

    def waited(self, origin: str, seconds: float, messages: int) -> None:
        what = f"{messages} message{'s' * (messages != 1)}" if messages else "messages"
        self.console.print(
            f"{'':>9}    waited {seconds:.1f} s for {what} that never came",
            style="yellow" if self.console.is_terminal else None,
        )

    def message(self, origin: str, replayed: Message, recorded: Message | None) -> None:
        if replayed.direction is Direction.CLIENT or self.norm is None:
            self._line(replayed, recorded, self._mark(replayed, recorded))
            return
        live = self.norm.message(replayed)
        if live is None:
            return
        self.live.append(live)
        j = self._pair(live.key)
        if j is None:
            self._line(replayed, None, "+")
            return
        ref = self.expected[j]
        mark = "=" if self.norm.equivalent(live, ref) or self._same(live, ref) else "≠"
        self._line(replayed, self.expected_messages[j], mark)

    def _pair(self, key: str) -> int | None:
        """The recorded message this live one stands for: same key, first not yet paired."""
        for j in range(min(self.cursor, len(self.expected))):
            if not self.paired[j] and self.expected[j].key == key:  # skipped before: reordered
                self.paired[j] = True
                return j
        for j in range(self.cursor, min(len(self.expected), self.cursor + self.LOOKAHEAD)):
            if not self.paired[j] and self.expected[j].key == key:
                self.paired[j] = True
                self.cursor = j + 1
                return j
        return None

    def _same(self, a: Normalized, b: Normalized) -> bool:
        assert self.norm is not None
        return a.format == b.format == "json" and self.norm.comparable(a) == self.norm.comparable(b)

    @staticmethod
    def _mark(replayed: Message, recorded: Message | None) -> str:
        if recorded is None:
            return "+"
        return "=" if recorded.payload == replayed.payload else "≠"

    def _line(self, replayed: Message, recorded: Message | None, mark: str) -> None:
        arrow = "→" if replayed.direction is Direction.CLIENT else "←"
        live = self._cut(payload_preview(replayed, full=not self.narrow))
        if recorded is None:
            right, t_rec = "(not in the recording)", " " * 9
        else:
            right = self._cut(payload_preview(recorded, full=not self.narrow))
            t_rec = f"{recorded.t:8.3f}s"
        style = None
        if self.console.is_terminal:
            style = "green" if mark == "=" else ("yellow" if mark == "≠" else "red")
            if replayed.direction is Direction.CLIENT:
                style = "cyan"
        pad = self.column or max(40, len(live))
        self.console.print(
            f"{replayed.t:8.3f}s {arrow}  {escape(live):<{pad}} {mark}  {t_rec} {escape(right)}",
            style=style,
            soft_wrap=not self.narrow,
        )

    def session_finished(self, outcome: SessionOutcome) -> None:
        for j, done in enumerate(self.paired):
            if not done:
                m = self.expected_messages[j]
                right = self._cut(payload_preview(m, full=not self.narrow))
                self.console.print(
                    f"{'':>9} ←  {'(never received)':<{self.column or 40}} -  "
                    f"{m.t:8.3f}s {escape(right)}",
                    style="red" if self.console.is_terminal else None,
                    soft_wrap=not self.narrow,
                )
        if self.norm is not None and (self.expected or self.live):
            counts = self._aligned()
            self.console.print(
                "aligned as the diff aligns them: "
                + ", ".join(f"{n} {status}" for status, n in counts.items() if n)
            )
        self.norm = None
        c = outcome.close
        if outcome.error is not None:
            self.console.print(f"session {escape(outcome.origin)}: {escape(outcome.error)}")
        elif c is not None:
            code = "-" if c.code is None else str(c.code)
            self.console.print(
                f"closed by {c.by.value} with {code}; {outcome.server_messages} server messages "
                f"(recorded {outcome.recorded_server_messages})"
            )

    def _aligned(self) -> dict[str, int]:
        assert self.norm is not None
        rc = self.route_config
        loose = {k for k, rule in rc.background.items() if rule.unordered}
        pairs = align_streams(
            [n.key for n in self.expected], [n.key for n in self.live], rc.ordering, loose
        )
        counts = {"equal": 0, "different": 0, "moved": 0, "missing": 0, "extra": 0}
        for p in pairs:
            if p.base is None:
                counts["extra"] += 1
            elif p.cand is None:
                counts["missing"] += 1
            elif p.moved:
                counts["moved"] += 1
            else:
                a, b = self.expected[p.base], self.live[p.cand]
                same = self.norm.equivalent(a, b) or self._same(a, b)
                counts["equal" if same else "different"] += 1
        return counts

    def _cut(self, text: str) -> str:
        if not self.narrow or len(text) <= self.column:
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
    if result.causal_timeouts:
        waited = sum(1 for o in result.outcomes if o.causal_timeouts)
        n = result.causal_timeouts
        console.print(
            f"  causal waits timed out {n} time{'s' * (n != 1)} in {waited} "
            f"session{'s' * (waited != 1)}: {result.causal_waited:.1f} s lost waiting for "
            "server messages that never came"
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
