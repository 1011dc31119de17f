"""Noise is learned on raw values, so a mask that hides one value and not another cannot leak."""

from __future__ import annotations

import json

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.diff.capture import DiffAccumulator, diff_session


def session(sid: str, ident: str) -> Session:
    msg = Message(0, 0.01, Direction.SERVER, Opcode.TEXT, json.dumps({"type": "a", "id": ident}))
    return Session(sid, 1.0, Handshake("/ws"), (msg,), Close(1000, "", Closer.CLIENT, t=0.1))


def test_an_id_the_hex_mask_misses_once_is_still_noise() -> None:
    config = DiffConfig()
    rc = config.for_route("/ws")
    # random hex ids; the candidate's happens to be all digits, which the hex mask does not hide
    result = diff_session(
        "s",
        "/ws",
        session("b", "a1b2c3d4e5"),
        session("c", "1234567890"),
        [session("n", "f0e1d2c3b4")],
        rc,
    )
    acc = DiffAccumulator(config)
    acc.add(result)
    parts = acc.finish()
    assert parts["differences"] == []
    assert [n["signature"] for n in parts["noise"]] == ["changed_value /ws a id"]


def test_without_a_noise_run_the_same_change_is_reported() -> None:
    config = DiffConfig()
    result = diff_session(
        "s",
        "/ws",
        session("b", "a1b2c3d4e5"),
        session("c", "1234567890"),
        [],
        config.for_route("/ws"),
    )
    assert [f.signature("/ws") for f in result.findings] == ["changed_value /ws a id"]


def test_rows_highlight_real_fields_and_list_noise_fields_apart() -> None:
    def s(sid: str, ident: str, value: int) -> Session:
        payload = json.dumps({"type": "a", "conn": ident, "v": value})
        msg = Message(0, 0.01, Direction.SERVER, Opcode.TEXT, payload)
        return Session(sid, 1.0, Handshake("/ws"), (msg,), Close(1000, "", Closer.CLIENT, t=0.1))

    config = DiffConfig()
    rc = config.for_route("/ws")
    acc = DiffAccumulator(config)
    acc.add(
        diff_session("s", "/ws", s("b", "c-one", 1), s("c", "c-three", 2), [s("n", "c-two", 1)], rc)
    )
    parts = acc.finish()
    assert [d["signature"] for d in parts["differences"]] == ["changed_value /ws a v"]
    (index,) = acc.rows_wanted()
    acc.attach_rows(
        index,
        diff_session(
            "s", "/ws", s("b", "c-one", 1), s("c", "c-three", 2), [s("n", "c-two", 1)], rc
        ),
    )
    (row,) = acc.details[index]["rows"]
    assert row["status"] == "changed"
    assert row["fields"] == ["v"] and row["noise_fields"] == ["conn"]
