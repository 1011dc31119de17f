"""One session replayed: prepare (plans, credentials, URL), connect, drive, finish.

``replay_session`` plays one recorded session's client side against a target and
returns the replayed session and its outcome; the run (``run.py``) schedules many.
The hot loop (``_drive``) binds its locals once and keeps one timer per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from wsshadow.replay.capture.model import (
    CausalWaits,
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
    Source,
    unmet_link_tags,
)
from wsshadow.replay.capture.store import (
    FrameColumns,
)
from wsshadow.replay.engine.carryover import (
    CarryPlan,
    may_carry,
    plan_carry_over,
)
from wsshadow.replay.engine.client_ids import unique_client_ids
from wsshadow.replay.engine.credentials import Credentials, MissingCredential
from wsshadow.replay.engine.engineio import (
    fresh_engineio_url,
    needs_engineio_handshake,
    polling_connects,
)
from wsshadow.replay.engine.model import ReplayObserver, ReplayOptions, SessionOutcome
from wsshadow.replay.engine.pacing import (
    ClientStep,
    CloseSession,
    Pacer,
    PacingPlan,
    PacingSettings,
    flood_limit,
    plan_frames,
)
from wsshadow.replay.engine.targets import build_url, request_headers
from wsshadow.replay.errors import BadInput

if TYPE_CHECKING:
    from wsshadow.replay.engine.scenario_pacing import SessionHooks

__all__ = ["replay_session"]


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or the C function it wraps when the loop is asyncio's own."""
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class _Alarm:
    """A lazily re-armed wake-up for a session waiting in ``recv()``.

    ``asyncio.timeout`` around every ``recv()`` costs a timer per message;
    this keeps one timer per session, moved only when the deadline comes
    earlier. A stale (early) alarm wakes the loop once, which finds nothing
    due and re-arms. The alarm only interrupts ``recv()``, which websockets
    documents as safe to cancel (no message is lost), never a ``send()``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.handle: asyncio.TimerHandle | None = None
        self.when = 0.0
        self.waiting = False
        self.fired = False

    def arm(self, when: float) -> None:
        if self.handle is not None and self.when <= when:
            return
        if self.handle is not None:
            self.handle.cancel()
        self.when = when
        self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle = None
        if self.waiting and not self.fired:
            self.fired = True
            self.task.cancel()

    def took_it(self) -> bool:
        """True when a CancelledError came from this alarm (and is now absorbed)."""
        if not self.fired:
            return False
        self.fired = False
        return self.task.uncancel() == 0

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


# Close codes the client library sends when the target breaks the protocol.
_TARGET_FAULTS = {
    1002: "the target broke the WebSocket protocol",
    1007: "the target sent a text message that is not valid UTF-8",
    1009: "the target sent a message too big to receive",
}


def _close_from(exc: ConnectionClosed, t: float) -> Close:
    rcvd, sent = exc.rcvd, exc.sent
    if sent is not None and sent.code in _TARGET_FAULTS and not exc.rcvd_then_sent:
        # The library failed the connection because of what the target sent: that is
        # an error of this session, not a close the replayed client chose.
        why = f"{_TARGET_FAULTS[sent.code]} ({sent.reason}); closed with {sent.code}"
        return Close(sent.code, sent.reason, Closer.ERROR, error=why, t=t)
    if rcvd is not None and (sent is None or exc.rcvd_then_sent):
        code = None if rcvd.code == 1005 else rcvd.code
        return Close(code, rcvd.reason, Closer.SERVER, t=t)
    if sent is not None:
        code = None if sent.code == 1005 else sent.code
        return Close(code, sent.reason, Closer.CLIENT, t=t)
    return Close(None, "", Closer.ERROR, error="connection lost without a close frame", t=t)


_Frame = tuple[int, float, str, str, str | bytes]
"""A replayed message before it becomes a ``Message``: (seq, t, direction, opcode, payload).

Direction and opcode are plain strings (their enum values), what the store writes.
"""


def _message_of(frame: _Frame) -> Message:
    seq, t, direction, opcode, payload = frame
    return Message(seq, t, Direction(direction), Opcode(opcode), payload)


def _last_message(flat: list[Any]) -> Message:
    """The last frame of a flat frame list (see ``_Played``) as a ``Message``."""
    t, direction, opcode, payload = flat[-4:]
    return _message_of((len(flat) // 4 - 1, t, direction, opcode, payload))


@dataclass(slots=True)
class _Played:
    """A replayed session as the engine produced it, its frames not yet ``Message``s.

    ``flat`` holds four items per frame: t, direction, opcode, payload (plain
    values, see ``_Frame``). One flat list instead of a tuple per frame: a
    busy run holds tens of thousands of frames, and every object that lives
    that long makes the garbage collector's passes longer.
    """

    id: str
    started_at: float
    handshake: Handshake
    flat: list[Any]
    close: Close | None
    provenance: Provenance

    def frames(self) -> FrameColumns:
        """The frames as columns (iterating gives ``(seq, t, direction, opcode, payload)``)."""
        flat = self.flat
        return FrameColumns(range(len(flat) // 4), flat[0::4], flat[1::4], flat[2::4], flat[3::4])

    def session(self) -> Session:
        """The replayed session as a model value."""
        messages = tuple(_message_of(f) for f in self.frames())
        return Session(
            self.id, self.started_at, self.handshake, messages, self.close, self.provenance
        )


async def replay_session(
    recorded: Session,
    options: ReplayOptions,
    *,
    run: str,
    credentials: Credentials,
    ssl_context: ssl.SSLContext | None = None,
    observer: ReplayObserver | None = None,
) -> tuple[Session, SessionOutcome]:
    """Replay one recorded session against ``options.target``; never raises for target errors.

    Returns the replayed session (id ``RUN:ORIGIN``, ready to store) and its outcome.
    """
    played, outcome = await _play(
        recorded, FrameColumns.of(recorded.messages), options, run=run,
        credentials=credentials, ssl_context=ssl_context, observer=observer,
    )  # fmt: skip
    return played.session(), outcome


async def _play(
    recorded: Session,
    frames: FrameColumns,
    options: ReplayOptions,
    *,
    run: str,
    credentials: Credentials,
    ssl_context: ssl.SSLContext | None = None,
    observer: ReplayObserver | None = None,
    pacing: PacingSettings | None = None,
    hooks: SessionHooks | None = None,
) -> tuple[_Played, SessionOutcome]:
    """``replay_session`` without building a ``Message`` per frame.

    ``recorded`` is the session's row (its messages may be left out),
    ``frames`` its frames: the planners read these columns, and the replayed
    frames stay plain values for the run writer. Four steps: prepare (plans,
    credentials, URL), connect, drive (the hot loop, kept whole), finish.
    """
    observer = observer or ReplayObserver()
    prepared = await _prepare(
        recorded, frames, options, run, credentials, ssl_context, observer, hooks
    )
    if not isinstance(prepared, _Prepared):
        return prepared
    del recorded, frames  # the plan is all that is needed from here on (less for the GC)
    ws = await _connect(prepared, options, ssl_context)
    if not isinstance(ws, ClientConnection):
        return ws
    driven = await _drive(ws, prepared, pacing or options.pacing(), observer, hooks)
    return _finish(prepared, driven, credentials)


@dataclass(slots=True)
class _Prepared:
    """A session ready to connect: its plans, the request to send, the outcome's ids."""

    origin: str
    session_id: str
    started_at: float
    began: float
    provenance: Provenance
    plan: PacingPlan
    failed: _Failure
    url: str
    shown: Handshake
    """The request as the target sees it, credentials left as placeholders."""
    filled: Handshake
    """The request's headers, query and subprotocols with credentials filled."""
    user_agent: str | None
    payloads: list[str | bytes]
    carry: bool
    tracker: Any
    follow: bool
    recorded_server: tuple[Message, ...]


async def _prepare(
    recorded: Session,
    frames: FrameColumns,
    options: ReplayOptions,
    run: str,
    credentials: Credentials,
    ssl_context: ssl.SSLContext | None,
    observer: ReplayObserver,
    hooks: SessionHooks | None,
) -> _Prepared | tuple[_Played, SessionOutcome]:
    """Plan the session, fill its credentials and build its URL; a failure result if it can't."""
    loop = asyncio.get_running_loop()
    started_at = time.time()
    began = loop.time()
    origin = recorded.id
    session_id = f"{run}:{origin}"
    provenance = Provenance(source=Source.REPLAY, run=run, origin=origin)
    plan = plan_frames(frames, recorded.close, accepted=recorded.handshake.accepted)
    failed = _Failure(origin, session_id, started_at, provenance, plan.server_total, credentials)
    request = recorded.handshake
    headers, user_agent = request_headers(request.request_headers, options.headers)
    shown = Handshake(request.route, request.query, headers, request.subprotocols, status=None)
    try:
        try:
            filled = credentials.fill_handshake(shown)  # the request side, headers already cut
            payloads = credentials.fill_payloads(s.payload for s in plan.steps)
            payloads = unique_client_ids(payloads, run)  # MQTT: runs at once, one broker
        except MissingCredential:
            # Name every credential the session lacks at once, not one per run.
            credentials.check_supplied(
                (shown.query, *(v for _, v in shown.request_headers), *shown.subprotocols,
                 *(s.payload for s in plan.steps))
            )  # fmt: skip
            raise
        url = build_url(options.target, recorded.route, filled.query, options.maps)
    except (MissingCredential, BadInput) as e:
        return failed(shown, "", str(e), loop.time() - began)
    if needs_engineio_handshake(url):  # Socket.IO upgraded from polling: a fresh sid
        url = await fresh_engineio_url(
            url, polling_connects(frames.direction, frames.payload), headers=filled.request_headers,
            ssl_context=ssl_context, timeout=options.open_timeout,
        )  # fmt: skip
    path = url.split("://", 1)[1].partition("/")[2]
    route, _, query = ("/" + path).partition("?")
    shown = Handshake(route, query, headers, request.subprotocols, status=None)
    observer.session_started(origin, url)
    carry_plan = None
    if options.carry_over:
        possible = may_carry(zip(frames.direction, frames.opcode, frames.payload, strict=True))
        if possible or options.carry_rules:
            if len(recorded.messages) != len(frames):
                recorded = replace(recorded, messages=frames.messages())
            carry_plan = plan_carry_over(
                recorded, options.carry_rules, options.event_keys, possible=possible
            )
    carry = carry_plan is not None and carry_plan.active
    # Most sessions have nothing to carry: they share one idle tracker and make none.
    tracker = carry_plan.tracker() if carry_plan is not None and carry else _IDLE_TRACKER
    if hooks is not None:  # a session of a scenario: its tracker also carries across sessions
        tracker, carry = hooks.tracker(tracker if carry else None), True
    follow = options.follow
    recorded_server = (
        tuple(m for m in frames.messages() if m.direction is Direction.SERVER and m.opcode.is_data)
        if follow
        else ()
    )
    if follow:
        observer.recorded(origin, recorded.route, recorded_server)
    return _Prepared(
        origin, session_id, started_at, began, provenance, plan, failed, url, shown, filled,
        user_agent, payloads, carry, tracker, follow, recorded_server,
    )  # fmt: skip


async def _connect(
    p: _Prepared, options: ReplayOptions, ssl_context: ssl.SSLContext | None
) -> ClientConnection | tuple[_Played, SessionOutcome]:
    """The WebSocket to the target, or the failure result that says why there is none."""
    loop = asyncio.get_running_loop()
    try:
        return await connect(
            p.url,
            subprotocols=[Subprotocol(s) for s in p.filled.subprotocols] or None,
            additional_headers=list(p.filled.request_headers),
            user_agent_header=p.user_agent,
            ssl=ssl_context,
            proxy=None,
            open_timeout=options.open_timeout,
            close_timeout=options.close_timeout,
            ping_interval=None,
            max_size=None,
            max_queue=None,
        )
    except InvalidStatus as e:
        status = e.response.status_code
        handshake = replace(
            p.shown, status=status, response_headers=tuple(e.response.headers.raw_items())
        )
        why = f"handshake refused: HTTP {status}"
        return p.failed(handshake, p.url, why, loop.time() - p.began)
    except (OSError, TimeoutError, WebSocketException) as e:
        why = f"unreachable: {e or type(e).__name__}"
        return p.failed(p.shown, p.url, why, loop.time() - p.began)
    except ValueError as e:
        # websockets refuses what no client may send (a subprotocol with a space...):
        # the recording's fault, said as such, never "internal error".
        why = f"the recorded handshake cannot be sent as it is: {e}"
        return p.failed(p.shown, p.url, why, loop.time() - p.began)


@dataclass(slots=True)
class _Driven:
    """What driving a connected session left: its frames, close and pacing counts."""

    handshake: Handshake
    flat: list[Any]
    close: Close | None
    server_count: int
    pacer: Pacer
    ended: float


async def _drive(
    ws: ClientConnection,
    p: _Prepared,
    settings: PacingSettings,
    observer: ReplayObserver,
    hooks: SessionHooks | None,
) -> _Driven:
    """Send the client's messages under the pacing policy and read the server's, until done.

    The hot loop: locals bound once, one timer per session (``_Alarm``), frames
    kept as plain values. A target that keeps sending is cut off at the flood cap.
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    shown = p.shown
    handshake = Handshake(
        shown.route,
        shown.query,
        shown.request_headers,
        shown.subprotocols,
        101,
        ws.subprotocol,
        tuple(ws.response.headers.raw_items()) if ws.response else (),
    )
    plan, origin, payloads, carry, tracker = p.plan, p.origin, p.payloads, p.carry, p.tracker
    follow, recorded_server = p.follow, p.recorded_server
    # A target that keeps sending is cut off here: memory and time stay bounded.
    cap = settings.max_server_messages or flood_limit(plan.server_total)
    alarm = _Alarm(loop)
    if hooks is None:
        pacer = Pacer(plan, settings, t0)
    else:  # waits on the other sessions of its scenario too; woken when they move
        pacer = hooks.pacer(plan, settings, t0, lambda: alarm.arm(loop.time()))
    # Frames stay plain values until someone needs a Message (the run writer stores rows).
    flat: list[Any] = []  # t, direction, opcode, payload per frame (see _Played)
    extend = flat.extend
    close: Close | None = None
    server_count = 0
    client, server = Direction.CLIENT.value, Direction.SERVER.value
    text_op, binary_op = Opcode.TEXT.value, Opcode.BINARY.value
    now = _clock(loop)
    send = ws.send
    recv = ws.recv
    what_to_send = pacer.what_to_send
    arrived = pacer.server_message_arrived
    next_deadline = pacer.next_deadline
    at = t0  # the time of the last thing that happened (a fresh reading when it matters)
    timeouts, waited, unanswered = 0, 0.0, 0
    try:
        while True:
            for action in what_to_send(at):
                if follow and pacer.timeouts > timeouts:
                    observer.waited(origin, pacer.waited - waited, pacer.unanswered - unanswered)
                    timeouts, waited, unanswered = pacer.timeouts, pacer.waited, pacer.unanswered
                if type(action) is CloseSession:
                    # A timed-out wait for the server's close is a difference the
                    # differ reports (closed by client, not server), not an error.
                    await ws.close(action.code, action.reason)
                    close = Close(action.code, action.reason, Closer.CLIENT, t=now() - t0)
                    break
                step: ClientStep = action  # type: ignore[assignment]
                payload = payloads[step.number]
                if carry:
                    payload = tracker.rewrite_client(step.number, payload)
                await send(payload)
                at = now()
                extend((at - t0, client, text_op if type(payload) is str else binary_op, payload))
                if follow:
                    observer.message(origin, _last_message(flat), step.message)
            deadline = next_deadline()  # None once finished
            if deadline is None:
                break
            if deadline <= at:
                at = now()
                continue
            if alarm.handle is None or deadline < alarm.when:
                # A deadline that passed since ``at`` fires at once: recv() is interrupted.
                alarm.arm(deadline)
            alarm.waiting = True
            try:
                data = await recv()
            except asyncio.CancelledError:
                if not alarm.took_it():
                    raise
                at = now()
                pacer.time_passed(at)
                continue
            finally:
                alarm.waiting = False
            at = now()
            if server_count >= cap:
                why = (
                    f"flooded: the target sent more than {cap:,} messages "
                    f"(the recording has {plan.server_total:,}); closed with 1008"
                )
                pacer.server_closed(at)
                close = Close(1008, "flooded", Closer.ERROR, error=why, t=at - t0)
                await ws.close(1008, "flooded")
                break
            arrived(at)
            if carry:
                tracker.observe_server(data)
            extend((at - t0, server, text_op if type(data) is str else binary_op, data))
            if follow:
                ref = recorded_server[server_count] if server_count < len(recorded_server) else None
                observer.message(origin, _last_message(flat), ref)
            server_count += 1
    except ConnectionClosed as e:
        pacer.server_closed(now())
        close = _close_from(e, now() - t0)
    finally:
        alarm.disarm()
        if close is None:
            # Cancelled or failed mid-session: do not leave the socket open.
            with contextlib.suppress(Exception):
                await asyncio.shield(ws.close())
    return _Driven(handshake, flat, close, server_count, pacer, now())


def _finish(p: _Prepared, d: _Driven, credentials: Credentials) -> tuple[_Played, SessionOutcome]:
    """The replayed session for the run and its outcome, credentials put back as placeholders."""
    close, pacer = d.close, d.pacer
    error = close.error if close is not None else "replay interrupted"
    unmet = pacer.unmet_links()
    if unmet and credentials.values:  # what another session got may hold a credential
        unmet = tuple(credentials.scrub_text(u) for u in unmet)
    outcome = SessionOutcome(
        p.origin, p.session_id, p.url, True, 101, error, len(d.flat) // 4 - d.server_count,
        d.server_count, p.plan.server_total, close, d.ended - p.began, pacer.timeouts,
        pacer.waited, unmet,
    )  # fmt: skip
    provenance = p.provenance
    if pacer.timeouts:
        waits = CausalWaits(pacer.timeouts, pacer.waited, tuple(pacer.awaited))
        provenance = replace(provenance, tags=(*provenance.tags, *waits.tags()))
    if unmet:
        provenance = replace(provenance, tags=(*provenance.tags, *unmet_link_tags(unmet)))
    played = _Played(p.session_id, p.started_at, d.handshake, d.flat, close, provenance)
    # The fresh credentials were for the target; the capture gets placeholders back.
    return _scrub_played(played, credentials), _scrub_outcome(outcome, credentials)


_IDLE_TRACKER = CarryPlan().tracker()  # never called: only when a plan is active


@dataclass(slots=True)  # not frozen: its plain __init__ is cheap enough to run per session
class _Failure:
    """What a session that never connected reports, from any of the places it can fail."""

    origin: str
    session_id: str
    started_at: float
    provenance: Provenance
    recorded_server: int
    credentials: Credentials

    def __call__(
        self, handshake: Handshake, url: str, error: str, duration: float
    ) -> tuple[_Played, SessionOutcome]:
        close = Close(None, "", Closer.ERROR, error=error, t=0.0)
        outcome = SessionOutcome(
            self.origin, self.session_id, url, False, handshake.status, error, 0, 0,
            self.recorded_server, close, duration,
        )  # fmt: skip
        played = _Played(self.session_id, self.started_at, handshake, [], close, self.provenance)
        return _scrub_played(played, self.credentials), _scrub_outcome(outcome, self.credentials)


def _scrub_played(played: _Played, credentials: Credentials) -> _Played:
    """A replayed session with every supplied credential value put back as a placeholder."""
    if not credentials.values:
        return played
    s = credentials.scrub_session(played.session())
    flat = [x for m in s.messages for x in (m.t, m.direction.value, m.opcode.value, m.payload)]
    return _Played(s.id, s.started_at, s.handshake, flat, s.close, s.provenance)


def _scrub_outcome(outcome: SessionOutcome, credentials: Credentials) -> SessionOutcome:
    """An outcome whose URL and error (shown on the terminal) hold no credential."""
    if not credentials.values:
        return outcome
    error = None if outcome.error is None else credentials.scrub_text(outcome.error)
    close = outcome.close
    if close is not None and close.error is not None:
        close = replace(close, error=credentials.scrub_text(close.error))
    return replace(outcome, url=credentials.scrub_text(outcome.url), error=error, close=close)
