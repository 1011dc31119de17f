"""``check_session`` (pure): a live replay against its recording, noise learned from the target."""

from __future__ import annotations

import json

from tests.conftest import make_session
from wsshadow.replay.capture.model import Close, Closer, Handshake, Session
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.diff.against_recording import check_session

CONFIG = DiffConfig(ignore=("**.timestamp",)).for_route("/ws")


def chat(sid: str, run_id: str, status: str = "ok", close: int = 1000, gap: float = 0.0) -> Session:
    s = make_session(
        sid,
        messages=[
            ("client", "text", json.dumps({"type": "user_message", "text": "hi"})),
            ("server", "text", json.dumps({"type": "started", "run_id": run_id, "timestamp": 1})),
            ("server", "text", json.dumps({"type": "done", "run_id": run_id, "status": status})),
        ],
        close=Close(close, "", Closer.SERVER, t=1.0),
    )
    if gap:
        msgs = tuple(m if m.seq == 0 else type(m)(m.seq, m.t + gap, m.direction, m.opcode,
                                                   m.payload) for m in s.messages)  # fmt: skip
        s = Session(s.id, s.started_at, s.handshake, msgs, s.close, s.provenance)
    return s


def test_equivalent_when_only_generated_ids_differ() -> None:
    again = chat("again", "r3")
    check = check_session(chat("rec", "r1"), chat("live", "r2"), [again], CONFIG)
    assert check.equivalent and check.differences == () and check.again == (again,)
    assert check.noise == ("changed_value /ws done run_id", "changed_value /ws started run_id")
    assert "equivalent" in check.explain()


def test_without_noise_runs_ids_are_differences() -> None:
    check = check_session(chat("rec", "r1"), chat("live", "r2"), [], CONFIG)
    assert not check.equivalent
    assert [(d.signature, d.count) for d in check.differences] == [
        ("changed_value /ws started run_id", 1),
        ("changed_value /ws done run_id", 1),
    ]


def test_a_stable_change_is_reported_with_expected_and_actual() -> None:
    live, again = chat("live", "r2", status="failed", close=1011), chat("a", "r3", "failed", 1011)
    check = check_session(chat("rec", "r1"), live, [again], CONFIG, target="ws://t")
    assert check.signatures == ("changed_value /ws done status", "close /ws - code")
    text = check.explain()
    assert text.splitlines()[0] == (
        "session rec on /ws (target ws://t) differs from the recording: 2 differences in 2 groups"
    )
    assert '      expected: "ok"\n      actual:   "failed"' in text
    assert "      expected: 1000\n      actual:   1011" in text
    assert "noise (varies between replays, ignored): changed_value /ws done run_id" in text


def test_timing_only_when_asked() -> None:
    rec, live = chat("rec", "r1"), chat("live", "r1", gap=0.5)
    assert check_session(rec, live, [], CONFIG).equivalent
    timed = check_session(rec, live, [], CONFIG, timing=True)
    assert {d.kind for d in timed.differences} == {"timing"}


def test_an_unanswered_replay_is_an_error() -> None:
    dead = Session("live", 0.0, Handshake("/ws", status=None), (),
                   Close(None, "", Closer.ERROR, error="unreachable: refused"))  # fmt: skip
    check = check_session(chat("rec", "r1"), dead, [], CONFIG, target="ws://t")
    assert not check.equivalent and check.error == "unreachable: refused"
    assert check.explain() == "session rec on /ws (target ws://t): unreachable: refused"
    # a dead noise run is left out rather than poisoning the verdict
    assert check_session(chat("rec", "r1"), chat("live", "r1"), [dead], CONFIG).equivalent
