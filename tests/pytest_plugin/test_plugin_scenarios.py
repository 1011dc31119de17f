"""The pytest plugin replays linked sessions together (engine/scenarios.py): a two-player
game with spectators (tests/engine/scenario_apps.py), recorded through the proxy, one item
per session, each item's result from its scenario's replay."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.scenario_apps import GameServer, play_game, record, running
from tests.pytest_plugin.test_pytest_plugin import reports
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Game:
    """A recorded game and servers to replay it against (on their own loop in a thread:
    pytester blocks the test's)."""

    capture: Path
    same: str  # an identical server
    no_win: str  # never sends the final event
    no_code: str  # never gives player 1 the join code
    sessions: tuple[str, ...]  # recorded order: player 1, player 2, two spectators


@pytest.fixture(scope="module")
def game(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Game]:
    capture = tmp_path_factory.mktemp("plugin-game") / "game.db"
    ready: Future[Game] = Future()
    stop: Future[None] = Future()

    async def main() -> None:
        try:
            async with running(GameServer().handler) as upstream:
                await record(upstream, capture, play_game)
            async with (
                running(GameServer().handler) as same,
                running(GameServer(drop_final=True).handler) as no_win,
                running(GameServer(hide_join_code=True).handler) as no_code,
            ):
                with CaptureStore.open(capture) as store:
                    ids = tuple(h.id for h in sorted(store.heads(), key=lambda h: h.started_at))
                ready.set_result(Game(capture, same, no_win, no_code, ids))
                await asyncio.wrap_future(stop)
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=scaled(60))
    finally:
        stop.set_result(None)
        thread.join(scaled(10))


def run(pytester: pytest.Pytester, game: Game, target: str, *args: str) -> dict[str, str]:
    """Item (session id) -> its outcome, or its failure text."""
    rec = pytester.inline_run(
        "-p", "no:cacheprovider", f"--wsshadow-capture={game.capture}",
        f"--wsshadow-target={target}", "--wsshadow-causal-timeout=0.5", *args,
    )  # fmt: skip
    return {
        node.rsplit("::", 1)[1]: "passed" if r.passed else r.longreprtext
        for node, r in reports(rec).items()
    }


def test_against_an_identical_server_every_session_of_the_game_passes(
    pytester: pytest.Pytester, game: Game
) -> None:
    got = run(pytester, game, game.same)
    assert got == {sid: "passed" for sid in game.sessions}


def test_a_server_that_drops_the_final_event_fails_every_session_naming_it(
    pytester: pytest.Pytester, game: Game
) -> None:
    got = run(pytester, game, game.no_win)
    assert set(got) == set(game.sessions)
    for sid, text in got.items():
        assert "missing_event /game win" in text, text
        others = [o for o in game.sessions if o != sid]
        assert f"replayed together with the sessions of its scenario: {', '.join(others)}" in text


def test_a_join_code_that_never_arrives_is_named_in_player_twos_failure(
    pytester: pytest.Pytester, game: Game
) -> None:
    player1, player2 = game.sessions[:2]
    got = run(pytester, game, game.no_code)
    assert "unmet link: waited for value 'J-" in got[player2]
    assert f"from server message 0 of session {player1} (never arrived: " in got[player2]


def test_no_links_replays_each_session_alone(pytester: pytest.Pytester, game: Game) -> None:
    """The control: alone, player 2 and the spectators send codes a fresh server never issued."""
    got = run(pytester, game, game.same, "--wsshadow-no-links")
    assert got[game.sessions[0]] != "passed"  # player 1 waits in vain for player 2
    for sid in game.sessions[1:]:
        assert "error" in got[sid] and "replayed together" not in got[sid], got[sid]


def test_the_replay_fixture_replays_a_session_with_its_scenario(
    pytester: pytest.Pytester, game: Game
) -> None:
    player2 = game.sessions[1]
    pytester.makepyfile(
        f"""
        def test_fixture_player_two(wsshadow_replay):
            result = wsshadow_replay({player2!r})
            assert result.equivalent, result.explain()
            assert result.live.provenance.origin == {player2!r}
        """
    )
    rec = pytester.inline_run(
        "-p", "no:cacheprovider", f"--wsshadow-capture={game.capture}",
        f"--wsshadow-target={game.same}", "-k", "fixture_player_two",
    )  # fmt: skip
    passed, skipped, failed = rec.listoutcomes()
    assert [r.nodeid.rsplit("::", 1)[1] for r in passed] == ["test_fixture_player_two"]
    assert failed == [] and skipped == []
