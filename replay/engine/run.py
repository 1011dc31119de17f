"""The replay engine: play recorded client sides against a target, record what it says.

``replay_capture`` picks the recorded sessions of a capture (by id, route
pattern and shard), replays each one's client side against a target under
a pacing policy (``replay.pacing``), with credentials filled
(``replay.credentials``) and server-issued values carried over
(``replay.carryover``), and stores every replayed session as part of a
named run. An unreachable target or a refused handshake is recorded in that
session's result, never fatal to the run.

Several ``replay_capture`` calls may run at once in one event loop on the
same ``CaptureStore`` (``shadow`` replays baseline, candidate and a noise
baseline together): each writes only from the event loop thread, in small
synchronous batches, so their transactions never interleave.

This module schedules a capture's sessions and writes the run; one session's
replay is ``session.py``, the values passed in and out are ``model.py``
(re-exported here), linked sessions are ``scenarios.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import gc
import os
import ssl
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wsshadow.replay.capture.model import (
    Run,
    Session,
    Source,
)
from wsshadow.replay.capture.store import (
    BackgroundWriter,
    CaptureStore,
    FrameColumns,
    SessionHead,
)
from wsshadow.replay.engine.credentials import Credentials
from wsshadow.replay.engine.interleave import Lockstep
from wsshadow.replay.engine.links import scenario_key
from wsshadow.replay.engine.model import (
    ReplayObserver,
    ReplayOptions,
    RunResult,
    SessionOutcome,
    in_shard,
    parse_header,
    parse_shard,
)
from wsshadow.replay.engine.pacing import (
    Pace,
    plan_frames,
)
from wsshadow.replay.engine.session import _play, _Played, replay_session
from wsshadow.replay.engine.targets import parse_target
from wsshadow.replay.errors import BadInput, CaptureError

if TYPE_CHECKING:
    from wsshadow.replay.engine.scenario_pacing import SessionHooks

__all__ = [
    "ReplayObserver",
    "ReplayOptions",
    "RunResult",
    "SessionOutcome",
    "in_shard",
    "parse_header",
    "parse_shard",
    "replay_capture",
    "replay_session",
    "select_sessions",
]

_BATCH = 100


def select_sessions(store: CaptureStore, options: ReplayOptions) -> list[SessionHead]:
    """The recorded sessions a run replays, in recorded order; raises BadInput on unknown ids.

    Reads every selected frame (without decoding it), so a damaged capture
    fails here, before a run writes anything into it.
    """
    heads = list(store.heads())
    if options.session_ids:
        wanted = {store.find_session(prefix).id for prefix in options.session_ids}
        heads = [s for s in heads if s.id in wanted]
    if options.routes:
        heads = [s for s in heads if any(fnmatch.fnmatchcase(s.route, p) for p in options.routes)]
    heads = [s for s in heads if in_shard(s.id, options.shard)]
    heads.sort(key=lambda s: s.started_at)
    everything = not (options.session_ids or options.routes or options.shard)
    store.read_frames_through(None if everything else [s.id for s in heads])
    return heads


# ---- a whole run -------------------------------------------------------------------


def _ssl_context(options: ReplayOptions) -> ssl.SSLContext | None:
    if parse_target(options.target)[0] != "wss":
        return None
    try:
        return ssl.create_default_context(cafile=str(options.ca) if options.ca else None)
    except (OSError, ssl.SSLError) as e:
        raise BadInput(f"--ca {options.ca}: cannot load CA certificates ({e})") from None


class _RunWriter:
    """Buffers replayed sessions and writes them in batches, the SQL on a thread.

    Rows are built (and redacted, as ``put_sessions`` would) by a
    ``CaptureWriter`` on the loop thread; the store's ``BackgroundWriter``
    inserts them, one transaction per batch, while the loop goes on. One
    existence check per batch: a batch holding an id the capture already
    has is written with ``put_sessions(on_conflict="replace")`` instead.
    """

    def __init__(self, store: CaptureStore, background: BackgroundWriter) -> None:
        self.store = store
        self.background = background
        self.pending: list[_Played] = []

    def add(self, played: _Played) -> None:
        self.pending.append(played)
        if len(self.pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        if self.store.existing_ids([p.id for p in batch]):
            self.background.wait()  # in order after what is queued
            self.store.put_sessions((p.session() for p in batch), on_conflict="replace")
            return
        writer = self.store.writer(batch_size=1 << 62)
        for p in batch:
            writer.add_session(p.id, p.started_at, p.handshake, p.provenance, p.frames(), p.close)
        self.background.submit(writer)

    def finish(self) -> None:
        """Flush, and return once everything is in the capture (raises CaptureError)."""
        self.flush()
        self.background.wait()


class _Prefetcher:
    """Loads the selected recorded sessions a page at a time (one frames query per page).

    Sessions come without ``Message`` objects: each with its frames as columns.
    """

    def __init__(self, store: CaptureStore, selected: list[SessionHead], page: int) -> None:
        self.store = store
        self.ids = [s.id for s in selected]
        self.page = max(1, page)
        self.loaded: dict[int, tuple[Session, FrameColumns]] = {}
        self.next = 0

    def take(self, index: int) -> tuple[Session, FrameColumns]:
        """The recorded session at ``index`` of the selection (loaded with its page)."""
        loaded = self.loaded.pop(index, None)
        if loaded is not None:
            return loaded
        if index >= self.next:
            start = index
            self.next = min(len(self.ids), index + self.page)
            try:
                page = self.store.get_session_frames(self.ids[start : self.next])
            except CaptureError:
                pass  # a damaged session fails alone, when its own turn comes
            else:
                self.loaded.update(enumerate(page, start))
                return self.loaded.pop(index)
        return self.store.get_session_frames([self.ids[index]])[0]


def _recorded_server_messages(store: CaptureStore, session_id: str) -> int:
    """How many server data messages a recorded session has (0 when it cannot be read)."""
    try:
        return plan_frames(store.get_session_frames([session_id])[0][1], None).server_total
    except CaptureError:
        return 0


_gc_users = 0  # replays running in this process
_gc_saved = (700, 10, 10)  # the thresholds before the first of them


@contextlib.contextmanager
def _young_collections_rarer() -> Iterator[None]:
    """Run the cyclic garbage collector's young passes 14x less often meanwhile.

    Replay allocates a few short-lived objects per message, nearly all
    without cycles; at the default threshold (700) the collector ran every
    few sessions and took about 0.05x of replay's throughput (paired runs of
    bench/replay.py: 0.68x-0.71x -> 0.74x-0.76x the minimal client).
    """
    global _gc_saved, _gc_users
    if _gc_users == 0:
        _gc_saved = gc.get_threshold()
        gc.set_threshold(10_000, _gc_saved[1], _gc_saved[2])
    _gc_users += 1  # replays that run at once (shadow) share one setting
    try:
        yield
    finally:
        _gc_users -= 1
        if _gc_users == 0:
            gc.set_threshold(*_gc_saved)


async def _warm_up(
    store: CaptureStore,
    heads: list[SessionHead],
    options: ReplayOptions,
    run: str,
    credentials: Credentials,
    context: ssl.SSLContext | None,
) -> None:
    """Replay ``heads`` once, stored nowhere: the target's caches and pools warm up.

    Failures are ignored here: the measured replay meets them again.
    """
    slots = asyncio.Semaphore(options.concurrency)
    pacing = options.pacing()
    quiet = ReplayObserver()

    async def one(recorded: Session, frames: FrameColumns) -> None:
        async with slots:
            with contextlib.suppress(Exception):
                await _play(
                    recorded, frames, options, run=f"{run}-warmup", credentials=credentials,
                    ssl_context=context, observer=quiet, pacing=pacing,
                )  # fmt: skip

    try:
        loaded = store.get_session_frames([h.id for h in heads])
    except CaptureError:
        return  # a damaged session fails in the measured replay, with its cause
    await asyncio.gather(*(one(s, f) for s, f in loaded))


async def replay_capture(
    store: CaptureStore,
    options: ReplayOptions,
    *,
    run: str,
    progress: ReplayObserver | None = None,
    start_gate: Lockstep | None = None,
) -> RunResult:
    """Replay the selected recorded sessions of ``store`` as run ``run``; store every result.

    Raises BadInput before anything is replayed when the run name is taken,
    a ``--session`` id is unknown, nothing matches, or the CA file is bad.
    Target failures are per-session outcomes, never exceptions.
    ``start_gate`` (shared with concurrent runs) holds each session until
    the other runs start the same one.
    """
    try:
        with _young_collections_rarer(), store.background_writer() as background:
            return await _replay_capture(
                store, options, run=run, progress=progress, background=background,
                start_gate=start_gate,
            )  # fmt: skip
    finally:
        if start_gate is not None:
            start_gate.done(run)


async def _replay_capture(
    store: CaptureStore,
    options: ReplayOptions,
    *,
    run: str,
    progress: ReplayObserver | None,
    background: BackgroundWriter,
    start_gate: Lockstep | None = None,
) -> RunResult:
    if not run or ":" in run:
        raise BadInput(f"run name {run!r}: expected a non-empty name without ':'")
    if store.get_run(run) is not None:
        raise BadInput(f"{store.path}: a run called {run!r} exists already; choose another --run")
    from wsshadow.replay.engine import scenarios  # it builds on this module

    selected, graph = scenarios.select_with_scenarios(store, options)
    scenes = scenarios.ScenarioSchedule(graph, selected, store, options) if graph else None
    if not selected and options.shard is None:
        raise BadInput(f"{store.path}: no recorded session matches the selection")
    context = _ssl_context(options)
    env = options.env if options.env is not None else os.environ
    credentials = Credentials.resolve(options.credentials, env)
    observer = progress or ReplayObserver()
    loop = asyncio.get_running_loop()
    started_at = time.time()
    store.put_run(Run(run, options.target, Source.REPLAY, options.settings(), started_at, None))
    observer.run_started(run, len(selected))
    writer = _RunWriter(store, background)
    prefetch = _Prefetcher(store, selected, page=min(options.concurrency, 16))
    pacing = options.pacing()
    outcomes: dict[int, SessionOutcome] = {}
    slots = asyncio.Semaphore(options.concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, summary: SessionHead, hooks: SessionHooks | None = None) -> None:
        played: _Played | None = None
        try:
            played, outcome = await _play(
                *prefetch.take(index), options, run=run, credentials=credentials,
                ssl_context=context, observer=observer, pacing=pacing, hooks=hooks,
            )  # fmt: skip
        except Exception as e:  # a bug in one session must not sink the whole run
            why = (
                str(e)
                if isinstance(e, CaptureError)
                else f"internal error: {type(e).__name__}: {e}"
            )
            outcome = SessionOutcome(
                summary.id, f"{run}:{summary.id}", "", False, None, why, 0, 0,
                _recorded_server_messages(store, summary.id), None, 0.0,
            )  # fmt: skip
        outcomes[index] = outcome
        if played is not None:
            writer.add(played)  # a capture that cannot be written ends the run (CaptureError)
        observer.session_finished(outcome)

    async def unit(index: int, summary: SessionHead) -> None:
        try:  # one session, or the scenario it leads (a scenario takes one slot)
            if scenes is not None and scenes.leads(index):
                if start_gate is None:
                    await scenes.play(index, one)
                else:  # a concurrent run replaying it to this target would meet this one
                    async with start_gate.turn(options.target, scenario_key(summary.id, graph)):
                        await scenes.play(index, one)
            else:
                await one(index, summary)
        finally:
            slots.release()

    t_start = loop.time()
    first = selected[0].started_at if selected else 0.0
    interrupted = False
    try:
        # Warm up with sessions that stand alone: a session of a scenario replayed alone
        # waits out every cross-session wait and sends the target stale values.
        alone = [
            s for i, s in enumerate(selected)
            if scenes is None or not (scenes.leads(i) or scenes.follows(i))
        ]  # fmt: skip
        if options.warmup and alone:  # inside: Ctrl-C here marks the run interrupted too
            await _warm_up(store, alone[: options.warmup], options, run, credentials, context)
            t_start = loop.time()
        for index, summary in enumerate(selected):
            if scenes is not None and scenes.follows(index):
                continue  # replayed with the first session of its scenario
            when = t_start
            if options.pace is Pace.RECORDED:
                when = t_start + (summary.started_at - first) / options.speed
            if options.rate > 0:
                when = max(when, t_start + index / options.rate)
            delay = when - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if start_gate is not None:
                await start_gate.ready(run, index)
            task = asyncio.create_task(unit(index, summary), name=f"replay {summary.id}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if start_gate is not None:
            start_gate.done(run)
        if tasks:
            await asyncio.gather(*tasks)
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Ctrl-C: the sessions that finished are kept, the run says it was cut short.
        interrupted = True
        raise
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        writer.finish()
        result = RunResult(
            run,
            options.target,
            tuple(outcomes[i] for i in sorted(outcomes)),
            started_at,
            time.time(),
            scenes.timeouts if scenes is not None else 0,
        )
        settings = options.settings()
        if interrupted:
            settings.update(interrupted=True, selected=len(selected))
        store.put_run(
            Run(
                run,
                options.target,
                Source.REPLAY,
                settings,
                started_at,
                result.ended_at,
                result.sessions,
                result.errors,
            )
        )
    return result
