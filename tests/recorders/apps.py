"""A small Starlette app with WebSocket routes, served by uvicorn in the recorder tests."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["make_app"]


async def echo(ws: WebSocket) -> None:
    """Echo: text as ``echo:<text>``, bytes reversed; ``bye`` makes the server close 4000."""
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="chat.v2" if "chat.v2" in offered else None)
    await ws.send_json({"type": "hello", "room": ws.query_params.get("room")})
    try:
        while True:
            event = await ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("text") is not None:
                if event["text"] == "bye":
                    await ws.close(code=4000, reason="bye now")
                    return
                await ws.send_text("echo:" + event["text"])
            else:
                await ws.send_bytes(bytes(reversed(event["bytes"])))
    except WebSocketDisconnect:
        return


async def deny(ws: WebSocket) -> None:
    """Refuse the handshake (the server answers 403)."""
    await ws.close()


async def deny_http(ws: WebSocket) -> None:
    """Refuse the handshake with an HTTP response (the websocket.http.response extension)."""
    await ws.send_denial_response(PlainTextResponse("no ticket", status_code=401))


async def crash(ws: WebSocket) -> None:
    """Accept, send one message, then fail."""
    await ws.accept()
    await ws.send_text("about to fail")
    raise RuntimeError("boom")


async def index(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def make_app() -> Starlette:
    """A fresh app: ``/`` (HTTP) and the WebSocket routes above under ``/ws/``."""
    return Starlette(
        routes=[
            Route("/", index),
            WebSocketRoute("/ws/echo", echo),
            WebSocketRoute("/ws/deny", deny),
            WebSocketRoute("/ws/deny-http", deny_http),
            WebSocketRoute("/ws/crash", crash),
        ]
    )
