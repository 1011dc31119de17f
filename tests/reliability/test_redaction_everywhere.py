"""Secrets never reach a capture file, whichever way a session comes in.

Every test scans the raw bytes of the capture file and its write-ahead log
for the secret strings, so no code path (a column, an index, a run row, a
stale WAL frame) can hide one.
"""

from __future__ import annotations

import contextlib
import io
import json
import stat
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from tests.reliability.kit import cli, recorded, ws_server
from tests.timeouts import scaled
from wsshadow.recorders.asgi import WsShadowRecorder
from wsshadow.recorders.har import write_har
from wsshadow.recorders.serve import serve_asgi
from wsshadow.replay.capture.jsonl import write_jsonl
from wsshadow.replay.capture.model import Session
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.diff.normalize import unnumbered

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJKV1RTRUNSRVQifQ.SIGJWTSECRET"
SECRETS = {
    "authorization": "Bearer AUTH-SECRET-1111",
    "cookie": "sid=COOKIE-SECRET-2222",
    "jwt": JWT,
    "query": "QUERY-SECRET-3333",
    "password": "JSON-SECRET-4444",
    "access_token": "JSON-SECRET-5555",
    "session_key": "CUSTOM-SECRET-6666",
}


def _file_bytes(cap: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal"):
        p = Path(str(cap) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def assert_no_secret(cap: Path, secrets: dict[str, str] | None = None) -> None:
    data = _file_bytes(cap)
    assert data, "nothing to scan"
    for name, secret in (secrets or SECRETS).items():
        for form in {secret, secret.split()[-1], secret.split("=")[-1]}:
            assert form.encode() not in data, f"{name} ({form}) leaked into {cap}"


def assert_owner_only(cap: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(cap) + suffix)
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def secret_session(sid: str = "sec1") -> Session:
    return recorded(
        sid,
        [
            ("client", json.dumps({"type": "login", "password": SECRETS["password"]})),
            (
                "server",
                json.dumps({"type": "ok", "data": {"access_token": SECRETS["access_token"]}}),
            ),
            ("client", json.dumps({"type": "call", "sessionKey": SECRETS["session_key"]})),
        ],
        headers=(("Authorization", SECRETS["authorization"]), ("Cookie", SECRETS["cookie"])),
        query=f"room=1&token={SECRETS['query']}",
        subprotocols=(f"jwt.{JWT}", "chat"),
    )


def _check_placeholders(cap: Path) -> Session:
    with CaptureStore.open(cap) as store:
        (s,) = list(store.iter_sessions())
    h = s.handshake
    assert unnumbered(h.request_header("authorization")) == "${redacted:header:authorization}"
    assert unnumbered(h.request_header("cookie")) == "${redacted:header:cookie}"
    assert unnumbered(h.query) == "room=1&token=${redacted:query:token}"
    assert unnumbered(h.subprotocols) == ("jwt.${redacted:subprotocol:jwt}", "chat")
    assert "${redacted:json:password}" in unnumbered(str(s.messages[0].payload))
    return s


def test_jsonl_import_redacts(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        write_jsonl([secret_session()], f)
    assert SECRETS["password"].encode() in src.read_bytes()  # the input really has them
    cap = tmp_path / "cap.db"
    assert cli(capsys, ["captures", "import", src, cap, "--redact-field", "sessionKey"])[0] == 0
    _check_placeholders(cap)
    assert_no_secret(cap)
    assert_owner_only(cap)


def test_har_import_redacts(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.har"
    buf = io.StringIO()
    write_har([secret_session()], buf)
    src.write_text(buf.getvalue())
    assert SECRETS["query"] in buf.getvalue()
    cap = tmp_path / "cap.db"
    assert cli(capsys, ["captures", "import", src, cap, "--redact-field", "sessionKey"])[0] == 0
    _check_placeholders(cap)
    assert_no_secret(cap)
    assert_owner_only(cap)


def _json_echo_app() -> Starlette:
    async def ws(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=offered[0] if offered else None)
        # The server hands out a token and echoes JSON as it came.
        await websocket.send_json({"type": "welcome", "token": SECRETS["access_token"]})
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            return

    return Starlette(routes=[WebSocketRoute("/ws", ws)])


async def test_asgi_middleware_redacts(tmp_path: Path) -> None:
    cap = tmp_path / "asgi.db"
    recorder = WsShadowRecorder(_json_echo_app(), capture=cap, flush_interval=0.05)
    with serve_asgi(recorder) as served:
        async with connect(
            f"{served.ws_url}/ws?room=1&token={SECRETS['query']}",
            subprotocols=[f"jwt.{JWT}", "chat"],  # type: ignore[list-item]
            additional_headers={
                "Authorization": SECRETS["authorization"],
                "Cookie": SECRETS["cookie"],
            },
        ) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "login", "password": SECRETS["password"]}))
            assert SECRETS["password"] in str(await ws.recv())  # the app saw the real one
        recorder.close()
        assert_no_secret(cap)
        assert_owner_only(cap)
    with CaptureStore.open(cap) as store:
        (s,) = list(store.iter_sessions())
    assert (
        unnumbered(s.handshake.request_header("authorization"))
        == "${redacted:header:authorization}"
    )
    assert unnumbered(s.handshake.subprotocol) == "jwt.${redacted:subprotocol:jwt}"
    assert_no_secret(cap)


FRESH = {
    "authorization": "Bearer FRESH-AUTH-7777",
    "jwt": "eyJmcmVzaCI6MX0.eyJGUkVTSCI6Mn0.FRESHSIG8888",
    "token": "FRESH-QUERY-9999",
    "password": "FRESH-PASS-1010",
    "sessionkey": "FRESH-CUSTOM-1212",
    "cookie": "sid=FRESH-COOKIE-1313",
}


def test_replay_stores_placeholders_not_the_fresh_credentials(tmp_path: Path, capsys) -> None:
    """--credential values reach the target, and never the capture, even when echoed."""
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        write_jsonl([secret_session()], f)
    cap = tmp_path / "cap.db"
    # --redact-field adds a name that the replay's own redaction does not know
    assert cli(capsys, ["captures", "import", src, cap, "--redact-field", "sessionKey"])[0] == 0
    seen: dict[str, object] = {}

    def tell_all(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen["auth"] = ws.request.headers.get("Authorization")
        seen["path"] = ws.request.path
        seen["protocol"] = ws.subprotocol
        # A careless target echoes the credentials it got in fields no redactor knows.
        ws.send(json.dumps({"type": "welcome", "you_are": seen["auth"], "path": seen["path"],
                            "proto": ws.subprotocol}))  # fmt: skip
        for raw in ws:
            seen.setdefault("messages", []).append(raw)  # type: ignore[union-attr]
            # Once the client's close has arrived a send fails, but later messages
            # already received are still read: keep going so none is missed.
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"type": "echo", "got": raw}))

    def first(conn: ServerConnection, offered: list[str]) -> str | None:
        return offered[0] if offered else None

    with ws_server(tell_all, select_subprotocol=first) as url:
        argv = ["replay", cap, "--target", url, "--run", "fresh"]
        for name, value in FRESH.items():
            argv += ["--credential", f"{name}={value}"]
        code, out, err = cli(capsys, argv)
        # the server's handler thread may still be reading the last message
        deadline = time.monotonic() + scaled(5)
        while len(seen.get("messages", [])) < 2 and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.01)
    assert code == 0, err
    # the target got every fresh value...
    assert seen["auth"] == FRESH["authorization"]
    assert FRESH["token"] in str(seen["path"])
    assert seen["protocol"] == f"jwt.{FRESH['jwt']}"
    sent = "".join(seen["messages"])  # type: ignore[arg-type]
    assert FRESH["password"] in sent and FRESH["sessionkey"] in sent
    # ...and none of them is in the capture, the terminal output, or the old secrets either
    for text in (out, err):
        for value in FRESH.values():
            assert value not in text
    assert_no_secret(cap, FRESH)
    assert_no_secret(cap, SECRETS)
    assert_owner_only(cap)
    with CaptureStore.open(cap) as store:
        (s,) = list(store.iter_sessions("fresh"))
    assert (
        unnumbered(s.handshake.request_header("authorization"))
        == "${redacted:header:authorization}"
    )
    assert unnumbered(s.handshake.subprotocols) == ("jwt.${redacted:subprotocol:jwt}", "chat")
    assert "${redacted:" in s.handshake.query and s.handshake.subprotocol is not None
    assert "${redacted:" in s.handshake.subprotocol
    docs = [json.loads(str(m.payload)) for m in s.messages]
    (welcome,) = [d for d in docs if d["type"] == "welcome"]
    assert welcome["you_are"].startswith("${redacted:")
    assert_no_secret(cap, FRESH)
