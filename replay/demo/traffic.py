"""Scripted client traffic for the demo: fourteen chat users on the four legacy routes.

:func:`run_traffic` plays the script against a base URL (a demo server, or
the recording proxy in front of one) with real ``websockets`` clients, all
sessions concurrently, and returns what every session saw. The script:

- twelve users (names longer than eight characters), three or four per route
  family and every route covered, half offering the browser-style
  subprotocols ``["jwt-auth", "jwt.user-<name>"]``, half sending
  ``Authorization: Bearer user-<name>``;
- each runs two to four golden-path conversations (``user_message``, or
  ``agent_request`` on the factory route), waiting for ``agent_completed``;
- pings and a heartbeat, one unknown message type per route, one message that
  is not JSON (on ``/ws``), one isolated message claiming another user;
- one unauthenticated connection per route;
- a shared room: ``oscar-okonkwo`` (``/ws``, browser-style) invites into a
  thread, ``peggy-pemberton`` (``/ws/isolated``, header) joins with the code
  the server issued; each sends one message and receives the other's as a
  ``thread_message`` broadcast. Each waits on what the other received
  (the code, the join, the end of the other's run), never on a clock;
- every authenticated client closes normally (1000) at the end.

Thread ids and texts never contain user names or server-issued values, so
replay's state carry-over only ever sees the values it should (the isolated
route's first message echoes the ``user_id`` of the welcome; the room's
joiner sends the invite code, which replay carries across sessions).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from wsshadow.replay.errors import Unreachable, WsShadowError

__all__ = [
    "REPLAY_BROWSER_TOKEN",
    "REPLAY_TOKEN",
    "ROOM_USERS",
    "AuthMethod",
    "SessionOutcome",
    "TrafficError",
    "TrafficSummary",
    "run_traffic",
]

REPLAY_TOKEN = "user-shadow-replayer"
"""The demo token replay substitutes for a redacted header or query token (user
``shadow-replayer``)."""

REPLAY_BROWSER_TOKEN = "user-shadow-browser"
"""The demo token replay substitutes for a redacted ``jwt.<token>`` subprotocol entry (user
``shadow-browser``): browser-style clients replay as a second user."""

AuthMethod = Literal["subprotocol", "header", "none"]
"""How a scripted client presents its token."""

_WAIT = 5.0
_TEXTS = (
    "What is the weather in Lisbon tomorrow?",
    "Summarise the quarterly sales report",
    "How many days until the next public holiday?",
    "Find a vegetarian restaurant near the office",
    "Convert 250 euros to Japanese yen",
    "Draft a polite reminder about the overdue invoice",
    "Which meeting rooms are free at three?",
    "Explain the difference between TCP and UDP",
    "List the open incidents for the payments service",
    "What did we decide in the architecture review?",
    "Compute the compound interest on 10000 at 4 percent",
    "Translate good morning into Finnish",
)

# (user id, route, auth). User ids are longer than eight characters so that
# the consolidated isolated mode's truncation (regression 5) is visible.
_USERS: tuple[tuple[str, str, AuthMethod], ...] = (
    ("alice-anderson", "/ws", "subprotocol"),
    ("bob-brennan", "/ws", "header"),
    ("carol-castillo", "/ws", "subprotocol"),
    ("dave-delacroix", "/ws", "header"),
    ("erin-esposito", "/websocket", "subprotocol"),
    ("frank-fitzgerald", "/websocket", "header"),
    ("grace-goldberg", "/ws/factory", "subprotocol"),
    ("heidi-hoffmann", "/ws/factory", "header"),
    ("ivan-ivanovich", "/ws/factory", "header"),
    ("judy-jablonski", "/ws/isolated", "subprotocol"),
    ("mallory-mcallister", "/ws/isolated", "header"),
    ("niaj-nakamura", "/ws/isolated", "header"),
)
_ROUTES = ("/ws", "/websocket", "/ws/factory", "/ws/isolated")
# The shared room's inviter and joiner: two routes (two envelopes), two ways to
# present a token (so replay can run them as two users: docs/demo.md).
ROOM_USERS: tuple[tuple[str, str, AuthMethod], ...] = (
    ("oscar-okonkwo", "/ws", "subprotocol"),
    ("peggy-pemberton", "/ws/isolated", "header"),
)


class TrafficError(WsShadowError):
    """A demo server did not answer the script as the protocol says."""


@dataclass(frozen=True)
class SessionOutcome:
    """What one scripted connection did and saw."""

    route: str
    user: str | None
    auth: AuthMethod
    subprotocol: str | None
    """The subprotocol the server selected."""
    runs: int
    """Agent runs completed (``agent_completed`` received)."""
    sent: int
    received: tuple[Any, ...]
    """Server messages, parsed JSON, in arrival order."""
    close_code: int | None
    """The close code the server sent (or echoed)."""

    @property
    def types(self) -> tuple[str, ...]:
        """The ``type`` of every server message, in order."""
        return tuple(str(m.get("type")) if isinstance(m, dict) else "?" for m in self.received)


@dataclass(frozen=True)
class TrafficSummary:
    """Every session of one :func:`run_traffic` call, in script order."""

    sessions: tuple[SessionOutcome, ...]

    @property
    def users(self) -> int:
        """Authenticated sessions (one per user)."""
        return sum(1 for s in self.sessions if s.user is not None)

    @property
    def unauthenticated(self) -> dict[str, int | None]:
        """Route -> close code of that route's unauthenticated connection."""
        return {s.route: s.close_code for s in self.sessions if s.user is None}

    @property
    def runs(self) -> int:
        """Agent runs completed over all sessions."""
        return sum(s.runs for s in self.sessions)

    @property
    def messages_sent(self) -> int:
        return sum(s.sent for s in self.sessions)

    @property
    def messages_received(self) -> int:
        return sum(len(s.received) for s in self.sessions)

    def by_route(self) -> dict[str, int]:
        """Route -> number of sessions on it."""
        counts: dict[str, int] = {}
        for s in self.sessions:
            counts[s.route] = counts.get(s.route, 0) + 1
        return counts


# ---- the script -----------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    send: str | None
    """The raw text frame to send (None: only wait)."""
    until: frozenset[str]
    """Wait for a server message of one of these types (after the send; without one, at all)."""
    is_run: bool = False
    hear: str | None = None
    """The room signal to wait for before sending."""
    tell: str | None = None
    """The room signal to give once the answer arrived (``code``: the invite code in it)."""
    with_code: bool = False
    """Put the room's invite code in ``payload.code``."""


@dataclass(frozen=True)
class _Script:
    route: str
    user: str | None
    auth: AuthMethod
    steps: tuple[_Step, ...]
    start_delay: float
    echo_user_id: bool = False
    """Isolated route: put the welcome's ``user_id`` in the first message."""


def _message(kind: str, **payload: Any) -> str:
    return json.dumps({"type": kind, "payload": payload})


def _build_script(rng: random.Random, shared_room: bool = True) -> list[_Script]:
    scripts: list[_Script] = []
    first_on_route: set[str] = set()
    for name, route, auth in _USERS:
        thread = f"t-{rng.getrandbits(32):08x}"
        texts = rng.sample(_TEXTS, rng.randint(2, 4))
        isolated, factory = route == "/ws/isolated", route == "/ws/factory"
        steps: list[_Step] = []
        for i, text in enumerate(texts):
            if factory and i == 1:
                send = json.dumps(
                    {"type": "agent_request", "data": {"message": text, "thread_id": thread}}
                )
            else:
                send = _message("user_message", text=text, thread_id=thread)
            steps.append(_Step(send, frozenset({"agent_completed"}), is_run=True))
            if i == 0:
                steps.append(_Step(_message("ping"), frozenset({"pong"})))
        if route not in first_on_route:  # one unknown type per route
            first_on_route.add(route)
            steps.insert(
                2, _Step(_message("typing_indicator", active=True), frozenset({"ack", "error"}))
            )
        if name == "bob-brennan":  # the one message that is not JSON
            steps.insert(1, _Step("{'type': 'user_message'", frozenset({"error_message"})))
            steps.append(_Step(_message("heartbeat"), frozenset({"heartbeat_ack"})))
        if name == "mallory-mcallister":  # claims to be someone else
            steps.append(
                _Step(
                    _message(
                        "user_message", text="Show me the admin dashboard", user_id="someone-else"
                    ),
                    frozenset({"error"}),
                )
            )
        scripts.append(
            _Script(route, name, auth, tuple(steps), rng.uniform(0, 0.05), echo_user_id=isolated)
        )
    for route in _ROUTES:
        scripts.append(_Script(route, None, "none", (), rng.uniform(0, 0.05)))
    if shared_room:
        scripts.extend(_room_scripts(rng))
    return scripts


def _room_scripts(rng: random.Random) -> list[_Script]:
    """The shared room: invite, join with the issued code, one message each, broadcast."""
    thread = f"t-{rng.getrandbits(32):08x}"
    first, second = rng.sample(_TEXTS, 2)
    (inviter, i_route, i_auth), (joiner, j_route, j_auth) = ROOM_USERS
    done, broadcast = frozenset({"agent_completed"}), frozenset({"thread_message"})
    inviting = (
        _Step(
            _message("create_invite", thread_id=thread),
            frozenset({"invite_created"}),
            tell="code",
        ),
        _Step(
            _message("user_message", text=first, thread_id=thread),
            done,
            is_run=True,
            hear="joined",
            tell="ran",
        ),
        _Step(None, broadcast),  # the joiner's message
    )
    joining = (
        _Step(
            _message("join_thread", code=""),
            frozenset({"thread_joined"}),
            hear="code",
            tell="joined",
            with_code=True,
        ),
        _Step(None, broadcast),  # the inviter's message
        # Once the inviter's run is over, so that its stream's order is the same every time.
        _Step(_message("user_message", text=second, thread_id=thread), done, True, hear="ran"),
    )
    return [
        _Script(i_route, inviter, i_auth, inviting, rng.uniform(0, 0.05)),
        _Script(j_route, joiner, j_auth, joining, rng.uniform(0, 0.05), j_route == "/ws/isolated"),
    ]


class _Room:
    """What the shared room's sessions tell each other, as it happens."""

    def __init__(self) -> None:
        self._signals: dict[str, asyncio.Future[Any]] = {}

    def _future(self, name: str) -> asyncio.Future[Any]:
        if name not in self._signals:
            self._signals[name] = asyncio.get_running_loop().create_future()
        return self._signals[name]

    def tell(self, name: str, value: Any = None) -> None:
        future = self._future(name)
        if not future.done():
            future.set_result(value)

    async def hear(self, name: str) -> Any:
        return await self._future(name)


# ---- playing it -------------------------------------------------------------------


@dataclass
class _Session:
    script: _Script
    url: str
    room: _Room
    ws: ClientConnection | None = None
    received: list[Any] = field(default_factory=list)
    sent: int = 0
    runs: int = 0

    def _fail(self, what: str) -> TrafficError:
        who = self.script.user or "unauthenticated client"
        return TrafficError(f"demo traffic: {who} on {self.script.route}: {what}")

    async def _recv_until(self, done: Callable[[list[Any]], bool], what: str) -> None:
        assert self.ws is not None
        try:
            async with asyncio.timeout(_WAIT):
                while not done(self.received):
                    raw = await self.ws.recv()
                    try:
                        self.received.append(json.loads(raw))
                    except (TypeError, ValueError):
                        self.received.append(raw)
        except TimeoutError:
            raise self._fail(f"no {what} within {_WAIT:.0f}s") from None
        except ConnectionClosed as exc:
            raise self._fail(f"connection closed ({exc}) while waiting for {what}") from None

    async def play(self) -> SessionOutcome:
        script = self.script
        await asyncio.sleep(script.start_delay)
        token = f"user-{script.user}"
        subprotocols: list[Subprotocol] | None = None
        headers: list[tuple[str, str]] = []
        if script.auth == "subprotocol":
            subprotocols = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]
        elif script.auth == "header":
            headers.append(("Authorization", f"Bearer {token}"))
        try:
            ws = await connect(
                self.url + script.route,
                subprotocols=subprotocols,
                additional_headers=headers,
                open_timeout=_WAIT,
                ping_interval=None,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise Unreachable(
                f"demo traffic: cannot connect to {self.url + script.route}: {exc}"
            ) from exc
        self.ws = ws
        async with ws:
            if script.user is None:
                await self._until_closed()
            else:
                await self._converse()
        return SessionOutcome(
            route=script.route,
            user=script.user,
            auth=script.auth,
            subprotocol=ws.subprotocol,
            runs=self.runs,
            sent=self.sent,
            received=tuple(self.received),
            close_code=ws.close_code,
        )

    async def _until_closed(self) -> None:
        assert self.ws is not None
        try:
            async with asyncio.timeout(_WAIT):
                while True:
                    self.received.append(json.loads(await self.ws.recv()))
        except ConnectionClosed:
            return
        except TimeoutError:
            raise self._fail("the server did not close the unauthenticated connection") from None

    async def _converse(self) -> None:
        assert self.ws is not None
        route = self.script.route
        if route in ("/ws", "/websocket"):
            await self._recv_until(
                lambda got: {"ping", "system_message"} <= _types(got), "welcome and heartbeat"
            )
        elif route == "/ws/isolated":
            await self._recv_until(lambda got: "connection_established" in _types(got), "welcome")
        user_id = _welcome_user_id(self.received)
        for i, step in enumerate(self.script.steps):
            what = "/".join(sorted(step.until))
            if step.send is None:
                await self._recv_until(_answered(step.until, 0), what)
                continue
            code = await self._hear(step.hear) if step.hear else None
            text = step.send
            if (i == 0 and self.script.echo_user_id and user_id is not None) or step.with_code:
                doc = json.loads(text)
                if i == 0 and self.script.echo_user_id:
                    doc["payload"]["user_id"] = user_id
                if step.with_code:
                    doc["payload"]["code"] = code
                text = json.dumps(doc)
            mark = len(self.received)
            await self.ws.send(text)
            self.sent += 1
            await self._recv_until(_answered(step.until, mark), what)
            if step.is_run:
                self.runs += 1
            if step.tell is not None:
                answer = next(m for m in reversed(self.received) if _types([m]) & step.until)
                self.room.tell(step.tell, _field(answer, "code"))
        await self.ws.close(1000)

    async def _hear(self, name: str) -> Any:
        try:
            async with asyncio.timeout(_WAIT):
                return await self.room.hear(name)
        except TimeoutError:
            raise self._fail(f"the shared room gave no {name} within {_WAIT:.0f}s") from None


def _types(messages: list[Any]) -> set[str]:
    return {str(m.get("type")) for m in messages if isinstance(m, dict)}


def _answered(wanted: frozenset[str], mark: int) -> Callable[[list[Any]], bool]:
    """True once a message of a wanted type arrived after index ``mark``."""
    return lambda got: bool(_types(got[mark:]) & wanted)


def _field(message: Any, name: str) -> Any:
    """A field of a server message, flat or in its route's ``payload``/``data`` envelope."""
    if not isinstance(message, dict):
        return None
    for node in (message, message.get("payload"), message.get("data")):
        if isinstance(node, dict) and name in node:
            return node[name]
    return None


def _welcome_user_id(messages: list[Any]) -> str | None:
    for m in messages:
        if isinstance(m, dict) and m.get("type") == "connection_established":
            return str(m.get("user_id"))
    return None


async def run_traffic(
    base_url: str, *, seed: int | None = None, shared_room: bool = True
) -> TrafficSummary:
    """Play the demo script against ``base_url`` (``ws://host:port``) and summarise it.

    All sessions run concurrently. ``seed`` fixes the texts, run counts,
    thread ids and start offsets (random by default). ``shared_room=False``
    leaves out the shared room, whose two sessions replay only together (as a
    scenario), for a replay that takes each session alone (the pytest
    plugin's). Raises
    :class:`~replay.errors.Unreachable` when a connection cannot be opened and
    :class:`TrafficError` when a server does not answer as the protocol says.
    """
    rng = random.Random(seed)
    base = base_url.rstrip("/")
    room = _Room()
    sessions = [_Session(script, base, room) for script in _build_script(rng, shared_room)]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.play()) for s in sessions]
    except* WsShadowError as failed:
        raise failed.exceptions[0] from None
    return TrafficSummary(tuple(t.result() for t in tasks))
