"""Each replay's own MQTT client id: derived from the recorded one, unique to its run,
valid for every MQTT 3.1.1 broker; only the CONNECT that opens a session changes."""

from __future__ import annotations

import re

import pytest

from tests.capture.test_mqtt import connect, decoded
from wsshadow.replay.engine.client_ids import MAX_CLIENT_ID, replay_client_id, unique_client_ids

PORTABLE = re.compile(r"[0-9a-zA-Z]{1,23}")


@pytest.mark.parametrize(
    "recorded", ["rec-1", "x", "paho/7f3a-b2c9-4d1e-9e6f-112233445566", "capteur-é", "---"]
)
def test_an_id_per_run_derived_from_the_recorded_one(recorded: str) -> None:
    runs = ["base", "base-noise1", "cand", "base-noise2"]
    ids = [replay_client_id(recorded, run) for run in runs]
    assert len(set(ids)) == len(runs)
    for new in ids:
        assert PORTABLE.fullmatch(new) and len(new) <= MAX_CLIENT_ID, new
        stem = "".join(c for c in recorded if c.isascii() and c.isalnum())
        assert new.startswith(stem[:15])
    assert ids == [replay_client_id(recorded, run) for run in runs]  # the same run, the same id


def test_an_empty_id_stays_empty_for_the_broker_to_assign() -> None:
    assert replay_client_id("", "base") == ""
    payloads: list[str | bytes] = [connect(""), b"\xc0\x00"]
    assert unique_client_ids(payloads, "base") is payloads


def test_only_the_opening_connect_changes() -> None:
    ping = b"\xc0\x00"
    payloads: list[str | bytes] = [connect("rec-1", user="ops", password=b"\xff\xfe"), ping]
    sent = unique_client_ids(payloads, "cand")
    assert sent[1] is ping and payloads[0] == connect("rec-1", user="ops", password=b"\xff\xfe")
    assert isinstance(sent[0], bytes)
    value = decoded(sent[0])
    assert value["client_id"] == replay_client_id("rec-1", "cand")
    assert value["username"] is True and value["password"] is True


@pytest.mark.parametrize(
    "payloads", [[], ['{"type":"connect"}'], [b"\x82\x08\x00\x01\x00\x03a/b\x01", connect("c")]]
)
def test_sessions_that_do_not_open_with_a_connect_are_sent_as_recorded(
    payloads: list[str | bytes],
) -> None:
    assert unique_client_ids(payloads, "base") is payloads
