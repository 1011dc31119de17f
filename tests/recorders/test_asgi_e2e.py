"""End to end: a Starlette app under uvicorn, recorded by ``WsShadowRecorder``,
replayed with ``wsshadow replay`` against the same app unwrapped, and called
equivalent by ``wsshadow diff --baseline recorded``.

The app issues what real servers issue (a uuid connection id, ISO timestamps,
a server-chosen subprotocol, a server close); the default diff masks take
care of the generated values. A changed app is the control: the same diff
then exits 1.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsshadow.recorders.asgi import WsShadowRecorder
from wsshadow.recorders.serve import serve_asgi
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"


def chat_app(verdict: str = "ok") -> Starlette:
    """A small chat backend: welcome, two events per message, ``bye`` closes with 4000."""

    async def chat(ws: WebSocket) -> None:
        offered = ws.scope.get("subprotocols") or []
        await ws.accept(subprotocol="chat.v2" if "chat.v2" in offered else None)
        await ws.send_json({"type": "welcome", "connection_id": str(uuid.uuid4()),
                            "room": ws.query_params.get("room"),
                            "server_time": datetime.now(UTC).isoformat()})  # fmt: skip
        try:
            while True:
                text = await ws.receive_text()
                if text == "bye":
                    await ws.close(code=4000, reason="bye now")
                    return
                run = uuid.uuid4().hex
                await ws.send_json({"type": "started", "run_id": run})
                await ws.send_json({"type": "reply", "run_id": run, "text": text[::-1],
                                    "verdict": verdict})  # fmt: skip
        except WebSocketDisconnect:
            return

    return Starlette(routes=[WebSocketRoute("/ws/chat", chat)])


async def client(base: str, text: str) -> list[Any]:
    async with connect(
        f"{base}/ws/chat?room=7&token=s3cret",
        subprotocols=[f"jwt.{JWT}", "chat.v2"],  # type: ignore[list-item]
        additional_headers={"Authorization": "Bearer top-secret"},
    ) as ws:
        got = [json.loads(await ws.recv())]
        for word in (text, text.upper()):
            await ws.send(word)
            got += [json.loads(await ws.recv()) for _ in range(2)]
        await ws.send("bye")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4000
        return got


@pytest.mark.slow
def test_recorded_asgi_app_replays_equivalent_against_itself_unwrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no wsshadow.toml around: the built-in diff defaults
    capture = tmp_path / "asgi.db"
    recorder = WsShadowRecorder(chat_app(), capture=capture)
    with serve_asgi(recorder) as served:

        async def traffic() -> None:
            await asyncio.gather(*(client(served.ws_url, f"hello {i}") for i in range(3)))

        asyncio.run(traffic())
    recorder.close()
    with CaptureStore.open(capture) as store:
        assert store.count_sessions() == 3
        assert all(s.handshake.subprotocol == "chat.v2" for s in store.iter_sessions())
    creds = ["--credential", "authorization=Bearer fresh", "--credential", "jwt=fresh",
             "--credential", "token=fresh"]  # fmt: skip
    with serve_asgi(chat_app()) as same, serve_asgi(chat_app(verdict="changed")) as changed:
        assert main(["replay", str(capture), "--target", same.ws_url, "--run", "same", *creds]) == 0
        assert main(["replay", str(capture), "--target", changed.ws_url, "--run", "changed",
                     *creds]) == 0  # fmt: skip
    report = tmp_path / "same.json"
    diff = ["diff", str(capture), "--baseline", "recorded", "--output"]
    assert main([*diff, str(report), "--candidate", "same"]) == 0
    same_report = json.loads(report.read_text())
    assert same_report["verdict"] == "equivalent"
    assert same_report["sessions"] == {"total": 3, "equivalent": 3, "divergent": 0, "errored": 0}
    # the control: a server that answers differently is caught by the same diff
    assert main([*diff, str(tmp_path / "changed.json"), "--candidate", "changed"]) == 1
    changed_report = json.loads((tmp_path / "changed.json").read_text())
    assert [d["signature"] for d in changed_report["differences"]] == [
        "changed_value /ws/chat reply verdict"
    ]
