"""Multi-user servers for the scenario tests, and scripted users recorded through the proxy.

- A two-player game: player 1 creates a game and gets a join code and a
  spectator code (fresh random values on every server), player 2 joins with
  the first, spectators watch with the second; every move is broadcast to
  everyone in the game, and the sixth ends it with a ``win`` event.
- A chat room: the first user opens a room and gets its code, two more
  join with it; every message is broadcast to the whole room. With
  ``named_rooms`` the first user names the room (``"room"``), as a client
  chooses a thread id: opening a name that is open already joins it.

Candidates: ``slow`` thinks that many seconds before each move is broadcast
(correct, only slower); ``drop_final`` never sends ``win``; ``mute_spectators`` stops
broadcasting moves to spectators; ``quiet_room`` stops broadcasting chat
messages to anyone but the sender. Broken baselines, for the causes that name a
link: ``hide_join_code`` never gives player 1 the join code; ``private_moves``
sends a move to its mover and the spectators, never to the other player.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.store import CaptureStore

MOVES = 6
PAUSE = 0.25  # seconds between a user's turns (longer than the link window, 0.2 s)


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


async def _send_all(targets: list[ServerConnection], doc: dict[str, Any]) -> None:
    text = _dump(doc)
    for ws in list(targets):
        with suppress(ConnectionClosed):
            await ws.send(text)


@dataclass
class _Game:
    game_id: int
    players: list[ServerConnection] = field(default_factory=list)
    spectators: list[ServerConnection] = field(default_factory=list)
    moves: int = 0


class GameServer:
    """The game's server; one instance per test server (codes are its own)."""

    def __init__(
        self,
        *,
        drop_final: bool = False,
        mute_spectators: bool = False,
        slow: float = 0.0,
        hide_join_code: bool = False,
        private_moves: bool = False,
    ) -> None:
        self.drop_final = drop_final
        self.mute_spectators = mute_spectators
        self.slow = slow
        self.hide_join_code = hide_join_code
        self.private_moves = private_moves
        self.by_join: dict[str, _Game] = {}
        self.by_watch: dict[str, _Game] = {}

    async def handler(self, ws: ServerConnection) -> None:
        game: _Game | None = None
        async for raw in ws:
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "create":
                game = _Game(secrets.randbelow(10**9) + 10**9, [ws])
                join = "J-" + secrets.token_hex(4).upper()
                watch = "S-" + secrets.token_hex(4).upper()
                self.by_join[join], self.by_watch[watch] = game, game
                created = {"type": "created", "game_id": game.game_id, "join_code": join,
                           "spectator_code": watch}  # fmt: skip
                if self.hide_join_code:
                    del created["join_code"]
                await ws.send(_dump(created))
            elif kind == "join":
                game = self.by_join.get(msg.get("code", ""))
                if game is None:
                    await ws.send(_dump({"type": "error", "reason": "no such game"}))
                    continue
                game.players.append(ws)
                await ws.send(_dump({"type": "joined", "game_id": game.game_id, "player": 2}))
                await _send_all(game.players[:1], {"type": "player_joined", "name": msg["name"]})
            elif kind == "watch":
                game = self.by_watch.get(msg.get("code", ""))
                if game is None:
                    await ws.send(_dump({"type": "error", "reason": "no such game"}))
                    continue
                game.spectators.append(ws)
                await ws.send(_dump({"type": "watching", "game_id": game.game_id}))
            elif kind == "move" and game is not None:
                game.moves += 1
                await asyncio.sleep(self.slow)
                player = game.players.index(ws) + 1 if ws in game.players else 0
                move = {"type": "moved", "player": player, "x": msg["x"], "y": msg["y"]}
                players = [ws] if self.private_moves else game.players
                audience = players + ([] if self.mute_spectators else game.spectators)
                await _send_all(audience, move)
                if game.moves == MOVES and not self.drop_final:
                    await _send_all(
                        game.players + game.spectators, {"type": "win", "winner": player}
                    )


class ChatServer:
    """The chat room's server."""

    def __init__(self, *, quiet_room: bool = False, named_rooms: bool = False) -> None:
        self.quiet_room = quiet_room
        self.named_rooms = named_rooms
        self.rooms: dict[str, list[ServerConnection]] = {}
        self.named: dict[str, list[ServerConnection]] = {}

    async def handler(self, ws: ServerConnection) -> None:
        try:
            await self._serve(ws)
        finally:  # a closed connection leaves whatever room it was in
            for members in (*self.rooms.values(), *self.named.values()):
                if ws in members:
                    members.remove(ws)

    async def _serve(self, ws: ServerConnection) -> None:
        room: list[ServerConnection] | None = None
        name = "?"
        async for raw in ws:
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "open":
                code = "R" + secrets.token_hex(4)
                if self.named_rooms:
                    room = self.named.setdefault(msg["room"], [])
                    room.append(ws)
                else:
                    room = [ws]
                self.rooms[code] = room
                name = msg["name"]
                await ws.send(_dump({"type": "room", "room_code": code}))
            elif kind == "enter":
                room = self.rooms.get(msg.get("room_code", ""))
                if room is None:
                    await ws.send(_dump({"type": "error", "reason": "no such room"}))
                    continue
                name = msg["name"]
                await _send_all(room, {"type": "entered", "name": name})
                room.append(ws)
                await ws.send(_dump({"type": "welcome", "members": len(room)}))
            elif kind == "say" and room is not None:
                said = {"type": "said", "from": name, "text": msg["text"]}
                await _send_all([ws] if self.quiet_room else room, said)


@asynccontextmanager
async def running(handler: Any) -> AsyncIterator[str]:
    """A server on an ephemeral loopback port; yields its ws:// URL."""
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def _recv_until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        doc: dict[str, Any] = json.loads(await ws.recv())
        if doc.get("type") == kind:
            return doc


async def play_game(url: str, spectators: int = 2) -> None:
    """One game: player 1, player 2 and ``spectators``, through ``url``."""
    codes: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    watching = [asyncio.Event() for _ in range(spectators)]
    joined = asyncio.Event()

    async def player(number: int, ws: ClientConnection) -> None:
        for turn in range(1, MOVES + 1):
            mover = 1 if turn % 2 else 2
            if mover == number:
                await asyncio.sleep(PAUSE)
                await ws.send(_dump({"type": "move", "x": turn % 3, "y": turn // 3}))
            await _recv_until(ws, "moved")
        await _recv_until(ws, "win")

    async def player1() -> None:
        async with connect(url + "/game") as ws:
            await ws.send(_dump({"type": "create"}))
            codes.set_result(await _recv_until(ws, "created"))
            await _recv_until(ws, "player_joined")
            await joined.wait()
            for w in watching:
                await w.wait()
            await player(1, ws)

    async def player2() -> None:
        created = await codes
        await asyncio.sleep(PAUSE)
        async with connect(url + "/game") as ws:
            await ws.send(_dump({"type": "join", "code": created["join_code"], "name": "bob"}))
            await _recv_until(ws, "joined")
            joined.set()
            await player(2, ws)

    async def spectator(i: int) -> None:
        created = await codes
        await asyncio.sleep(PAUSE * (i + 1))
        async with connect(url + "/game") as ws:
            await ws.send(_dump({"type": "watch", "code": created["spectator_code"]}))
            await _recv_until(ws, "watching")
            watching[i].set()
            await _recv_until(ws, "win")

    await asyncio.gather(player1(), player2(), *(spectator(i) for i in range(spectators)))


async def chat_room(url: str, room_name: str = "") -> None:
    """Three users in one room, each saying two things, everything broadcast (``room_name``:
    the name the first user gives the room, for a server with ``named_rooms``)."""
    code: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    entered = [asyncio.Event(), asyncio.Event()]
    turns = [asyncio.Event() for _ in range(6)]
    names = ["ann", "ben", "cat"]

    async def talk(ws: ClientConnection, me: int) -> None:
        for turn in range(6):
            if turn % 3 == me:
                if turn:
                    await turns[turn - 1].wait()
                await asyncio.sleep(PAUSE)
                await ws.send(_dump({"type": "say", "text": f"{names[me]} says hello #{turn}"}))
            await _recv_until(ws, "said")
            if turn % 3 == me:
                turns[turn].set()

    async def first() -> None:
        async with connect(url + "/chat") as ws:
            opening = {"type": "open", "name": "ann"} | ({"room": room_name} if room_name else {})
            await ws.send(_dump(opening))
            code.set_result((await _recv_until(ws, "room"))["room_code"])
            for e in entered:
                await e.wait()
            await talk(ws, 0)
            await asyncio.sleep(PAUSE)

    async def other(me: int) -> None:
        room = await code
        await asyncio.sleep(PAUSE * me)
        async with connect(url + "/chat") as ws:
            await ws.send(_dump({"type": "enter", "room_code": room, "name": names[me]}))
            await _recv_until(ws, "welcome")
            entered[me - 1].set()
            await talk(ws, me)
            await asyncio.sleep(PAUSE)

    await asyncio.gather(first(), other(1), other(2))


async def record(upstream: str, capture: Path, script: Any, times: int = 1) -> None:
    """Run ``script`` ``times`` through a recording proxy in front of ``upstream``."""
    with CaptureStore.open(capture, create=True) as store:
        async with RecordingProxy(upstream, store, listen=("127.0.0.1", 0)) as proxy:
            for _ in range(times):
                await script(proxy.url)
            await asyncio.sleep(0.3)  # the recorder commits every 50 ms
