"""Filling redaction placeholders with fresh credentials."""

from __future__ import annotations

import json

import pytest

from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.engine.credentials import Credentials, MissingCredential, parse_credential


def test_env_references_expand_and_missing_ones_are_named() -> None:
    creds = Credentials.resolve({"Authorization": "Bearer ${TOK}"}, {"TOK": "abc"})
    assert creds.lookup("header", "authorization") == "Bearer abc"
    creds = Credentials.resolve({"jwt": "${API_TOKEN}", "other": "x"}, {})
    assert creds.names == ("jwt", "other")
    assert creds.fill_text("${redacted:header:other}") == "x"
    with pytest.raises(MissingCredential, match="API_TOKEN"):
        creds.fill_text("jwt.${redacted:subprotocol:jwt}")


def test_fill_a_redacted_handshake_round_trip() -> None:
    original = Handshake(
        "/ws",
        query="token=s3cr3t&room=1",
        request_headers=(("Authorization", "Bearer old"), ("X-Other", "keep")),
        subprotocols=("chat", "jwt.eyJold"),
    )
    redacted = Redactor().handshake(original)
    assert "old" not in json.dumps(redacted.request_headers)
    creds = Credentials({"authorization": "Bearer new", "jwt": "eyJnew", "query:token": "a b&c"})
    filled = creds.fill_handshake(redacted)
    assert filled.request_header("Authorization") == "Bearer new"
    assert filled.request_header("X-Other") == "keep"
    assert filled.subprotocols == ("chat", "jwt.eyJnew")
    assert filled.query == "token=a%20b%26c&room=1"


def test_kind_specific_key_beats_plain_name() -> None:
    creds = Credentials({"token": "plain", "query:token": "specific"})
    assert creds.lookup("query", "token") == "specific"
    assert creds.lookup("json", "token") == "plain"


def test_json_messages_get_escaped_values() -> None:
    msg = Message(0, 0.0, Direction.CLIENT, Opcode.TEXT, '{"password":"${redacted:json:password}"}')
    (filled,) = Credentials({"password": 'a"b'}).fill_messages([msg])
    assert json.loads(str(filled.payload)) == {"password": 'a"b'}


def test_missing_credential_names_the_placeholder() -> None:
    with pytest.raises(MissingCredential, match=r"\$\{redacted:header:authorization\}"):
        Credentials({}).fill_text("${redacted:header:authorization}")


def test_parse_credential() -> None:
    assert parse_credential("authorization=Bearer x=y") == ("authorization", "Bearer x=y")
    with pytest.raises(Exception, match="NAME=VALUE"):
        parse_credential("novalue")


def test_scrub_puts_placeholders_back_in_every_encoding() -> None:
    creds = Credentials.resolve(
        {"authorization": "Bearer ${TOK}", "query:token": "a b&c", "pin": "12"},
        {"TOK": "tok-ABCDEF"},
    )
    assert creds.scrub_text("x Bearer tok-ABCDEF y") == "x ${redacted:credential:authorization} y"
    # the environment value alone, the query-encoded and the JSON-escaped forms go too
    assert "tok-ABCDEF" not in creds.scrub_text("raw tok-ABCDEF")
    assert creds.scrub_text("token=a%20b%26c") == "token=${redacted:query:token}"
    # values shorter than MIN_SCRUB_LENGTH are left alone (they would eat ordinary text)
    assert creds.scrub_text("room 12") == "room 12"
    assert Credentials({}).scrub_text("Bearer x") == "Bearer x"
