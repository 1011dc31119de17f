"""Scenarios end to end: multi-user servers on loopback, recorded through the real proxy,
replayed together (engine/scenarios.py) and shadow-diffed through the CLI."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.engine.scenario_apps import (
    ChatServer,
    GameServer,
    chat_room,
    play_game,
    record,
    running,
)
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main
from wsshadow.replay.engine.run import ReplayOptions, replay_capture
from wsshadow.replay.engine.scenarios import capture_links, select_with_scenarios


def events(payloads: list[Any]) -> list[str]:
    return [json.loads(p).get("type") for p in payloads if isinstance(p, str)]


def recorded_and_replayed(capture: Path, run: str) -> list[tuple[list[str], list[str]]]:
    """(recorded server events, replayed server events) per recorded session."""
    with CaptureStore.open(capture) as store:
        recorded = {s.id: s for s in store.iter_sessions()}
        replayed = {s.provenance.origin: s for s in store.iter_sessions(run)}
    assert set(replayed) == set(recorded)
    return [
        (
            events([m.payload for m in recorded[sid].server_messages() if m.opcode.is_data]),
            events([m.payload for m in replayed[sid].server_messages() if m.opcode.is_data]),
        )
        for sid in recorded
    ]


@pytest.fixture
def no_timing(tmp_path: Path) -> Path:
    path = tmp_path / "no-timing.toml"
    path.write_text("[diff.timing]\nfloor_ms = 60000\n")
    return path


@pytest.fixture
async def game_capture(tmp_path: Path) -> Path:
    capture = tmp_path / "game.db"
    async with running(GameServer().handler) as upstream:
        await record(upstream, capture, play_game)
    return capture


@pytest.fixture
async def chat_capture(tmp_path: Path) -> Path:
    capture = tmp_path / "chat.db"
    async with running(ChatServer().handler) as upstream:
        await record(upstream, capture, chat_room)
    return capture


async def shadow(
    capture: Path, baseline: str, candidate: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    report = capture.parent / f"report-{abs(hash(extra))}.json"
    args = ["shadow", str(capture), "--baseline", baseline, "--candidate", candidate]
    code = await asyncio.to_thread(main, [*args, "--report", str(report), *extra])
    return code, json.loads(report.read_text())


def test_the_recorded_game_is_one_scenario_linked_by_codes_and_moves(game_capture: Path) -> None:
    with CaptureStore.open(game_capture) as store:
        graph = capture_links(store, ("type", "event"))
        ids = store.session_ids()
    assert len(ids) == 4 and len(graph.scenarios) == 1
    (members,) = graph.scenarios.values()
    assert sorted(members) == sorted(ids)
    values = {lk.value for lk in graph.links if lk.kind == "value"}
    assert len(values) == 2 and all(str(v).startswith(("J-", "S-")) for v in values)
    assert {lk.value for lk in graph.links if lk.kind == "event"} >= {"moved", "win"}


async def test_identical_game_servers_are_equivalent_and_every_recorded_event_comes_back(
    game_capture: Path, no_timing: Path
) -> None:
    for attempt in range(3):
        async with running(GameServer().handler) as base, running(GameServer().handler) as cand:
            prefix = f"same{attempt}"
            code, report = await shadow(
                game_capture, base, cand, "--config", str(no_timing), "--run-prefix", prefix
            )
        assert code == 0, report["differences"]
        assert report["verdict"] == "equivalent"
        for run in (f"{prefix}-baseline", f"{prefix}-candidate"):
            for recorded, replayed in recorded_and_replayed(game_capture, run):
                assert replayed == recorded  # every move and the win, in every session
        scenarios = {d["scenario"] for d in report["session_details"]}
        assert len(scenarios) == 1 and None not in scenarios
        fidelity = report["fidelity"]  # the report's own measure agrees: all reproduced
        assert fidelity["sessions"] == {"total": 4, "reproduced": 4, "unreproduced": 0}
        assert fidelity["events"]["reproduced"] == fidelity["events"]["recorded"]
        assert all(d["reproduced"] == 1.0 for d in report["session_details"])
        assert all(d["unmet_links"] == [] for d in report["session_details"])


async def test_a_slower_but_correct_game_server_is_equivalent(
    game_capture: Path, no_timing: Path
) -> None:
    """Waits across sessions follow the target: nobody hangs up before the slow last move."""
    async with running(GameServer().handler) as base, running(GameServer(slow=0.3).handler) as cand:
        code, report = await shadow(game_capture, base, cand, "--config", str(no_timing))
    assert code == 0, report["differences"]
    for recorded, replayed in recorded_and_replayed(game_capture, report["candidate"]["run"]):
        assert replayed == recorded


@pytest.mark.parametrize(
    ("candidate", "signature", "sessions"),
    [
        ({"drop_final": True}, "missing_event /game win", 4),
        ({"mute_spectators": True}, "missing_event /game moved", 2),
    ],
)
async def test_a_game_candidate_that_drops_the_end_or_the_spectators_is_divergent(
    game_capture: Path, no_timing: Path, candidate: dict[str, bool], signature: str, sessions: int
) -> None:
    async with (
        running(GameServer().handler) as base,
        running(GameServer(**candidate).handler) as cand,
    ):
        code, report = await shadow(game_capture, base, cand, "--config", str(no_timing))
    assert code == 1
    found = {d["signature"]: d for d in report["differences"]}
    assert signature in found, list(found)
    assert found[signature]["count"] >= 1 and len(found[signature]["sessions"]) == sessions


async def test_the_game_replays_with_no_causal_timeout_and_each_session_reproduced(
    game_capture: Path,
) -> None:
    async with running(GameServer().handler) as target:
        with CaptureStore.open(game_capture) as store:
            options = ReplayOptions(target, causal_timeout=scaled(2.0))
            result = await replay_capture(store, options, run="together")
    assert result.sessions == 4 and result.completed == 4
    assert result.scenario_timeouts == 0 and result.causal_timeouts == 0
    for recorded, replayed in recorded_and_replayed(game_capture, "together"):
        assert replayed == recorded
    # The counter counts: spectators that never hear a move leave the players' waits to time out.
    async with running(GameServer(mute_spectators=True).handler) as target:
        with CaptureStore.open(game_capture) as store:
            options = ReplayOptions(target, causal_timeout=0.2)
            muted = await replay_capture(store, options, run="muted")
    assert muted.scenario_timeouts > 0 and muted.causal_timeouts > 0


def game_roles(capture: Path) -> tuple[str, str]:
    """(player 1, player 2): the sessions that sent ``create`` and ``join``."""
    with CaptureStore.open(capture) as store:
        first = {
            s.id: json.loads(next(m.payload for m in s.messages if m.direction.value == "client"))
            for s in store.iter_sessions()
        }
    by_type = {doc["type"]: sid for sid, doc in first.items()}
    return by_type["create"], by_type["join"]


async def test_a_join_code_that_never_arrives_is_named_in_player_twos_cause(
    game_capture: Path, no_timing: Path
) -> None:
    """A baseline that never gives player 1 the join code: player 2's wait for it times out,
    and its cause names the value, the session and message it should have come from, and
    what that session got instead."""
    p1, p2 = game_roles(game_capture)
    async with (
        running(GameServer(hide_join_code=True).handler) as base,
        running(GameServer().handler) as cand,
    ):
        _, report = await shadow(
            game_capture, base, cand, "--config", str(no_timing), "--causal-timeout", "0.5"
        )
    details = {d["session"]: d for d in report["session_details"]}
    named = f"from server message 0 of session {p1} (never arrived: {p1} got created in its place)"
    link = details[p2]["unmet_links"][0]  # the first; what followed from it comes after
    assert link.startswith("waited for value 'J-") and link.endswith(named)
    assert details[p2]["cause"].startswith(link), details[p2]["cause"]
    # Player 1 then waits in vain for player 2 to join: an event another session caused.
    assert details[p1]["unmet_links"][0] == (
        f"causal wait for event 'player_joined' caused by client message 0 of session {p2} "
        "timed out"
    )
    causes = [c["cause"] for c in report["fidelity"]["causes"]]
    assert any(named in c for c in causes), causes


async def test_a_move_never_relayed_to_the_other_player_is_named_in_the_cause(
    game_capture: Path, no_timing: Path
) -> None:
    """A baseline that sends each move only to its mover: player 1's causal waits for player
    2's moves time out, and its cause names the event and the client message that caused it."""
    p1, p2 = game_roles(game_capture)
    async with (
        running(GameServer(private_moves=True).handler) as base,
        running(GameServer().handler) as cand,
    ):
        _, report = await shadow(
            game_capture, base, cand, "--config", str(no_timing), "--causal-timeout", "0.5"
        )
    details = {d["session"]: d for d in report["session_details"]}
    waits = [
        u for u in details[p1]["unmet_links"]
        if u.startswith("causal wait for event 'moved' caused by client message ")
    ]  # fmt: skip
    assert waits and all(u.split(" (x")[0].endswith(f"of session {p2} timed out") for u in waits)
    assert waits[0] in details[p1]["cause"], details[p1]["cause"]


async def test_without_links_player_two_joins_with_a_stale_code(game_capture: Path) -> None:
    """The control: replayed alone, the recorded join code is unknown to a fresh server."""
    async with running(GameServer().handler) as target:
        with CaptureStore.open(game_capture) as store:
            # Waits that cannot be met time out: keep each short, it is not what is tested.
            options = ReplayOptions(target, links=False, causal_timeout=0.5)
            result = await replay_capture(store, options, run="alone")
        async with running(GameServer().handler) as candidate:
            code, report = await shadow(
                game_capture, target, candidate, "--no-links", "--causal-timeout", "0.5"
            )
    # Alone, the baseline reproduces too little to prove anything: not a hollow "equivalent".
    assert code != 0 and report["verdict"] == "inconclusive"
    assert report["fidelity"]["sessions"]["unreproduced"] >= 3
    assert result.sessions == 4
    replayed = [got for _, got in recorded_and_replayed(game_capture, "alone")]
    assert sum(got.count("error") for got in replayed) == 3  # player 2 and both spectators
    assert not any("win" in got for got in replayed)


async def test_chat_room_identical_is_equivalent_and_a_silent_room_is_divergent(
    chat_capture: Path, no_timing: Path
) -> None:
    with CaptureStore.open(chat_capture) as store:
        graph = capture_links(store, ("type", "event"))
    assert [len(m) for m in graph.scenarios.values()] == [3]
    for attempt in range(3):
        async with running(ChatServer().handler) as base, running(ChatServer().handler) as cand:
            prefix = f"chat{attempt}"
            code, report = await shadow(
                chat_capture, base, cand, "--config", str(no_timing), "--run-prefix", prefix
            )
        assert code == 0, report["differences"]
        for recorded, replayed in recorded_and_replayed(chat_capture, f"{prefix}-baseline"):
            assert replayed == recorded
            assert Counter(replayed)["said"] == 6  # everyone hears all six messages
    async with (
        running(ChatServer().handler) as base,
        running(ChatServer(quiet_room=True).handler) as cand,
    ):
        code, report = await shadow(chat_capture, base, cand, "--config", str(no_timing))
    assert code == 1
    assert "missing_event /chat said" in {d["signature"] for d in report["differences"]}


async def test_session_and_shard_take_whole_scenarios(
    game_capture: Path, chat_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One capture with both scenarios in it.
    with CaptureStore.open(chat_capture) as chat, CaptureStore.open(game_capture) as game:
        game.put_sessions(chat.iter_sessions())
        graph = capture_links(game, ("type", "event"))
        assert sorted(len(m) for m in graph.scenarios.values()) == [3, 4]
        spectator = next(m[-1] for m in graph.scenarios.values() if len(m) == 4)
        picked, _ = select_with_scenarios(
            game, ReplayOptions("ws://127.0.0.1:1", session_ids=(spectator[:8],))
        )
        assert len(picked) == 4
        shards = [
            {h.id for h in select_with_scenarios(game, ReplayOptions("ws://h:1", shard=(i, 2)))[0]}
            for i in range(2)
        ]
        assert shards[0] | shards[1] == set(game.session_ids()) and not shards[0] & shards[1]
        for members in graph.scenarios.values():
            assert set(members) <= shards[0] or set(members) <= shards[1]
    async with running(GameServer().handler) as target:
        args = ["replay", str(game_capture), "--target", target, "--session", spectator[:8]]
        code = await asyncio.to_thread(main, [*args, "--run", "one"])
    assert code == 0
    err = capsys.readouterr().err
    assert f"session {spectator} is in scenario" in err and "4 sessions replay together" in err
    with CaptureStore.open(game_capture) as store:
        assert store.count_sessions("one") == 4
    code = await asyncio.to_thread(main, ["captures", "scenarios", str(game_capture)])
    out = capsys.readouterr().out
    assert code == 0 and "2 scenarios, 0 of 7 sessions replay alone" in out
    assert "link  value 'J-" in out and "link  event 'moved'" in out
    code = await asyncio.to_thread(main, ["captures", "ls", str(game_capture)])
    assert code == 0 and "scenario" in capsys.readouterr().out


def test_capture_scope_carry_rules_go_to_link_discovery_not_in_session(tmp_path: Path) -> None:
    from wsshadow.replay.config import load_config
    from wsshadow.replay.engine.options import build_replay_options
    from wsshadow.replay.errors import ConfigError
    from wsshadow.replay.options import NO_OVERRIDES

    path = tmp_path / "wsshadow.toml"
    path.write_text(
        '[[carry_over]]\nserver = "data.pin"\nclient = "pin"\nscope = "capture"\n'
        '[[carry_over]]\nserver = "a.b"\nclient = "c"\n'
    )
    options = build_replay_options(load_config(path), "ws://h:1", NO_OVERRIDES, {})
    assert [(r.server, r.client) for r in options.link_rules] == [("data.pin", "pin")]
    assert [(r.server, r.client) for r in options.carry_rules] == [("a.b", "c")]
    assert options.links and options.settings()["link_rules"] == [["data.pin", "pin", None]]
    path.write_text('[[carry_over]]\nserver = "a"\nclient = "b"\nscope = "world"\n')
    with pytest.raises(ConfigError, match=r"scope: expected \"session\" or \"capture\""):
        load_config(path)


def test_scenario_pacer_waits_on_gates_and_times_out_only_the_soft_ones() -> None:
    """The pacer is a state machine: no event loop, no socket."""
    from wsshadow.replay.engine.pacing import ClientStep, PacingPlan, PacingSettings
    from wsshadow.replay.engine.scenario_pacing import ScenarioBoard, ScenarioPacer, SessionGates

    def numbers(actions: tuple[object, ...]) -> list[int]:
        return [a.number for a in actions if isinstance(a, ClientStep)]

    steps = (
        ClientStep(0, 0, 0.1, "a", 0, 0.1),
        ClientStep(1, 1, 0.2, "b", 0, 0.1),
    )
    plan = PacingPlan(steps, 0, None, 1000, "", 0.3)
    woken: list[int] = []
    board = ScenarioBoard(2, [{1}, set()])
    board.wakers[1] = lambda: woken.append(1)
    board.set_sent(0, 0)  # session 0 connected
    gates = SessionGates(
        start=(),
        steps=(((0, 1),), ()),  # step 0 after session 0 sent one message
        values=((), ((0, "CODE-123"),)),  # step 1 uses a value issued to session 0
        received=((), ()),
        end=(),
        offset=0.0,
    )
    pacer = ScenarioPacer(plan, PacingSettings(causal_timeout=1.0), 0.0, board, 1, gates)
    assert pacer.what_to_send(5.0) == ()  # a sent gate never times out
    assert pacer.next_deadline() is not None and pacer.next_deadline() > 1000  # type: ignore[operator]
    board.set_sent(0, 1)
    assert woken  # the waiting session is woken
    assert numbers(pacer.what_to_send(6.0)) == [0]
    assert pacer.what_to_send(6.5) == ()  # the value has not arrived: wait...
    assert pacer.next_deadline() == 6.0 + 0.1 + 1.0
    board.value(0, "CODE-123", "CODE-999")
    assert numbers(pacer.what_to_send(6.6)) == [1]
    assert board.timeouts == 0
    # Without the value, the wait gives up after the gap plus the causal timeout.
    board2 = ScenarioBoard(2, [{1}, set()])
    board2.set_sent(0, 5)
    late = ScenarioPacer(plan, PacingSettings(causal_timeout=1.0), 0.0, board2, 1, gates)
    assert numbers(late.what_to_send(0.0)) == [0]
    assert late.what_to_send(1.0) == ()
    assert numbers(late.what_to_send(1.2)) == [1] and board2.timeouts == 1
    # ... and names the link it went without: which value, from which session.
    board3 = ScenarioBoard(2, [{1}, set()])
    board3.ids = ["s-one", "s-two"]
    board3.issued_at[0, "CODE-123"] = 4
    board3.keep = [frozenset({4}), frozenset()]
    board3.set_sent(0, 5)
    for n in range(5):
        board3.arrived(
            0, '{"type": "error", "reason": "no such game"}' if n == 4 else "{}", ("type",)
        )
    named = ScenarioPacer(plan, PacingSettings(causal_timeout=1.0), 0.0, board3, 1, gates)
    assert numbers(named.what_to_send(0.0)) == [0] and numbers(named.what_to_send(1.2)) == [1]
    assert named.unmet_links() == (
        "waited for value 'CODE-123' from server message 4 of session s-one "
        '(never arrived: s-one got error "no such game" in its place)',
    )


async def test_runs_replaying_a_scenario_to_one_target_take_turns(
    tmp_path: Path, no_timing: Path
) -> None:
    """Shadow replays the baseline and its noise run to the same server at once: in a room
    the client names (as the demo names a shared thread), both runs' members would meet,
    each hearing the other run's messages. They take turns with the scenario instead."""
    capture = tmp_path / "named.db"
    async with running(ChatServer(named_rooms=True).handler) as upstream:
        await record(upstream, capture, functools.partial(chat_room, room_name="lobby-42"))
    async with (
        running(ChatServer(named_rooms=True).handler) as base,
        running(ChatServer(named_rooms=True).handler) as cand,
    ):
        code, report = await shadow(
            capture, base, cand, "--config", str(no_timing), "--run-prefix", "named"
        )
    assert code == 0, report["differences"]
    assert "took turns (1 waited)" in report["timing"]["interleaving"]
    for run in ("named-baseline", "named-noise1"):
        for recorded, replayed in recorded_and_replayed(capture, run):
            assert Counter(replayed)["said"] == 6  # the room's six messages, not twelve
            assert replayed == recorded
