"""``wsshadow captures``: list, show, import and export the sessions of a capture."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from wsshadow.recorders.har import looks_like_har, read_har
from wsshadow.replay.capture.identities import highest_number
from wsshadow.replay.capture.jsonl import read_jsonl, write_jsonl
from wsshadow.replay.capture.store import CaptureStore, SessionSummary
from wsshadow.replay.cli import console
from wsshadow.replay.cli.app import captures_app
from wsshadow.replay.cli.options import (
    CaptureArg,
    ConfigOpt,
    DialectOpt,
    NoRedact,
    RedactField,
    RunOpt,
    make_redactor,
    read_capture,
    with_dialects,
)
from wsshadow.replay.config import DiffConfig, discover_config
from wsshadow.replay.diff.dialects import session_dialect
from wsshadow.replay.engine.carryover import CarryRule
from wsshadow.replay.engine.scenarios import capture_links
from wsshadow.replay.errors import BadInput

__all__ = [
    "captures_export",
    "captures_import",
    "captures_ls",
    "captures_scenarios",
    "captures_show",
    "captures_upgrade",
]


def _dialects(config: Path | None, dialect: list[str] | None) -> DiffConfig:
    return with_dialects(discover_config(config).diff, dialect)


@captures_app.command("ls")
def captures_ls(
    capture: CaptureArg, run: RunOpt = None, config: ConfigOpt = None, dialect: DialectOpt = None
) -> None:
    """One row per session: id, route, start, duration, messages each way, close, source,
    dialect, (recorded sessions) the scenario it replays in, '-' when alone, and the
    credentials its placeholders ask for (authorization#2: recorded user 2)."""
    diff = _dialects(config, dialect)
    with read_capture(capture) as store:
        if run is not None and store.get_run(run) is None:
            raise BadInput(f"{capture}: no run called {run!r}")
        scenarios = None
        if run is None:
            scenarios = capture_links(store, diff.event_keys).scenario_of

        def dialect_of(s: SessionSummary) -> str:
            rc = diff.for_route(s.route)
            chosen = session_dialect(rc, store.get_session_head(s.id))
            return chosen.name if chosen is not None else "-"

        console.print_session_table(store.summaries(run), title=f"{capture}",
                                    dialect_of=dialect_of, scenarios=scenarios,
                                    credentials=store.credentials_needed(run))  # fmt: skip


@captures_app.command("scenarios")
def captures_scenarios(capture: CaptureArg, config: ConfigOpt = None) -> None:
    """The scenarios of a capture: linked sessions replayed together, and each link's evidence.

    A value link: a value the server sent to one session that another session's
    client sent later. An event link: a server message in one session caused by a
    client message in another (a shared field value, or a broadcast).
    """
    with read_capture(capture) as store:
        settings = discover_config(config)
        rules = tuple(
            CarryRule(r.server, r.client, r.event)
            for r in settings.carry_over
            if r.scope == "capture"
        )
        graph = capture_links(store, settings.diff.event_keys, rules)
        heads = {h.id: h for h in store.heads()}
        total = len(heads)
    lines = []
    for scenario, members in graph.scenarios.items():
        lines.append(f"scenario {scenario}: {len(members)} sessions")
        for sid in members:
            lines.append(f"  session {sid}  {heads[sid].route}")
        for link in graph.links_of(scenario):
            lines.append(f"  link  {link.describe()}")
    alone = total - len(graph.scenario_of)
    lines.append(f"{len(graph.scenarios)} scenarios, {alone} of {total} sessions replay alone")
    console.write_text("\n".join(lines) + "\n")


@captures_app.command("show")
def captures_show(
    capture: CaptureArg,
    session: Annotated[str, typer.Argument(help="Session id (or a unique prefix).")],
    full: Annotated[bool, typer.Option("--full", help="Print whole payloads.")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="The frames as stored, not the decoded events.")
    ] = False,
    config: ConfigOpt = None,
    dialect: DialectOpt = None,
) -> None:
    """The handshake and every message of one session, timed and direction-marked:
    decoded events (event key, #correlation id, value) in the session's dialect."""
    diff = _dialects(config, dialect)
    with read_capture(capture) as store:
        found = store.find_session(session)
        chosen = session_dialect(diff.for_route(found.route), found)
        console.print_session(found, full=full, dialect=chosen, raw=raw)


@captures_app.command("export")
def captures_export(
    capture: CaptureArg,
    out: Annotated[Path, typer.Argument(help="JSONL file to write ('-' for stdout).")],
    run: RunOpt = None,
    recorded_only: Annotated[
        bool, typer.Option("--recorded", help="Only the recorded sessions, no runs.")
    ] = False,
) -> None:
    """Write the capture's sessions as portable JSONL."""
    with read_capture(capture) as store:
        if run is not None:
            sessions = store.iter_sessions(run)
        elif recorded_only:
            sessions = store.iter_sessions()
        else:
            sessions = store.iter_all_sessions()
        if str(out) == "-":
            count = write_jsonl(sessions, sys.stdout.buffer)
        else:
            with _atomic_output(out) as f:
                count = write_jsonl(sessions, f)
    console.note(f"exported {count} sessions to {out}")


@captures_app.command("import")
def captures_import(
    source: Annotated[
        Path, typer.Argument(help='JSONL capture, or a HAR file (.har, or content {"log": ...}).')
    ],
    capture: CaptureArg,
    no_redact: NoRedact = False,
    redact_field: RedactField = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace sessions whose id is already stored.")
    ] = False,
    placeholder_header: Annotated[
        list[str] | None,
        typer.Option(
            "--placeholder-header",
            help="HAR: add a credential placeholder for this header when the export left it "
            "out, e.g. authorization for a sanitized export (repeatable).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add the sessions of a JSONL or HAR file to a capture (created if missing), redacted.

    A HAR file (Chrome/Edge/Firefox DevTools, mitmproxy) contributes its
    WebSocket entries; it is checked whole before anything is stored.
    """
    if not source.exists():
        raise BadInput(f"{source}: no such file")
    if source.is_dir():
        raise BadInput(f"{source}: is a directory")
    har = looks_like_har(source)
    if placeholder_header and not har:
        raise BadInput("--placeholder-header applies to HAR files only")
    sessions = read_har(source, placeholders=placeholder_header or ()) if har else None
    redactor = make_redactor(no_redact, redact_field)
    if not har:  # values new in this file are numbered above those it holds redacted already
        with source.open("rb") as f:
            redactor.start_above(highest_number(f))
    with (
        source.open("rb") as f,
        CaptureStore.open(capture, create=True, redactor=redactor) as store,
    ):
        count = store.put_sessions(
            sessions if sessions is not None else read_jsonl(f, str(source)),
            on_conflict="replace" if replace else "error",
        )
    kind = "WebSocket sessions from HAR" if har else "sessions"
    console.note(f"imported {count} {kind} into {capture}")


class _atomic_output:
    """Write to a fresh owner-only temporary file beside OUT and rename it on success.

    A failed export leaves no half file, the export is mode 0600 like a
    capture (it holds the same sessions), and a planted ``OUT.tmp`` symlink
    cannot redirect the write: the temporary name is new and opened O_EXCL.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp: Path | None = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as e:
            raise BadInput(f"{self.path}: cannot write ({e.strerror})") from None
        self.tmp = Path(name)
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, kind, exc, tb) -> None:  # type: ignore[no-untyped-def]
        self.f.close()
        assert self.tmp is not None
        if kind is None:
            try:
                os.replace(self.tmp, self.path)
                return
            except OSError as e:
                self.tmp.unlink(missing_ok=True)
                raise BadInput(f"{self.path}: cannot write ({e.strerror})") from None
        self.tmp.unlink(missing_ok=True)


@captures_app.command("upgrade")
def captures_upgrade(capture: CaptureArg) -> None:
    """Upgrade a capture of an older format to this wsshadow's, in place.

    Commands that only read a capture never change it (an older one is read
    through a temporary upgrade); commands that write to it upgrade it first.
    """
    if not capture.exists():
        raise BadInput(f"{capture}: no such capture file")
    with CaptureStore.open(capture, readonly=True) as peek:
        before = peek.upgraded_from
        current = peek.meta()["format_version"]
    if before is None:
        console.note(f"{capture} is capture format version {current} already")
        return
    with CaptureStore.open(capture) as store:  # opening for writing migrates
        after = store.meta()["format_version"]
    console.note(f"upgraded {capture} from capture format version {before} to {after}")
