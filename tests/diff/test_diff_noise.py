"""Noise across sessions: Fisher's exact test and the suppression rule."""

from __future__ import annotations

import random

import pytest

from tests.diff.diffkit import S, session
from wsshadow.replay.config import DiffConfig, NoiseConfig
from wsshadow.replay.diff.capture import DiffAccumulator, diff_session
from wsshadow.replay.diff.noise import NoiseModel, SessionNoise, clearly_above, fisher_greater


@pytest.mark.parametrize(
    ("a", "n1", "b", "n2", "p"),
    [
        (10, 20, 2, 20, 0.0069070739),  # scipy.stats.fisher_exact(alternative="greater")
        (3, 3, 0, 3, 0.05),
        (0, 5, 0, 5, 1.0),
        (5, 10, 5, 10, 0.6718591),
        (1, 10, 9, 10, 1 - 1 / 184756),
    ],
)
def test_fisher_greater_matches_reference_values(
    a: int, n1: int, b: int, n2: int, p: float
) -> None:
    assert fisher_greater(a, n1, b, n2) == pytest.approx(p, rel=1e-6)


def test_fisher_is_fast_and_tiny_for_large_clear_differences() -> None:
    assert (
        fisher_greater(9000, 10000, 3000, 10000) < 1e-300
        or fisher_greater(9000, 10000, 3000, 10000) == 0.0
    )
    assert 0.4 < fisher_greater(5000, 10000, 5000, 10000) < 0.6


def test_fisher_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        fisher_greater(11, 10, 0, 10)


@pytest.mark.parametrize("sessions", [10, 30, 100, 300, 1000, 10000])
def test_a_race_flipping_in_half_the_sessions_is_never_reported(sessions: int) -> None:
    """2,000 simulated diffs of a 50% race: at most 1 in 400 signatures slips through
    at tiny samples (measured 0.0004-0.0006 at 10-50 sessions), none from 300 sessions up."""
    cfg = NoiseConfig()
    rng = random.Random(sessions)
    reported = 0
    for _ in range(2000):
        cand = bin(rng.getrandbits(sessions)).count("1")
        noise = bin(rng.getrandbits(sessions)).count("1")
        reported += clearly_above(cand, sessions, noise, sessions, cfg)
    assert reported <= (5 if sessions < 300 else 0)


def test_a_real_regression_above_the_noise_is_reported() -> None:
    cfg = NoiseConfig()
    assert clearly_above(40, 40, 4, 40, cfg)  # always vs 10%
    assert not clearly_above(22, 40, 20, 40, cfg)  # within Diffy's relative threshold
    assert not clearly_above(3, 3, 1, 3, cfg)  # too few sessions to tell


def test_noise_model_counts_sessions_not_occurrences() -> None:
    model = NoiseModel(NoiseConfig())
    for i in range(10):
        noise = SessionNoise({"changed_value /ws x a"} if i % 2 else set(), set(), 1)
        model.add(noise, ["changed_value /ws x a", "changed_value /ws x a"] if i < 5 else [])
    assert model.candidate_sessions["changed_value /ws x a"] == 5
    assert model.noise_sessions["changed_value /ws x a"] == 5
    assert model.is_noise("changed_value /ws x a")
    assert not model.is_noise("missing_event /ws y")  # never seen in the noise


def test_a_regression_in_every_session_survives_a_noisy_field() -> None:
    """A field that flips in 30% of baseline runs but is always wrong in the candidate."""
    rng = random.Random(1)
    cfg = DiffConfig()
    acc = DiffAccumulator(cfg)
    for i in range(60):

        def flip() -> int:
            return 1 if rng.random() < 0.3 else 0

        base = session("b", [S({"type": "x", "v": 0, "w": flip()})])
        noise = session("n", [S({"type": "x", "v": 0, "w": flip()})])
        cand = session("c", [S({"type": "x", "v": 0, "w": 2})])
        acc.add(diff_session(f"s{i}", "/ws", base, cand, [noise], cfg.for_route("/ws")))
    parts = acc.finish()
    assert [d["signature"] for d in parts["differences"]] == ["changed_value /ws x w"]
    group = parts["differences"][0]
    # sessions whose own baseline runs disagreed on w are masked, the rest reported
    assert 0 < group["count"] < 60
    assert [n["reason"] for n in parts["noise"]] == [
        "varies between baseline runs of the same sessions"
    ]
    assert parts["sessions"]["divergent"] == group["count"]
