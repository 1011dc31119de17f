"""Filling redaction placeholders with fresh credentials."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_session
from wsshadow.replay.capture.model import Direction, Handshake, Message, Opcode
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.engine.credentials import (
    Credentials,
    MissingCredential,
    parse_credential,
    shared_identities,
)


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


def test_a_numbered_credential_fills_only_its_number_and_wins_over_the_plain_one() -> None:
    creds = Credentials.resolve(
        {
            "authorization": "Bearer plain",
            "authorization#2": "Bearer two",
            "header:authorization#3": "Bearer three",
            "json:token#3": "json-three",
        },
        {},
    )
    fill = creds.fill_text
    assert fill("${redacted:header:authorization#1}") == "Bearer plain"  # plain: every number
    assert fill("${redacted:header:authorization#2}") == "Bearer two"
    assert fill("${redacted:header:authorization#3}") == "Bearer three"
    assert fill("${redacted:header:authorization}") == "Bearer plain"  # an older capture
    assert creds.lookup("json", "token", 3) == "json-three"
    assert creds.lookup("query", "token", 3) is None  # KIND:NAME#N is for that kind only
    msg = Message(0, 0.0, Direction.CLIENT, Opcode.TEXT, '{"token":"${redacted:json:token#3}"}')
    assert creds.fill_messages([msg])[0].payload == '{"token":"json-three"}'


def test_a_missing_numbered_credential_names_its_number_and_the_flag() -> None:
    creds = Credentials({"authorization#1": "Bearer one"})
    with pytest.raises(MissingCredential) as e:
        creds.fill_text("${redacted:header:authorization#2}")
    assert str(e.value) == (
        "the session needs credential ${redacted:header:authorization#2}, which nobody "
        "supplied (--credential authorization#2=VALUE, or authorization=VALUE for every "
        "number, or [credentials] in the config file)"
    )
    with pytest.raises(MissingCredential, match=r"for each of authorization#2, password#3,"):
        creds.check_supplied(
            ["${redacted:header:authorization#1} ${redacted:header:authorization#2}",
             b"${redacted:mqtt:password#3}"]
        )  # fmt: skip


def test_scrub_puts_each_users_value_back_as_its_numbered_placeholder() -> None:
    """Round trip: recorded placeholders, filled with two users' values, scrubbed back."""
    recorded = Redactor().session(
        make_session(
            "s",
            request_headers=(("Authorization", "Bearer rec-one-0001"),),
            messages=[("client", "text", '{"type":"hi","to":"Bearer rec-two-0002"}')],
        )
    )
    creds = Credentials.resolve(
        {"header:authorization#1": "Bearer ${ONE}", "authorization#2": "Bearer two-0002"},
        {"ONE": "one-0001"},
    )
    filled = creds.fill_handshake(recorded.handshake)
    assert filled.request_header("Authorization") == "Bearer one-0001"
    echoed = make_session(
        "r",
        request_headers=filled.request_headers,
        messages=[("server", "text", '{"me":"Bearer one-0001","peer":"Bearer two-0002"}'),
                  ("server", "text", '{"raw":"one-0001"}')],
    )  # fmt: skip
    scrubbed = creds.scrub_session(echoed)
    assert scrubbed.handshake.request_header("Authorization") == (
        "${redacted:header:authorization#1}"
    )
    assert [m.payload for m in scrubbed.messages] == [
        '{"me":"${redacted:header:authorization#1}",'
        '"peer":"${redacted:credential:authorization#2}"}',
        '{"raw":"${redacted:header:authorization#1}"}',  # the environment value alone too
    ]


def test_shared_identities_are_numbers_only_a_plain_credential_fills() -> None:
    needed = ["authorization#1", "authorization#2", "password#3"]
    assert shared_identities(needed, ["authorization"]) == {
        "authorization": ["authorization#1", "authorization#2"]
    }
    assert shared_identities(needed, ["header:authorization"]) != {}
    both = ["authorization", "authorization#1", "authorization#2"]
    assert shared_identities(needed, both) == {}  # every user has a credential of its own
    assert shared_identities(needed, ["authorization#1", "authorization#2"]) == {}
    assert shared_identities(["authorization#1"], ["authorization"]) == {}  # one user
    # the plain credential fills #2 only: two users, two values
    assert shared_identities(needed, ["authorization", "authorization#1"]) == {}
    three = [*needed, "authorization#4"]
    assert shared_identities(three, ["authorization", "authorization#1"]) == {
        "authorization": ["authorization#2", "authorization#4"]
    }
