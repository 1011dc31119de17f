"""The pure side of serve: which session a client gets, matching, causal order, carry-over."""

from __future__ import annotations

from tests.conftest import make_session
from tests.serve.helpers import chat_session, j
from wsshadow.replay.capture.model import Direction, Message, Opcode, Session
from wsshadow.replay.config import DiffConfig
from wsshadow.replay.serve.plan import (
    Conversation,
    Matcher,
    MatchMode,
    OnMismatch,
    SessionPool,
    due,
    matcher_for,
    reverse_carry_plan,
    select_sessions,
)


def client(payload: str | bytes, seq: int = 0) -> Message:
    op = Opcode.TEXT if isinstance(payload, str) else Opcode.BINARY
    return Message(seq, 0.0, Direction.CLIENT, op, payload)


def conversation(
    *sessions: Session, mode: MatchMode = MatchMode.STRICT, on: OnMismatch = OnMismatch.CLOSE
) -> Conversation:
    config = DiffConfig()
    return Conversation(list(sessions), lambda s: matcher_for(mode, config, s), on)


def test_pool_hands_out_each_session_once_unless_reuse() -> None:
    a, b = chat_session("a"), chat_session("b")
    pool = SessionPool([a, b])
    assert [s.id for s in pool.candidates("/ws/chat", ())] == ["a", "b"]
    assert pool.claim("a") and not pool.claim("a")
    assert [s.id for s in pool.candidates("/ws/chat", ())] == ["b"]
    assert pool.remaining("/ws/chat") == 1
    pool.release("a")
    assert pool.remaining("/ws/chat") == 2
    reuse = SessionPool([a], reuse=True)
    assert reuse.claim("a") and reuse.claim("a")
    assert [s.id for s in reuse.candidates("/ws/chat", ())] == ["a"]
    assert pool.candidates("/other", ()) == [] and not pool.recorded("/other")


def test_pool_matches_the_offered_subprotocol() -> None:
    plain = chat_session("plain")
    v2 = chat_session("v2", subprotocols=("chat.v1", "chat.v2"), subprotocol="chat.v2")
    pool = SessionPool([plain, v2])
    assert [s.id for s in pool.candidates("/ws/chat", ())] == ["plain"]
    # Offering exactly what was recorded ranks that session first.
    assert [s.id for s in pool.candidates("/ws/chat", ("chat.v1", "chat.v2"))] == ["v2", "plain"]
    assert [s.id for s in pool.candidates("/ws/chat", ("chat.v1",))] == ["plain"]


def test_select_sessions_by_id_prefix_and_route_glob() -> None:
    a, b = chat_session("abc1"), make_session("xyz2", "/ws/factory")
    assert select_sessions([a, b], ids=("abc",)) == [a]
    assert select_sessions([a, b], routes=("/ws/f*",)) == [b]
    assert select_sessions([a, b], ids=("nope",)) == []
    assert select_sessions([a, b]) == [a, b]


def test_strict_masks_volatile_values_and_refuses_other_content() -> None:
    m = matcher_for(MatchMode.STRICT, DiffConfig(), chat_session())
    recorded = client(j(type="say", id="3f2b8c1e-0d2a-4f5b-9a31-2b7c9d0e1f23", text="hi"))
    other_uuid = client(j(type="say", id="0b8e5a4c-1111-4222-8333-444455556666", text="hi"))
    assert m.mismatch(recorded, other_uuid) is None
    why = m.mismatch(recorded, client(j(type="say", id="x", text="bye")))
    assert why == "differs from the recorded one"
    assert m.mismatch(recorded, client(j(type="leave"))) == "has event leave, expected say"
    assert m.mismatch(recorded, client(b"\x00")) == "is binary, expected text"


def test_strict_lets_a_live_secret_match_a_redacted_recording() -> None:
    m = matcher_for(MatchMode.STRICT, DiffConfig(), chat_session())
    recorded = client(j(type="auth", token="${redacted:json:token}", room="lobby"))
    assert m.mismatch(recorded, client(j(type="auth", token="s3cr3t-live", room="lobby"))) is None
    assert m.mismatch(recorded, client(j(type="auth", token="s3cr3t", room="other"))) is not None


def test_key_and_loose_modes() -> None:
    s = chat_session()
    key = matcher_for(MatchMode.KEY, DiffConfig(), s)
    assert key.mismatch(client(j(type="say", text="a")), client(j(type="say", text="b"))) is None
    assert key.mismatch(client(j(type="say")), client(j(type="leave"))) is not None
    loose = matcher_for(MatchMode.LOOSE, DiffConfig(), s)
    assert loose.mismatch(client(j(type="say")), client("anything")) is None


def test_strict_uses_the_routes_dialect() -> None:
    # Socket.IO frames: the event name and arguments are compared, not the packet text.
    sio = make_session("sio", "/socket.io/", [("client", "text", '42["say",{"text":"hi"}]')],
                       query="EIO=4&transport=websocket")  # fmt: skip
    m = matcher_for(MatchMode.STRICT, DiffConfig(), sio)
    assert m.dialect is not None and m.dialect.name == "socketio"
    assert (
        m.mismatch(client('42["say",{"text":"hi"}]'), client('42["say", {"text": "hi"}]')) is None
    )
    why = m.mismatch(client('42["say",{"text":"hi"}]'), client('42["shout",{"text":"hi"}]'))
    assert why is not None and "shout" in why
    assert isinstance(m, Matcher)


def test_conversation_serves_in_causal_order() -> None:
    conv = conversation(chat_session())
    assert [m.payload for m in conv.sends()] == [j(type="hello", server="legacy")]
    assert conv.sends() == []  # nothing more until the client's join
    assert conv.receive(client(j(type="join", room="lobby", user="ann"))).accepted
    assert [m.payload for m in conv.sends()] == [
        j(type="joined", room="lobby", user="ann"),
        j(type="history", messages=[]),
    ]
    assert conv.receive(client(j(type="say", request_id="req-000001", text="hi"))).accepted
    assert len(conv.sends()) == 2 and conv.done


def test_a_mismatch_names_expected_and_received() -> None:
    conv = conversation(chat_session())
    conv.sends()
    outcome = conv.receive(client(j(type="join", room="kitchen", user="ann")))
    assert not outcome.accepted and outcome.mismatch is not None
    line = outcome.mismatch.line()
    assert "client message 1" in line and "differs from the recorded one" in line
    assert '"room": "lobby"' in line and '"room": "kitchen"' in line
    assert outcome.mismatch.reason().startswith("wsshadow: client message 1")
    assert len(outcome.mismatch.reason().encode()) <= 123
    assert conv.position == 1  # close/skip: not advanced


def test_continue_accepts_a_mismatch_and_extra_messages_mismatch() -> None:
    conv = conversation(chat_session(), on=OnMismatch.CONTINUE)
    conv.sends()
    assert not conv.receive(client(j(type="wave"))).accepted
    assert len(conv.sends()) == 2  # carried on as if it had been the join
    conv.receive(client(j(type="say", request_id="req-000001", text="hi")))
    conv.sends()
    extra = conv.receive(client(j(type="say", text="more")))
    assert extra.mismatch is not None and "one more than the recording has" in extra.mismatch.why


def test_switches_to_the_session_whose_client_side_fits() -> None:
    ann, bob = chat_session("ann", user="ann"), chat_session("bob", user="bob")
    conv = conversation(ann, bob)
    conv.sends()
    claimed: list[str] = []
    outcome = conv.receive(client(j(type="join", room="lobby", user="bob")),
                           lambda s: claimed.append(s.id) is None)  # fmt: skip
    assert outcome.accepted and outcome.switched_from == "ann"
    assert conv.lead.id == "bob" and claimed == ["bob"]
    assert j(type="joined", room="lobby", user="bob") in [m.payload for m in conv.sends()]


def test_client_values_are_carried_into_served_messages() -> None:
    # Replay's carry-over planning on the mirrored session: the client issued req-000001,
    # the server echoed it in the ack.
    plan = reverse_carry_plan(chat_session(), ("type", "event"))
    assert plan.active and "req-000001" in plan.uses[3]
    # A request id differing from the recorded one fails strict unless masked: use key.
    conv = conversation(chat_session(), mode=MatchMode.KEY)
    conv.sends()
    conv.receive(client(j(type="join", room="lobby", user="ann")))
    conv.sends()
    assert conv.receive(client(j(type="say", request_id="req-zzzzzz", text="hi"))).accepted
    ack, message = conv.sends()
    assert ack.payload == j(type="ack", request_id="req-zzzzzz")
    assert message.payload == j(type="message", user="ann", text="hi")  # nothing to carry
    # A client that repeats the recorded value gets the recorded messages unchanged.
    conv = conversation(chat_session())
    conv.sends()
    conv.receive(client(j(type="join", room="lobby", user="ann")))
    conv.sends()
    conv.receive(client(j(type="say", request_id="req-000001", text="hi")))
    assert conv.sends()[0].payload == j(type="ack", request_id="req-000001")


def test_server_issued_values_are_not_carried() -> None:
    # The server issued the id first; the client echoing another one changes nothing served.
    s = make_session("srv", "/ws", [
        ("server", "text", j(type="welcome", session_id="srv-123456")),
        ("client", "text", j(type="hello", session_id="srv-123456")),
        ("server", "text", j(type="ok", session_id="srv-123456")),
    ])  # fmt: skip
    conv = conversation(s, mode=MatchMode.KEY)
    conv.sends()
    conv.receive(client(j(type="hello", session_id="other-99999")))
    assert conv.sends()[0].payload == j(type="ok", session_id="srv-123456")


def test_due_keeps_recorded_gaps_scaled() -> None:
    assert due(100.0, 0.5, 1.5, 1.0) == 101.0
    assert due(100.0, 0.5, 1.5, 2.0) == 100.5
    assert due(100.0, 2.0, 1.5, 1.0) == 100.0  # never before the anchor
