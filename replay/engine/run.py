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
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import gc
import hashlib
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
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
    Headers,
    Message,
    Opcode,
    Provenance,
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
from wsshadow.replay.engine.carryover import (
    DEFAULT_EVENT_KEYS,
    CarryPlan,
    CarryRule,
    may_carry,
    plan_carry_over,
)
from wsshadow.replay.engine.credentials import Credentials, MissingCredential
from wsshadow.replay.engine.engineio import (
    fresh_engineio_url,
    needs_engineio_handshake,
    socketio_namespaces,
)
from wsshadow.replay.engine.interleave import Lockstep
from wsshadow.replay.engine.pacing import (
    ClientStep,
    CloseSession,
    Pace,
    Pacer,
    PacingPlan,
    PacingSettings,
    flood_limit,
    plan_frames,
)
from wsshadow.replay.engine.targets import RouteMap, build_url, parse_target
from wsshadow.replay.errors import BadInput, CaptureError

if TYPE_CHECKING:
    from wsshadow.replay.engine.scenarios import SessionHooks

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

# Request headers never replayed: hop-by-hop, or computed by the client library.
_DROPPED_HEADERS = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "content-length",
        "user-agent",
    }
)
_BATCH = 100


@dataclass(frozen=True)
class ReplayOptions:
    """Everything a replay run needs; the CLI and the config file both build one.

    ``credentials`` maps credential names to values that may hold ``${VAR}``,
    expanded from ``env`` (None: the process environment). ``shard`` is
    ``(index, count)`` with ``0 <= index < count``. ``headers`` override
    recorded request headers of the same name; an empty value removes one.
    Raises BadInput on nonsense values.
    """

    target: str
    maps: tuple[RouteMap, ...] = ()
    pace: Pace = Pace.CAUSAL
    speed: float = 1.0
    concurrency: int = 50
    rate: float = 0.0
    session_ids: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    headers: Headers = ()
    credentials: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    ca: Path | None = None
    causal_timeout: float = 2.0
    idle_timeout: float = 1.0
    close_timeout: float = 5.0
    open_timeout: float = 10.0
    shard: tuple[int, int] | None = None
    follow: bool = False
    carry_over: bool = True
    carry_rules: tuple[CarryRule, ...] = ()
    event_keys: tuple[str, ...] = DEFAULT_EVENT_KEYS
    warmup: int | None = None
    """Sessions replayed unrecorded before the measured replay; None: the command's default (0)."""
    links: bool = True  # replay linked sessions together (engine/scenarios.py)
    link_rules: tuple[CarryRule, ...] = ()  # [[carry_over]] scope = "capture"

    def __post_init__(self) -> None:
        parse_target(self.target)
        if self.warmup is not None and self.warmup < 0:
            raise BadInput(f"warmup must not be negative, not {self.warmup}")
        if self.concurrency < 1:
            raise BadInput(f"concurrency must be at least 1, not {self.concurrency}")
        if self.rate < 0:
            raise BadInput(f"rate must not be negative, not {self.rate}")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise BadInput(f"shard {self.shard[0]}/{self.shard[1]}: expected 0 <= I < N")
        try:
            self.pacing()
        except ValueError as e:
            raise BadInput(str(e)) from None

    def pacing(self) -> PacingSettings:
        """The pacing part of the options."""
        return PacingSettings(
            pace=self.pace,
            speed=self.speed,
            causal_timeout=self.causal_timeout,
            idle_timeout=self.idle_timeout,
            close_timeout=self.close_timeout,
        )

    def settings(self) -> dict[str, Any]:
        """The options as JSON-ready values for the run row (credential names, never values)."""
        return {
            "pace": self.pace.value,
            "speed": self.speed,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "maps": [str(m) for m in self.maps],
            "sessions": list(self.session_ids),
            "routes": list(self.routes),
            "headers": [name for name, _ in self.headers],
            "credentials": sorted(k.lower() for k in self.credentials),
            "ca": str(self.ca) if self.ca else None,
            "causal_timeout": self.causal_timeout,
            "idle_timeout": self.idle_timeout,
            "close_timeout": self.close_timeout,
            "shard": list(self.shard) if self.shard else None,
            "carry_over": self.carry_over,
            "carry_rules": [[r.server, r.client, r.event] for r in self.carry_rules],
            "warmup": self.warmup or 0,
            "links": self.links,
            "link_rules": [[r.server, r.client, r.event] for r in self.link_rules],
        }


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """How one replayed session went.

    ``connected`` is True when the target accepted the WebSocket handshake;
    ``error`` says why the session did not run or ended abnormally (None
    when it ran and closed cleanly).
    """

    origin: str
    session_id: str
    url: str
    connected: bool
    status: int | None
    error: str | None
    client_messages: int
    server_messages: int
    recorded_server_messages: int
    close: Close | None
    duration: float
    causal_timeouts: int = 0
    """Client messages sent only because the causal wait for server messages timed out."""
    causal_waited: float = 0.0
    """Seconds spent waiting, past the recorded gaps, for server messages that never came."""


@dataclass(frozen=True)
class RunResult:
    """A finished run: its name, target, and one outcome per session in selection order.

    ``scenario_timeouts``: client messages of multi-user scenarios sent because a
    causal wait timed out (engine/scenarios.py); 0 when every wait was met.
    """

    run: str
    target: str
    outcomes: tuple[SessionOutcome, ...]
    started_at: float
    ended_at: float
    scenario_timeouts: int = 0

    @property
    def sessions(self) -> int:
        """How many sessions the run replayed (or tried to)."""
        return len(self.outcomes)

    @property
    def connected(self) -> int:
        """Sessions whose handshake the target accepted."""
        return sum(1 for o in self.outcomes if o.connected)

    @property
    def errors(self) -> int:
        """Sessions with an error (not connected, or ended by an error)."""
        return sum(1 for o in self.outcomes if o.error is not None)

    @property
    def completed(self) -> int:
        """Sessions that connected and ended without an error."""
        return sum(1 for o in self.outcomes if o.connected and o.error is None)

    @property
    def causal_timeouts(self) -> int:
        """Client messages sent only because a causal wait timed out, over all sessions."""
        return sum(o.causal_timeouts for o in self.outcomes)

    @property
    def causal_waited(self) -> float:
        """Seconds lost waiting for server messages that never came, over all sessions."""
        return sum(o.causal_waited for o in self.outcomes)

    @property
    def unreachable(self) -> bool:
        """True when there were sessions and the target accepted none of them."""
        return bool(self.outcomes) and self.connected == 0

    @property
    def messages_sent(self) -> int:
        """Client messages sent, over all sessions."""
        return sum(o.client_messages for o in self.outcomes)

    @property
    def messages_received(self) -> int:
        """Server data messages received, over all sessions."""
        return sum(o.server_messages for o in self.outcomes)

    def first_error(self) -> str | None:
        """The first session error, for a one-line summary."""
        return next((o.error for o in self.outcomes if o.error is not None), None)


class ReplayObserver:
    """Hooks a caller can override to watch a run (progress bars, ``--follow``).

    ``message`` is called only when ``ReplayOptions.follow`` is set, with the
    replayed message and the recorded message at the same place (the n-th
    client or server data message), or None.
    """

    def run_started(self, run: str, total: int) -> None:
        """The run selected ``total`` sessions and starts replaying them."""

    def session_started(self, origin: str, url: str) -> None:
        """A session is about to connect."""

    def message(self, origin: str, replayed: Message, recorded: Message | None) -> None:
        """A message was sent or received (only with ``follow``)."""

    def recorded(self, origin: str, route: str, server: tuple[Message, ...]) -> None:
        """The recorded server data messages of a session about to replay (only with ``follow``)."""

    def waited(self, origin: str, seconds: float, messages: int) -> None:
        """A causal wait timed out just now: ``seconds`` lost waiting for ``messages``
        server messages that never came (only with ``follow``)."""

    def session_finished(self, outcome: SessionOutcome) -> None:
        """A session ended (successfully or not)."""


# ---- selection ---------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (``0 <= I < N``); raises BadInput."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise BadInput(f"shard {text!r}: expected I/N with 0 <= I < N, like 0/4")
    return shard


def parse_header(text: str) -> tuple[str, str]:
    """Parse ``'Name: value'`` (as given to ``--header``); raises BadInput."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise BadInput(f"header {text!r}: expected 'Name: value'")
    return name, value.strip()


def in_shard(session_id: str, shard: tuple[int, int] | None) -> bool:
    """True when ``session_id`` belongs to ``shard`` (a stable hash, same on every machine)."""
    if shard is None:
        return True
    digest = hashlib.sha256(session_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


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


# ---- one session -----------------------------------------------------------------


def _ssl_context(options: ReplayOptions) -> ssl.SSLContext | None:
    if parse_target(options.target)[0] != "wss":
        return None
    try:
        return ssl.create_default_context(cafile=str(options.ca) if options.ca else None)
    except (OSError, ssl.SSLError) as e:
        raise BadInput(f"--ca {options.ca}: cannot load CA certificates ({e})") from None


def _request_headers(recorded: Headers, overrides: Headers) -> tuple[Headers, str | None]:
    """Headers to send (recorded minus hop-by-hop, with overrides), and the User-Agent."""
    overridden = {name.lower() for name, _ in overrides}
    headers = [
        (k, v)
        for k, v in recorded
        if k.lower() not in _DROPPED_HEADERS
        and not k.lower().startswith("sec-websocket-")
        and k.lower() not in overridden
    ]
    user_agent = next((v for k, v in recorded if k.lower() == "user-agent"), None)
    for name, value in overrides:
        if name.lower() == "user-agent":
            user_agent = value or None
        elif value:
            headers.append((name, value))
    return tuple(headers), user_agent


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
    headers, user_agent = _request_headers(request.request_headers, options.headers)
    shown = Handshake(request.route, request.query, headers, request.subprotocols, status=None)
    try:
        try:
            filled = credentials.fill_handshake(shown)  # the request side, headers already cut
            payloads = credentials.fill_payloads(s.payload for s in plan.steps)
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
            url, socketio_namespaces(frames.payload), headers=filled.request_headers,
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


def _finish(
    p: _Prepared, d: _Driven, credentials: Credentials
) -> tuple[_Played, SessionOutcome]:
    """The replayed session for the run and its outcome, credentials put back as placeholders."""
    close, pacer = d.close, d.pacer
    error = close.error if close is not None else "replay interrupted"
    outcome = SessionOutcome(
        p.origin, p.session_id, p.url, True, 101, error, len(d.flat) // 4 - d.server_count,
        d.server_count, p.plan.server_total, close, d.ended - p.began, pacer.timeouts,
        pacer.waited,
    )  # fmt: skip
    provenance = p.provenance
    if pacer.timeouts:
        waits = CausalWaits(pacer.timeouts, pacer.waited, tuple(pacer.awaited))
        provenance = replace(provenance, tags=(*provenance.tags, *waits.tags()))
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


# ---- a whole run -------------------------------------------------------------------


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
                await scenes.play(index, one)
            else:
                await one(index, summary)
        finally:
            slots.release()

    t_start = loop.time()
    first = selected[0].started_at if selected else 0.0
    interrupted = False
    try:
        if options.warmup and selected:  # inside: Ctrl-C here marks the run interrupted too
            await _warm_up(store, selected[: options.warmup], options, run, credentials, context)
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
