"""The demo chat backend's behaviour, shared by the legacy and consolidated servers.

Both servers in the embedded demo speak the protocol of ``docs/demo.md``:
three dialects (:mod:`~replay.demo.dialects`: ``main``, ``factory``,
``isolated``) that differ in welcome, envelope and error shapes, over the
facts of :mod:`~replay.demo.protocol`, with shared threads (invites, joins,
broadcasts) in :mod:`~replay.demo.rooms`. This module is the handler: each
server is a routing table over :func:`serve`. It also re-exports the
protocol facts and dialects, their historical import path.

An I/O edge: it reads the clock and random numbers to make realistic noise.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from wsshadow.replay.demo import rooms
from wsshadow.replay.demo.dialects import Dialect, FactoryDialect, IsolatedDialect, MainDialect
from wsshadow.replay.demo.protocol import (
    AGENT_EVENTS,
    AGENT_NAME,
    LEGACY_QUIRKS,
    TOKEN_PREFIX,
    Auth,
    Connection,
    Mode,
    Quirks,
    Run,
    ServerState,
    authenticate,
    derive_content,
    iso_now,
    offered_subprotocols,
)

__all__ = [
    "AGENT_EVENTS",
    "AGENT_NAME",
    "LEGACY_QUIRKS",
    "TOKEN_PREFIX",
    "Auth",
    "Connection",
    "Dialect",
    "FactoryDialect",
    "IsolatedDialect",
    "MainDialect",
    "Mode",
    "Quirks",
    "Run",
    "ServerState",
    "authenticate",
    "derive_content",
    "iso_now",
    "offered_subprotocols",
    "serve",
]


async def serve(request: web.Request, dialect: Dialect) -> web.WebSocketResponse:
    """Serve one WebSocket connection in ``dialect``: handshake, auth, then messages."""
    state = ServerState.of(request)
    auth = authenticate(request)
    protocols = dialect.protocols(auth)
    ws = web.WebSocketResponse(protocols=protocols, autoping=True)
    if not protocols and "Sec-WebSocket-Protocol" in request.headers:
        # A route that never selects a subprotocol: drop the offer before the
        # handshake so aiohttp does not log a warning for every browser client.
        request = request.clone(headers=_without(request, "Sec-WebSocket-Protocol"))
    await ws.prepare(request)
    state.sockets.add(ws)
    try:
        if auth.user_id is None:
            await dialect.reject(ws)
            return ws
        conn = Connection(ws=ws, user_id=auth.user_id, state=state)
        try:
            await dialect.greet(conn, auth)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await _handle(conn, dialect, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await conn.send(dialect.bad_json())
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            state.rooms.leave(conn)
        return ws
    finally:
        state.sockets.discard(ws)


def _without(request: web.Request, name: str) -> CIMultiDict[str]:
    headers = request.headers.copy()
    headers.popall(name, None)
    return headers


async def _handle(conn: Connection, dialect: Dialect, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        await conn.send(dialect.bad_json())
        return
    error = dialect.check(conn, message)
    if error is not None:
        await conn.send(error)
        return
    kind = message.get("type")
    if kind in dialect.agent_triggers:
        await _agent_run(conn, dialect, message)
    elif kind == "ping":
        await conn.send(dialect.reply("pong"))
    elif kind == "heartbeat":
        await conn.send(dialect.reply("heartbeat_ack"))
    elif kind == "create_invite":
        await rooms.create_invite(conn, dialect, message)
    elif kind == "join_thread":
        await rooms.join_thread(conn, dialect, message)
    else:
        await conn.send(dialect.unknown(str(kind)))


async def _agent_run(conn: Connection, dialect: Dialect, message: dict[str, Any]) -> None:
    text, thread_id, request_id = dialect.run_request(message)
    run = Run(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id or f"thread_{uuid.uuid4().hex[:12]}",
        text=text,
        request_id=request_id or f"req_{uuid.uuid4().hex[:12]}",
    )
    # The other members of a shared thread hear of it before the sender's run begins.
    await rooms.share_message(conn, run.thread_id, text)
    content = derive_content(text)
    low, high = conn.state.step_delay
    for i, kind in enumerate(AGENT_EVENTS):
        if kind == "agent_thinking" and dialect.quirks.drop_thinking:
            continue
        if i and high > 0:
            await asyncio.sleep(conn.state.rng.uniform(low, high))
        await conn.send(dialect.event(conn, run, kind, content[kind]))
