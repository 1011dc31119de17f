"""Numbered placeholders: one number per distinct secret value, wherever it appears,
numbers kept clear of a capture's own, and nothing of a value in the capture file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.capture.test_mqtt import connect
from tests.conftest import make_session
from wsshadow.replay.capture.identities import SecretNumbers, credential_names, highest_number
from wsshadow.replay.capture.model import Close, Closer, Handshake
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

ALICE, BOB = "alice-token-7f3a9e0c", "bob-token-91c2d4aa"


def numbers(text: str | bytes) -> set[int]:
    return {int(n.partition("#")[2]) for n in credential_names([text])}


def test_one_value_has_one_number_wherever_it_appears() -> None:
    r = Redactor()
    handshake = r.handshake(
        Handshake(
            "/ws",
            query=f"room=1&token={ALICE}",
            request_headers=(("Authorization", f"Bearer {ALICE}"), ("X-Api-Key", BOB)),
            subprotocols=("chat", f"jwt.{ALICE}"),
        )
    )
    assert handshake.query == "room=1&token=${redacted:query:token#1}"
    assert handshake.request_header("Authorization") == "${redacted:header:authorization#1}"
    assert handshake.request_header("X-Api-Key") == "${redacted:header:x-api-key#2}"
    assert handshake.subprotocols == ("chat", "jwt.${redacted:subprotocol:jwt#1}")
    texts = [
        r.text(json.dumps({"type": "login", "token": ALICE, "nested": {"password": BOB}})),
        r.text(f"password={BOB}&token={ALICE}"),  # form-encoded
        r.text(f'42["auth",{{"access_token":"{ALICE}"}}]'),  # framed (Socket.IO)
        r.reason(f"bad token={BOB}"),
        r.binary(json.dumps({"secret": ALICE}).encode()).decode(),
        r.binary(connect("c-1", user="ops", password=BOB.encode())).decode("latin-1"),
    ]
    assert [numbers(t) for t in texts] == [{1, 2}, {1, 2}, {1}, {2}, {1}, {2}]
    assert r.close(Close(1008, f"token={ALICE}", Closer.SERVER)).reason == (
        "token=${redacted:form:token#1}"
    )


def test_different_values_get_different_numbers_and_redacting_again_keeps_them() -> None:
    r = Redactor()
    one = r.headers((("Authorization", f"Bearer {ALICE}"),))
    two = r.headers((("Authorization", f"Bearer {BOB}"),))
    assert one[0][1].endswith("#1}") and two[0][1].endswith("#2}")
    assert r.headers(two) == two and r.headers((("Authorization", "Basic x"),))[0][1].endswith(
        "#3}"
    )
    # another redactor (another recording) numbers on its own: the same user gets a new number
    assert Redactor().headers((("Authorization", f"Bearer {BOB}"),))[0][1].endswith("#1}")


def test_a_redactor_keeps_clear_of_the_numbers_it_is_given() -> None:
    r = Redactor()
    assert (
        r.text('{"token": "${redacted:json:token#7}"}') == '{"token": "${redacted:json:token#7}"}'
    )
    assert r.query(f"token={ALICE}") == "token=${redacted:query:token#8}"
    asked = []
    late = Redactor()
    late.start_above(lambda: asked.append(1) or 41)
    assert not asked  # asked only when a first value needs a number
    assert late.query(f"token={ALICE}") == "token=${redacted:query:token#42}"
    assert asked == [1]


def test_no_value_nor_its_digest_reaches_the_capture_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    session = make_session(
        "s1",
        query=f"token={ALICE}",
        request_headers=(("Authorization", f"Bearer {BOB}"),),
        messages=[("client", "text", json.dumps({"password": ALICE}))],
    )
    with CaptureStore.open(path, create=True) as store:
        store.put_session(session)
        wal = tmp_path / "c.db-wal"
        assert wal.exists() and wal.stat().st_size > 0  # checked before the close checkpoints
        blob = path.read_bytes() + wal.read_bytes()
    for value in (ALICE, BOB, f"Bearer {BOB}"):
        digest = hashlib.sha256(value.encode())
        for form in (value.encode(), digest.digest(), digest.hexdigest().encode()):
            assert form not in blob
    assert b"${redacted:query:token#1}" in blob and b"${redacted:header:authorization#2}" in blob


def test_a_recording_added_to_a_capture_numbers_above_the_capture(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    for sid, token in (("first", ALICE), ("second", BOB), ("third", ALICE)):
        s = make_session(sid, request_headers=(("Authorization", f"Bearer {token}"),))
        with CaptureStore.open(path, create=True) as store:  # a new recorder each time
            store.put_session(s)
    with CaptureStore.open(path) as store:
        needed = store.credentials_needed()
        assert store.highest_placeholder_number() == 3
    # two users never share a number; the same user recorded twice gets two
    assert needed == {
        "first": ("authorization#1",),
        "second": ("authorization#2",),
        "third": ("authorization#3",),
    }


def test_the_highest_number_is_read_from_frames_text_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with CaptureStore.open(path, create=True, redactor=Redactor(enabled=False)) as store:
        store.put_sessions([
            make_session("t", messages=[("client", "text", '{"token":"${redacted:json:token#4}"}')]),
            make_session("b", messages=[("server", "binary", b"${redacted:mqtt:password#9}")]),
        ])  # fmt: skip
        assert store.highest_placeholder_number() == 9
        assert store.credentials_needed() == {"t": ("token#4",)}  # what the client sends


def test_an_import_numbers_above_the_placeholders_its_file_holds(tmp_path: Path) -> None:
    path, jsonl = tmp_path / "c.db", tmp_path / "in.jsonl"
    numbered = make_session(
        "old", request_headers=(("Authorization", "${redacted:header:authorization#5}"),)
    )
    raw = make_session("new", request_headers=(("Authorization", f"Bearer {ALICE}"),))
    with CaptureStore.open(
        tmp_path / "src.db", create=True, redactor=Redactor(enabled=False)
    ) as src:
        src.put_sessions([raw, numbered])  # the raw secret first: a redactor sees it first
    assert main(["captures", "export", str(tmp_path / "src.db"), str(jsonl)]) == 0
    assert main(["captures", "import", str(jsonl), str(path)]) == 0
    with CaptureStore.open(path) as store:
        assert store.credentials_needed() == {
            "new": ("authorization#6",),
            "old": ("authorization#5",),
        }


def test_highest_number_reads_text_and_bytes() -> None:
    assert highest_number(["${redacted:json:token#3}", b"${redacted:mqtt:password#12}", None]) == 12
    assert highest_number(["${redacted:json:token}", "#99"]) == 0


def test_the_table_of_numbers_is_bounded_and_forgetting_never_merges_two_users() -> None:
    table = SecretNumbers(limit=3)
    first = [table.number(f"user-{i}") for i in range(3)]
    assert first == [1, 2, 3]
    assert table.number("user-0") == 1  # seen again: now the most recent
    assert table.number("user-3") == 4  # user-1, the least recently seen, is forgotten
    assert len(table._numbers) == 3
    assert table.number("user-0") == 1 and table.number("user-2") == 3
    again = table.number("user-1")  # forgotten: a new number, never another user's
    assert again == 5 and again not in first
