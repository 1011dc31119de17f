"""The pacing state machine, driven by hand: no event loop, no clock."""

from __future__ import annotations

import pytest

from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Session,
)
from wsshadow.replay.engine.pacing import (
    ClientStep,
    CloseSession,
    Pace,
    Pacer,
    PacingSettings,
    plan_session,
)


def _msg(seq: int, t: float, direction: str, text: str) -> Message:
    return Message(seq, t, Direction(direction), Opcode.TEXT, text)


def _session(close: Close | None = None) -> Session:
    # server welcome, client asks, server answers twice, client asks again, server answers
    msgs = (
        _msg(0, 0.01, "server", "welcome"),
        _msg(1, 0.50, "client", "q1"),
        _msg(2, 0.60, "server", "a1"),
        Message(3, 0.65, Direction.SERVER, Opcode.PING, b""),
        _msg(4, 0.70, "server", "a1b"),
        _msg(5, 2.00, "client", "q2"),
        _msg(6, 2.10, "server", "a2"),
    )
    if close is None:
        close = Close(4001, "bye", Closer.CLIENT, t=3.0)
    return Session("s", 0.0, Handshake("/ws"), msgs, close)


def _sent(actions: tuple[object, ...]) -> list[str]:
    return [a.message.payload for a in actions if isinstance(a, ClientStep)]  # type: ignore[misc]


def test_plan_counts_server_data_messages_before_each_client_message() -> None:
    plan = plan_session(_session())
    assert [s.after_server for s in plan.steps] == [1, 3]
    assert [s.gap for s in plan.steps] == pytest.approx([0.5, 1.5])
    assert plan.server_total == 4
    assert (plan.close_code, plan.close_reason, plan.closed_by) == (4001, "bye", Closer.CLIENT)


def test_causal_waits_for_the_server_then_sends() -> None:
    p = Pacer(plan_session(_session()), PacingSettings(causal_timeout=2.0), start=100.0)
    assert p.what_to_send(100.0) == ()
    assert p.next_deadline() == pytest.approx(102.5)  # gap 0.5 + margin 2
    p.server_message_arrived(100.2)
    assert _sent(p.what_to_send(100.2)) == ["q1"]
    p.server_message_arrived(100.3)
    assert p.what_to_send(100.3) == ()  # needs 3 server messages, has 2
    p.server_message_arrived(100.4)
    assert _sent(p.what_to_send(100.4)) == ["q2"]
    assert p.sent_all and not p.finished
    p.server_message_arrived(100.5)
    # all 4 recorded server messages arrived: close with the recorded code at once
    actions = p.what_to_send(100.5)
    assert actions == (CloseSession(4001, "bye"),)
    assert p.finished and p.next_deadline() is None


def test_causal_sends_anyway_after_gap_plus_margin() -> None:
    p = Pacer(plan_session(_session()), PacingSettings(causal_timeout=1.0), start=0.0)
    assert p.what_to_send(1.49) == ()
    assert _sent(p.what_to_send(1.5)) == ["q1"]
    assert p.next_deadline() == pytest.approx(1.5 + 1.5 + 1.0)
    assert _sent(p.what_to_send(4.0)) == ["q2"]


def test_recorded_follows_scaled_times() -> None:
    p = Pacer(plan_session(_session()), PacingSettings(Pace.RECORDED, speed=2.0), start=10.0)
    assert p.next_deadline() == pytest.approx(10.25)
    assert p.what_to_send(10.2) == ()
    for _ in range(3):
        p.server_message_arrived(10.2)  # server messages never hurry recorded pacing
    assert p.what_to_send(10.24) == ()
    assert _sent(p.what_to_send(10.25)) == ["q1"]
    assert _sent(p.what_to_send(11.0)) == ["q2"]
    p.server_message_arrived(11.01)
    # everything arrived, but the recorded close is at 3.0 / 2 = 1.5 s
    assert p.what_to_send(11.2) == ()
    assert p.next_deadline() == pytest.approx(11.5)
    assert p.what_to_send(11.5) == (CloseSession(4001, "bye"),)


def test_asap_sends_everything_at_once_then_waits_for_idle() -> None:
    p = Pacer(plan_session(_session()), PacingSettings(Pace.ASAP, idle_timeout=1.0), start=0.0)
    assert _sent(p.what_to_send(0.0)) == ["q1", "q2"]
    p.server_message_arrived(0.3)
    assert p.what_to_send(0.5) == ()
    assert p.next_deadline() == pytest.approx(1.3)
    assert p.what_to_send(1.3) == (CloseSession(4001, "bye"),)


def test_server_closed_recording_waits_for_the_target_to_close() -> None:
    session = _session(Close(1001, "going away", Closer.SERVER, t=2.2))
    p = Pacer(plan_session(session), PacingSettings(Pace.ASAP, close_timeout=3.0), start=0.0)
    assert _sent(p.what_to_send(0.0)) == ["q1", "q2"]
    for t in (0.1, 0.2, 0.3, 0.4):
        p.server_message_arrived(t)
    assert p.what_to_send(1.0) == ()  # all messages in, but the server closes, not us
    assert p.next_deadline() == pytest.approx(3.4)
    p.server_closed(2.0)
    assert p.finished and p.what_to_send(2.5) == ()


def test_server_closed_recording_times_out() -> None:
    session = _session(Close(1001, "", Closer.SERVER, t=2.2))
    p = Pacer(plan_session(session), PacingSettings(Pace.ASAP, close_timeout=3.0), start=0.0)
    p.what_to_send(0.0)
    assert p.what_to_send(3.0) == (CloseSession(1000, "", timed_out=True),)


def test_unsendable_close_code_becomes_1000_and_no_close_means_normal_close() -> None:
    assert plan_session(_session(Close(1006, "", Closer.ERROR, error="lost"))).close_code == 1000
    s = Session("s", 0.0, Handshake("/ws"), (), None)
    p = Pacer(plan_session(s), PacingSettings(), start=0.0)
    assert p.what_to_send(0.0) == (CloseSession(1000, ""),)


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        PacingSettings(speed=0)
    with pytest.raises(ValueError):
        PacingSettings(idle_timeout=-1)


def test_a_refused_recording_closes_at_once_when_the_target_accepts() -> None:
    refused = Session("r", 0.0, Handshake("/ws", status=403), (), Close(None, "", Closer.SERVER))
    plan = plan_session(refused)
    assert plan.closed_by is None
    assert Pacer(plan, PacingSettings(), start=0.0).what_to_send(0.0) == (CloseSession(1000, ""),)


def test_causal_timeouts_are_counted_with_the_time_lost_and_the_messages_awaited() -> None:
    p = Pacer(plan_session(_session()), PacingSettings(causal_timeout=2.0), start=100.0)
    assert p.what_to_send(102.0) == ()  # q1 waits for the welcome until 100 + 0.5 + 2
    assert _sent(p.what_to_send(102.6)) == ["q1"]  # it never came
    assert (p.timeouts, p.awaited) == (1, [0])
    assert p.waited == pytest.approx(2.1)
    p.server_message_arrived(102.7)  # one of the three q2 waits for
    assert _sent(p.what_to_send(106.2)) == ["q2"]
    assert (p.timeouts, p.awaited, p.unanswered) == (2, [0, 1, 2], 3)
    assert p.waited == pytest.approx(2.1 + 2.1)


def test_causal_waits_round_trip_through_provenance_tags() -> None:
    from wsshadow.replay.capture.model import CausalWaits

    waits = CausalWaits(3, 6.25, (0, 4))
    assert CausalWaits.from_tags(("other", *waits.tags())) == waits
    assert CausalWaits.from_tags(()) is None
    assert CausalWaits.from_tags(("causal-timeouts:x",)) is None
