"""A headless Chromium page speaking the demo's chat protocol to ``serve``: it renders the
recorded conversation (Debian's chromium, installed by `make browser`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.report.chromium import CHROMIUM, Chromium
from tests.serve.helpers import served
from tests.timeouts import scaled
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.demo.legacy import create_legacy_app
from wsshadow.replay.demo.running import serve_app

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists():  # make test installs it first (the `browser` target)
    pytest.fail(f"{CHROMIUM} is missing: run `make browser`", pytrace=False)

PROTOCOLS = ["jwt-auth", "jwt.user-ann"]
ASK = json.dumps({"type": "user_message", "payload": {"text": "hello", "thread_id": "t-1"}},
                 separators=(",", ":"))  # fmt: skip

PAGE = """<!doctype html><html><body><ol id="chat"></ol><script>
const ws = new WebSocket(%(url)s, %(protocols)s);
const chat = document.getElementById('chat');
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  const li = document.createElement('li');
  li.textContent = m.type + (m.data && m.data.event ? ':' + m.data.event : '');
  chat.appendChild(li);
  if (m.type === 'system_message') ws.send(%(ask)s);
  if (m.type === 'agent_completed') ws.close(1000, 'thanks');
};
ws.onclose = (e) => { document.body.dataset.code = e.code; document.body.dataset.done = '1'; };
</script></body></html>"""


async def record_legacy_chat() -> Session:
    """One real conversation with the demo's legacy server on /ws, recorded by the client."""
    frames: list[Message] = []
    loop = asyncio.get_running_loop()
    async with serve_app(create_legacy_app(seed=5)) as legacy:
        async with connect(legacy + "/ws", subprotocols=PROTOCOLS) as ws:  # type: ignore[arg-type]
            opened = loop.time()

            def note(d: Direction, p: str | bytes) -> None:
                assert isinstance(p, str)
                frames.append(Message(len(frames), loop.time() - opened, d, Opcode.TEXT, p))

            for _ in range(2):  # the heartbeat and the welcome, in either order
                note(Direction.SERVER, await asyncio.wait_for(ws.recv(), scaled(10)))
            await ws.send(ASK)
            note(Direction.CLIENT, ASK)
            for _ in range(5):
                note(Direction.SERVER, await asyncio.wait_for(ws.recv(), scaled(10)))
            selected = ws.subprotocol
            await ws.close(1000, "thanks")
    return Session(
        id="legacy-chat",
        started_at=1_764_150_000.0,
        handshake=Handshake("/ws", subprotocols=tuple(PROTOCOLS), subprotocol=selected),
        messages=tuple(frames),
        close=Close(1000, "thanks", Closer.CLIENT, t=loop.time() - opened),
    )


async def test_a_browser_renders_the_recorded_conversation(tmp_path: Path) -> None:
    session = await record_legacy_chat()
    assert session.handshake.subprotocol == "jwt-auth"
    expected = []
    for m in session.server_messages():
        assert isinstance(m.payload, str)
        doc = json.loads(m.payload)
        event = doc.get("data", {}).get("event") if isinstance(doc.get("data"), dict) else None
        expected.append(doc["type"] + (":" + event if event else ""))
    async with served([session]) as (url, server, lines):
        page = tmp_path / "chat.html"
        page.write_text(PAGE % {"url": json.dumps(url + "/ws"), "protocols": json.dumps(PROTOCOLS),
                                "ask": json.dumps(ASK)}, encoding="utf-8")  # fmt: skip
        async with Chromium(tmp_path) as browser:
            await browser.navigate(page.resolve().as_uri(), "document.body.dataset.done === '1'",
                                   timeout=scaled(30))  # fmt: skip
            shown = await browser.evaluate(
                "Array.from(document.querySelectorAll('#chat li')).map(li => li.textContent)"
            )
            code = await browser.evaluate("document.body.dataset.code")
    assert shown == expected
    assert "system_message:connection_established" in shown and shown[-1] == "agent_completed"
    assert code == "1000"
    assert server.mismatches == [] and lines == []
    assert server.stats.messages_served == 7
