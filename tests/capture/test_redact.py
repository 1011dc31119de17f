"""Redaction: credentials replaced by named placeholders, ordinary fields kept."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_session
from wsshadow.replay.capture.model import Handshake, Message
from wsshadow.replay.capture.redact import PLACEHOLDER_RE, Redactor
from wsshadow.replay.capture.store import CaptureStore

R = Redactor()


def test_secret_headers_become_named_placeholders() -> None:
    h = Redactor().headers(
        (
            ("Authorization", "Bearer abc"),
            ("Cookie", "sid=1"),
            ("X-Req", "7"),
            ("Proxy-Authorization", "Basic xyz"),
        )
    )
    assert h == (
        ("Authorization", "${redacted:header:authorization#1}"),
        ("Cookie", "${redacted:header:cookie#2}"),
        ("X-Req", "7"),
        ("Proxy-Authorization", "${redacted:header:proxy-authorization#3}"),
    )


def test_token_subprotocols() -> None:
    R = Redactor()
    assert R.subprotocol("jwt.eyJhbGciOi.abc.def") == "jwt.${redacted:subprotocol:jwt#1}"
    assert R.subprotocol("jwt-auth") == "jwt-auth"
    assert R.subprotocol("graphql-ws") == "graphql-ws"
    assert R.subprotocol("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig") == (
        "${redacted:subprotocol:token#2}"
    )
    k8s = "base64url.bearer.authorization.k8s.io.c2VjcmV0"
    assert R.subprotocol(k8s) == (
        "base64url.bearer.authorization.k8s.io.${redacted:subprotocol:base64url#3}"
    )
    h = R.headers((("Sec-WebSocket-Protocol", "jwt-auth, jwt.user-alice"),))
    assert h == (("Sec-WebSocket-Protocol", "jwt-auth, jwt.${redacted:subprotocol:jwt#4}"),)


def test_query_parameters() -> None:
    R = Redactor()
    assert R.query("mode=main&token=user-alice") == "mode=main&token=${redacted:query:token#1}"
    assert R.query("access_token=x&keep=1") == (
        "access_token=${redacted:query:access_token#2}&keep=1"
    )
    assert R.query("tokens_used=3&key=abc") == "tokens_used=3&key=abc"


def test_json_fields_whole_name_case_insensitive() -> None:
    text = json.dumps(
        {
            "type": "auth",
            "Token": "t0p",
            "payload": {
                "apiKey": "k",
                "key": "kept",
                "tokens_used": 12,
                "items": [{"password": "pw"}],
            },
        }
    )
    out = json.loads(Redactor().text(text))
    assert out["Token"] == "${redacted:json:token#1}"
    assert out["payload"]["apiKey"] == "${redacted:json:apikey#2}"
    assert out["payload"]["items"][0]["password"] == "${redacted:json:password#3}"
    assert out["payload"]["key"] == "kept" and out["payload"]["tokens_used"] == 12


def test_untouched_text_is_returned_byte_identical() -> None:
    for text in ['{"a": 1,   "b": "x"}', "not json with token in it", '{"token": null}']:
        assert R.text(text) is text


def test_extra_names_and_opt_out() -> None:
    r = Redactor(extra_fields=("session_key",), extra_headers=("X-Api-Key",))
    assert json.loads(r.text('{"session_key": "s"}'))["session_key"] == (
        "${redacted:json:session_key#1}"
    )
    assert r.headers((("X-Api-Key", "v"),)) == (("X-Api-Key", "${redacted:header:x-api-key#2}"),)
    off = Redactor(enabled=False)
    assert off.text('{"token": "x"}') == '{"token": "x"}'
    assert off.handshake(Handshake("/ws", query="token=x")).query == "token=x"


@given(st.text(max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = R.text(text)
    assert R.text(once) == once


def test_placeholders_parse() -> None:
    m = PLACEHOLDER_RE.search("Bearer ${redacted:header:authorization}")
    assert m is not None and m.groups() == ("header", "authorization", None)
    m = PLACEHOLDER_RE.search("jwt.${redacted:subprotocol:jwt#12}")
    assert m is not None and m.groups() == ("subprotocol", "jwt", "12")


def test_no_secret_reaches_the_capture_file_bytes(tmp_path: Path) -> None:
    secrets = [
        "Bearer sekret-bearer-0001",
        "sekret-jwt-0002",
        "sekret-json-0003",
        "sekret-query-0004",
        "sid=sekret-cookie-0005",
    ]
    s = make_session(
        "leaky",
        query="mode=main&access_token=sekret-query-0004",
        request_headers=(
            ("Authorization", secrets[0]),
            ("Cookie", secrets[4]),
            ("Sec-WebSocket-Protocol", "jwt-auth, jwt.sekret-jwt-0002"),
        ),
        subprotocols=("jwt-auth", "jwt.sekret-jwt-0002"),
        subprotocol="jwt.sekret-jwt-0002",
        messages=[
            ("client", "text", json.dumps({"type": "login", "token": "sekret-json-0003"})),
            ("server", "text", '{"type": "ok", "tokens_used": 5}'),
        ],
    )
    path = tmp_path / "c.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_session(s)
        w = store.writer()
        w.open_session("live", 1.0, s.handshake)
        w.append(
            "live",
            Message(0, 0.0, s.messages[0].direction, s.messages[0].opcode, s.messages[0].payload),
        )
        w.flush()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in [
        "sekret-bearer-0001",
        "sekret-jwt-0002",
        "sekret-json-0003",
        "sekret-query-0004",
        "sekret-cookie-0005",
    ]:
        assert secret.encode() not in blob
    assert b"tokens_used" in blob  # ordinary fields survive
