"""A two-user app that knows who its users are: an aiohttp server authenticating each
connection by its bearer token, and the two users' recorded script.

Alice invites (the server issues a fresh code), Bob accepts with that code, then
each says something to the room. The server refuses an invite accepted by the
user who issued it ("you cannot accept your own invite") and puts the
authenticated sender in every ``said`` broadcast's ``from``. The candidate
``wrong_from`` puts each recipient there instead: sender and recipient mixed up.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web
from websockets.asyncio.client import connect

from tests.engine.scenario_apps import PAUSE, _dump, _recv_until

RECORDED = {"alice": "Bearer rec-alice-7f3a9e", "bob": "Bearer rec-bob-91c2d4"}
"""The tokens the recorded users had."""
TESTERS = {"ann": "Bearer test-ann-5d1e08", "ben": "Bearer test-ben-0b77c3"}
"""The test users' tokens replay supplies."""
USERS = {token.removeprefix("Bearer "): user for user, token in (RECORDED | TESTERS).items()}


class InviteServer:
    """The app; one instance per server (invite codes are its own)."""

    def __init__(self, *, wrong_from: bool = False) -> None:
        self.wrong_from = wrong_from
        self.invites: dict[str, list[tuple[str, web.WebSocketResponse]]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/room", self.handler)
        return app

    async def handler(self, request: web.Request) -> web.StreamResponse:
        user = USERS.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(_dump({"type": "welcome", "user": user}))
        room: list[tuple[str, web.WebSocketResponse]] | None = None
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            doc = json.loads(msg.data)
            if doc["type"] == "invite":
                code = "I-" + secrets.token_hex(5).upper()
                room = self.invites[code] = [(user, ws)]
                await ws.send_str(_dump({"type": "invited", "code": code}))
            elif doc["type"] == "accept":
                members = self.invites.get(doc.get("code", ""))
                if members is None:
                    await ws.send_str(_dump({"type": "error", "reason": "no such invite"}))
                elif members[0][0] == user:
                    reason = "you cannot accept your own invite"
                    await ws.send_str(_dump({"type": "error", "reason": reason}))
                else:
                    room = members
                    await members[0][1].send_str(_dump({"type": "joined", "from": user}))
                    members.append((user, ws))
                    await ws.send_str(_dump({"type": "accepted", "with": members[0][0]}))
            elif doc["type"] == "say" and room is not None:
                for member, peer in room:
                    sender = member if self.wrong_from else user
                    said = {"type": "said", "from": sender, "text": doc["text"]}
                    await peer.send_str(_dump(said))
        return ws


async def invite_and_talk(url: str) -> None:
    """Alice invites, Bob accepts, Alice speaks, Bob answers: through ``url``."""
    code: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def as_user(name: str) -> Any:
        return connect(url + "/room", additional_headers={"Authorization": RECORDED[name]})

    async def alice() -> None:
        async with as_user("alice") as ws:
            await _recv_until(ws, "welcome")
            await asyncio.sleep(PAUSE)
            await ws.send(_dump({"type": "invite"}))
            code.set_result((await _recv_until(ws, "invited"))["code"])
            await _recv_until(ws, "joined")
            await asyncio.sleep(PAUSE)
            await ws.send(_dump({"type": "say", "text": "hello bob"}))
            await _recv_until(ws, "said")  # her own
            await _recv_until(ws, "said")  # Bob's answer
            await asyncio.sleep(PAUSE)

    async def bob() -> None:
        invite = await code
        await asyncio.sleep(PAUSE)
        async with as_user("bob") as ws:
            await _recv_until(ws, "welcome")
            await ws.send(_dump({"type": "accept", "code": invite}))
            await _recv_until(ws, "accepted")
            await _recv_until(ws, "said")  # Alice's
            await asyncio.sleep(PAUSE)
            await ws.send(_dump({"type": "say", "text": "hi alice"}))
            await _recv_until(ws, "said")  # his own
            await asyncio.sleep(PAUSE)

    await asyncio.gather(alice(), bob())
