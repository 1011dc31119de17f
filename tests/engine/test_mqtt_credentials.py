"""Credentials inside MQTT packets: redaction, filling, the run's client id and the
scrub of a stored replay each change a field and encode the packet's lengths again."""

from __future__ import annotations

import json
import re

import pytest

from tests.capture.test_mqtt import connect, decoded, publish
from tests.conftest import make_session
from wsshadow.replay.capture.mqtt import whole_packets
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.engine.client_ids import replay_client_id, unique_client_ids
from wsshadow.replay.engine.credentials import Credentials, MissingCredential

R = Redactor()
SECRET = "hunter2-but-longer"


def test_the_connect_password_is_redacted_inside_the_packet() -> None:
    recorded = connect("rec-1", user="ops", password=b"s3cret")
    redacted = Redactor().binary(recorded)
    assert b"s3cret" not in redacted and whole_packets(redacted) == [redacted]
    assert redacted.endswith(b"${redacted:mqtt:password#1}")
    assert decoded(redacted) == decoded(recorded)
    assert R.binary(redacted) == redacted  # redacting twice changes nothing
    assert R.binary(connect("rec-1")) == connect("rec-1")  # no password, nothing to do


def test_a_secret_field_in_a_publish_keeps_the_packet_whole() -> None:
    message = json.dumps({"password": SECRET, "user": "ops"}).encode()
    redacted = R.binary(publish("cfg/auth", message) + b"\xc0\x00")
    assert SECRET.encode() not in redacted
    packets = whole_packets(redacted)  # before: the length still counted the secret's bytes
    assert packets is not None and packets[1] == b"\xc0\x00"
    assert re.search(rb'"\$\{redacted:json:password#[0-9]+\}"', packets[0])


@pytest.mark.parametrize("value", ["x", SECRET, "p" * 200])  # shorter, longer, past 127
def test_replay_fills_them_then_sends_its_own_client_id(value: str) -> None:
    message = json.dumps({"password": SECRET}).encode()
    payloads: list[str | bytes] = [
        R.binary(connect("rec-1", user="ops", password=b"s3cret")),
        R.binary(publish("cfg/auth", message, qos=1)),
    ]
    creds = Credentials.resolve({"password": value}, {})
    sent = unique_client_ids(creds.fill_payloads(payloads), "base-noise1")
    first, second = sent
    assert isinstance(first, bytes) and isinstance(second, bytes)
    assert whole_packets(first) == [first] and whole_packets(second) == [second]
    assert first.endswith(len(value).to_bytes(2, "big") + value.encode())
    assert decoded(first)["client_id"] == replay_client_id("rec-1", "base-noise1")
    filled = json.dumps({"password": value}, separators=(",", ":")).encode()
    assert second == publish("cfg/auth", filled, qos=1)
    with pytest.raises(MissingCredential, match="mqtt:password"):
        Credentials().fill_payloads(payloads)


def test_the_stored_replay_gets_its_placeholders_back_in_whole_packets() -> None:
    creds = Credentials.resolve({"password": SECRET}, {})
    sent = connect("abc123", user="ops", password=SECRET.encode())
    echo = publish("cfg/auth", json.dumps({"pw": SECRET}).encode())
    session = make_session("s1", messages=[("client", "binary", sent), ("server", "binary", echo)])
    scrubbed = creds.scrub_session(session)
    for m in scrubbed.messages:
        assert isinstance(m.payload, bytes)
        assert SECRET.encode() not in m.payload and whole_packets(m.payload) == [m.payload]
    assert scrubbed.messages[0].payload.endswith(b"${redacted:credential:password}")
