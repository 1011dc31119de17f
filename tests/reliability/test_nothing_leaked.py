"""Issue 19, item 1: credentials in binary frames, secret-looking headers,
form-encoded messages and close reasons never reach a capture's bytes.

Every check scans the raw bytes of the capture file and its write-ahead log
(``-wal``), through the real recording proxy (real servers and clients on
127.0.0.1) and through JSONL import. The property test sends arbitrary JSON
documents with secret-named fields, as text and as binary frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.sync.client import connect as sync_connect

from tests.reliability.kit import cli, recorded, ws_server
from tests.reliability.test_redaction_everywhere import _file_bytes, assert_owner_only
from tests.timeouts import scaled
from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.jsonl import write_jsonl
from wsshadow.replay.capture.model import Close, Closer
from wsshadow.replay.capture.redact import DEFAULT_SECRET_FIELDS
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.diff.normalize import unnumbered

SECRETS = {
    "binary_json": "BIN-JSON-SECRET-1111",
    "binary_form": "BIN-FORM-SECRET-2222",
    "text_form_password": "FORM-PASS-SECRET-3333",
    "text_form_token": "FORM-TOKEN-SECRET-4444",
    "api_key_header": "APIKEY-HEADER-SECRET-5555",
    "auth_token_header": "AUTHTOKEN-HEADER-SECRET-6666",
    "close_reason": "CLOSE-TOKEN-SECRET-7777",
}


def _assert_clean(cap: Path, secrets: dict[str, str]) -> None:
    data = _file_bytes(cap)
    assert data, "nothing to scan"
    for name, secret in secrets.items():
        assert secret.encode() not in data, f"{name} ({secret}) leaked into {cap}"


def _messages() -> list[str | bytes]:
    return [
        json.dumps({"type": "login", "password": SECRETS["binary_json"]}).encode(),
        f"user=ann&password={SECRETS['binary_form']}".encode(),
        f"password={SECRETS['text_form_password']}&token={SECRETS['text_form_token']}&x=1",
    ]


async def test_proxy_redacts_binary_form_headers_and_close_reason(tmp_path: Path) -> None:
    cap = tmp_path / "proxy.db"
    seen: list[str | bytes] = []

    def echo(ws: Any) -> None:
        for raw in ws:
            seen.append(raw)
            ws.send(raw)

    with ws_server(echo) as upstream:
        async with RecordingProxy(upstream, cap, listen=("127.0.0.1", 0)) as proxy:
            async with connect(
                proxy.url + "/ws",
                additional_headers={
                    "X-Api-Key": SECRETS["api_key_header"],
                    "X-Auth-Token": SECRETS["auth_token_header"],
                },
            ) as ws:
                for m in _messages():
                    await ws.send(m)
                    assert await ws.recv() == m  # the upstream and the client get them whole
                await ws.close(4000, f"bad token={SECRETS['close_reason']}")
    assert seen == _messages()
    _assert_clean(cap, SECRETS)
    assert_owner_only(cap)
    with CaptureStore.open(cap) as store:
        (s,) = list(store.iter_sessions())
    assert unnumbered(s.handshake.request_header("x-api-key")) == "${redacted:header:x-api-key}"
    assert (
        unnumbered(s.handshake.request_header("x-auth-token")) == "${redacted:header:x-auth-token}"
    )
    assert (
        unnumbered(s.messages[0].payload)
        == b'{"type":"login","password":"${redacted:json:password}"}'
    )
    assert unnumbered(s.messages[2].payload) == b"user=ann&password=${redacted:form:password}"
    assert unnumbered(s.messages[4].payload) == (
        "password=${redacted:form:password}&token=${redacted:form:token}&x=1"
    )
    assert s.close is not None and unnumbered(s.close.reason) == "bad token=${redacted:form:token}"


def test_jsonl_import_redacts_binary_form_headers_and_close_reason(tmp_path: Path, capsys) -> None:
    session = recorded(
        "s1",
        [("client", m) for m in _messages()],
        headers=(
            ("X-Api-Key", SECRETS["api_key_header"]),
            ("X-Auth-Token", SECRETS["auth_token_header"]),
        ),
    )
    session = replace(
        session, close=Close(4000, f"token={SECRETS['close_reason']}", Closer.CLIENT, t=1.0)
    )
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        write_jsonl([session], f)
    raw = src.read_bytes()
    assert SECRETS["text_form_token"].encode() in raw  # the input really has them
    cap = tmp_path / "cap.db"
    code, _out, err = cli(capsys, ["captures", "import", src, cap])
    assert code == 0, err
    _assert_clean(cap, SECRETS)
    # and the export gives placeholders back, not the secrets
    out = tmp_path / "out.jsonl"
    assert cli(capsys, ["captures", "export", cap, out])[0] == 0
    text = out.read_text()
    for secret in SECRETS.values():
        assert secret not in text
    assert "${redacted:form:token}" in unnumbered(text)


def test_replay_fills_placeholders_in_binary_and_form_messages(tmp_path: Path, capsys) -> None:
    """What redaction put in a binary or form-encoded message, --credential fills again."""
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        write_jsonl([recorded("s1", [("client", m) for m in _messages()])], f)
    cap = tmp_path / "cap.db"
    assert cli(capsys, ["captures", "import", src, cap])[0] == 0
    got: list[str | bytes] = []

    def sink(ws: Any) -> None:
        for raw in ws:
            got.append(raw)

    with ws_server(sink) as url:
        code, _out, err = cli(
            capsys,
            ["replay", cap, "--target", url, "--run", "r", "--credential", "password=p w&1",
             "--credential", "token=TOK-FRESH-1"],
        )  # fmt: skip
    assert code == 0, err
    assert got[0] == b'{"type":"login","password":"p w&1"}'
    assert got[1] == b"user=ann&password=p%20w%261"
    assert got[2] == "password=p%20w%261&token=TOK-FRESH-1&x=1"


# ---- the property -------------------------------------------------------------------


class _ProxyThread:
    """A recording proxy and its event loop on a thread of their own (for sync tests)."""

    def __init__(self, upstream: str, cap: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = RecordingProxy(upstream, cap, listen=("127.0.0.1", 0))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[int]]]:
    """(proxy URL, capture, [sessions so far]) of one proxy for every example."""
    cap = tmp_path_factory.mktemp("prop") / "prop.db"
    with ws_server() as upstream:
        running = _ProxyThread(upstream, cap)
        try:
            yield running.proxy.url, cap, [0]
        finally:
            running.stop()


def _spellings(name: str) -> st.SearchStrategy[str]:
    parts = name.split("_")
    return st.sampled_from(
        [
            name,
            name.upper(),
            "-".join(parts),
            parts[0] + "".join(p.title() for p in parts[1:]),
        ]
    )


SECRET_NAMES = st.sampled_from(DEFAULT_SECRET_FIELDS).flatmap(_spellings)
SECRET_VALUES = st.text(string.ascii_letters + string.digits, min_size=10, max_size=24).map(
    lambda s: "Zx9SECRET" + s
)
_PLAIN_KEYS = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(
    lambda k: not any(f in k for f in ("key", "token", "pass", "secret", "api"))
)
_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON = st.recursive(
    _LEAVES,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_PLAIN_KEYS, kids, max_size=3),
    max_leaves=8,
)


@st.composite
def secret_documents(draw: st.DrawFn) -> tuple[Any, list[tuple[str, str]]]:
    """A JSON document with 1-3 secret-named string fields planted at random depths;
    returns it and the (name, value) pairs planted."""
    doc = draw(_JSON)
    planted: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 3))):
        name, value = draw(SECRET_NAMES), draw(SECRET_VALUES)
        planted.append((name, value))
        holder: dict[str, Any] = {name: value}
        # wrap the secret in 0-2 plain levels, then put it next to or inside the document
        for key in draw(st.lists(_PLAIN_KEYS, max_size=2)):
            holder = {key: holder} if draw(st.booleans()) else {key: [holder]}
        doc = draw(st.sampled_from([[doc, holder], {"a": doc, **holder}, {**holder, "z": [doc]}]))
    return doc, planted


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=secret_documents(), how=st.sampled_from(["text", "binary", "form"]))
def test_secret_fields_never_reach_the_capture_bytes(
    proxied: tuple[str, Path, list[int]], case: tuple[Any, list[tuple[str, str]]], how: str
) -> None:
    """Arbitrary JSON with secret-named fields, as a text or a binary frame (or the
    same names form-encoded), through the proxy: no secret in the .db or -wal bytes."""
    url, cap, count = proxied
    doc, planted = case
    if how == "form":
        message: str | bytes = urlencode([("k", "v"), *planted])
    else:
        text = json.dumps(doc, ensure_ascii=False)
        message = text if how == "text" else text.encode()
    with sync_connect(url + "/echo", max_size=None) as ws:
        ws.send(message)
        assert ws.recv(timeout=scaled(30)) == message  # passed through untouched
    count[0] += 1
    # The recorder commits every 50 ms: wait until this session's close is in the file.
    deadline = time.monotonic() + scaled(30)
    while True:
        with contextlib.closing(sqlite3.connect(cap)) as conn:
            closed = conn.execute("SELECT count(*) FROM sessions WHERE closed_by IS NOT NULL")
            if closed.fetchone()[0] >= count[0]:
                break
        assert time.monotonic() < deadline, "the proxy did not write the session"
        time.sleep(0.02)
    data = _file_bytes(cap)
    for name, secret in planted:
        assert secret.encode() not in data, (name, secret, message)
