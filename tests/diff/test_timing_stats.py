"""Timing findings from distributions (diff/timing.py), the [verdict] table, the lockstep gate."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsshadow.replay.config import TimingConfig, VerdictConfig, load_config
from wsshadow.replay.diff.timing import (
    MAX_TRACKED,
    LatencySamples,
    Reservoir,
    mann_whitney_greater,
    quantile,
)
from wsshadow.replay.engine.interleave import Lockstep
from wsshadow.replay.errors import ConfigError

samples = st.lists(st.integers(0, 30).map(float), min_size=1, max_size=30)


@given(samples, samples)
def test_u_counts_the_pairs_where_the_candidate_is_larger(
    base: list[float], cand: list[float]
) -> None:
    u, p = mann_whitney_greater(base, cand)
    pairs = sum(1.0 if c > b else 0.5 if c == b else 0.0 for b in base for c in cand)
    assert u == pytest.approx(pairs)
    assert 0.0 <= p <= 1.0


@given(samples, samples)
def test_the_two_one_sided_tests_are_mirrors(base: list[float], cand: list[float]) -> None:
    u, greater = mann_whitney_greater(base, cand)
    _, less = mann_whitney_greater(cand, base)
    # the continuity correction makes the two tails overlap, never leave a gap
    assert greater + less >= 1.0 - 1e-9
    if u > len(base) * len(cand) / 2 + 0.5 and greater < 1.0:
        assert greater < 0.5 < less


def test_textbook_value() -> None:
    """Five against five, fully separated: z = (25 - 12.5 - 0.5) / sqrt(25 * 11 / 12)."""
    _, p = mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert p == pytest.approx(0.00609, abs=5e-5)
    _, p = mann_whitney_greater([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert p > 0.99


def test_all_ties_and_empty_sides_are_not_significant() -> None:
    assert mann_whitney_greater([1.0] * 30, [1.0] * 30)[1] == 1.0
    assert mann_whitney_greater([], [1.0])[1] == 1.0


def test_quantile_interpolates() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.95) == 5.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_reservoir_stays_flat_and_is_repeatable() -> None:
    a, b = Reservoir(cap=100, seed=3), Reservoir(cap=100, seed=3)
    a.extend(float(i) for i in range(10_000))
    b.extend(float(i) for i in range(10_000))
    assert len(a.values) == 100 and a.seen == 10_000 and a.values == b.values
    assert max(a.values) > 5_000, "late values get in too"


def _summary(
    base: list[float], cand: list[float], noise: list[float] | None = None, **config: float
) -> dict[str, object]:
    s = LatencySamples()
    s.add("/ws", {"e": base}, {"e": cand}, [{"e": noise}] if noise else [])
    return s.summary(TimingConfig(**config), "report")  # type: ignore[arg-type]


def _jitter(center_ms: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [(center_ms + rng.uniform(-2, 2)) / 1000.0 for _ in range(n)]


def test_a_steady_shift_is_a_finding_with_medians_p95s_samples_and_p() -> None:
    out = _summary(_jitter(5, 30, 1), _jitter(105, 30, 2), _jitter(5, 30, 3))
    [f] = out["findings"]  # type: ignore[misc]
    assert f["signature"] == "timing /ws e" and f["event"] == "e"
    assert 100 <= f["candidate"]["median_ms"] - f["baseline"]["median_ms"] <= 110
    assert f["baseline"]["samples"] == f["candidate"]["samples"] == 30
    assert f["p_value"] < 1e-6 and f["candidate"]["p95_ms"] > 100
    assert len(f["plot"]["candidate"]) == 21


def test_too_few_samples_is_no_finding() -> None:
    out = _summary(_jitter(5, 19, 1), _jitter(105, 19, 2))
    assert out["findings"] == []
    assert "fewer than 20 samples" in out["events"][0]["why_not"]  # type: ignore[index]


def test_a_few_slow_outliers_are_no_finding() -> None:
    """Eight cold requests of forty at +200 ms: significant maybe, but the median does not move."""
    cand = _jitter(5, 32, 2) + _jitter(205, 8, 4)
    out = _summary(_jitter(5, 40, 1), cand)
    assert out["findings"] == []
    assert any("median not" in why for why in out["events"][0]["why_not"])  # type: ignore[index]


def test_a_shift_the_noise_runs_share_is_no_finding() -> None:
    """The baseline itself was fast this once: the second baseline run is as slow as the candidate."""
    out = _summary(_jitter(5, 30, 1), _jitter(105, 30, 2), _jitter(100, 30, 3))
    assert out["findings"] == []
    assert "within the noise runs' own shift" in out["events"][0]["why_not"]  # type: ignore[index]


def test_under_the_floor_is_no_finding() -> None:
    out = _summary(_jitter(5, 30, 1), _jitter(45, 30, 2))  # 9x slower but only 40 ms
    assert out["findings"] == []


def test_the_verdict_table(tmp_path: Path) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text(
        '[verdict]\ntiming = "gate"\n[diff.timing]\nmin_samples = 40\nsignificance = 0.001\n'
        "noise_margin = 3\n"
    )
    cfg = load_config(path)
    assert cfg.verdict == VerdictConfig(timing="gate")
    assert (cfg.diff.timing.min_samples, cfg.diff.timing.significance) == (40, 0.001)
    assert cfg.diff.timing.noise_margin == 3.0
    path.write_text("")
    assert load_config(path).verdict.timing == "report"
    for bad, key in (
        ('[verdict]\ntiming = "yes"\n', "[verdict].timing"),
        ("[verdict]\nslow = 1\n", "[verdict].slow"),
        ("[diff.timing]\nsignificance = 1.5\n", "significance"),
        ("[diff.timing]\nmin_samples = 1\n", "min_samples"),
    ):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_config(path)


async def test_lockstep_starts_each_session_on_every_run_together_rotating_the_first() -> None:
    runs = ["baseline", "candidate", "noise1"]
    gate = Lockstep(runs)
    started: list[tuple[int, str]] = []

    async def run(name: str, delay: float, sessions: int) -> None:
        try:
            for i in range(sessions):
                await asyncio.sleep(delay)  # one run is slower to get to each session
                await gate.ready(name, i)
                started.append((i, name))
        finally:
            gate.done(name)

    await asyncio.gather(run("baseline", 0.0, 6), run("candidate", 0.003, 6), run("noise1", 0, 4))
    order = [i for i, _ in started]
    assert order == sorted(order), "no run starts session i+1 before every run started session i"
    firsts = [next(name for i, name in started if i == k) for k in range(4)]
    assert firsts == ["baseline", "candidate", "noise1", "baseline"]
    # noise1 has no session 4 or 5: nobody waits for it
    assert [name for i, name in started if i >= 4] == [
        "candidate",
        "baseline",
        "baseline",
        "candidate",
    ]


def test_event_keys_past_the_tracked_limit_are_counted_not_kept() -> None:
    s = LatencySamples(cap=10)
    for i in range(MAX_TRACKED + 5):
        s.add("/ws", {f"e{i}": [0.001]}, {f"e{i}": [0.002]})
    out = s.summary(TimingConfig(), "report")
    assert len(s.events) == MAX_TRACKED and out["events_untracked"] == 5
    assert len(out["events"]) == 200 and out["events_truncated"] is True


def test_lockstep_says_how_runs_were_interleaved() -> None:
    assert (
        Lockstep(["a", "b", "c"]).describe().startswith("lockstep: each session started on all 3")
    )
    assert "nothing to interleave" in Lockstep(["candidate"]).describe()


def test_one_session_streaming_many_slow_messages_is_no_finding() -> None:
    """60 slow samples from one session outnumber 25 fast sessions' samples: the pooled
    median moves, the per-session medians do not."""
    s = LatencySamples()
    for i in range(25):
        s.add("/ws", {"tick": _jitter(5, 1, i)}, {"tick": _jitter(5, 1, 100 + i)})
    s.add("/ws", {"tick": _jitter(5, 60, 7)}, {"tick": _jitter(205, 60, 8)})
    out = s.summary(TimingConfig(), "report")
    [row] = out["events"]  # type: ignore[misc]
    assert row["candidate"]["median_ms"] > 100, "the pooled median did move"
    assert row["candidate"]["sessions"] == 26
    assert out["findings"] == [] and row["why_not"] == [
        "not slower across sessions (the per-session medians do not move)"
    ]


async def test_lockstep_runs_take_turns_with_a_scenario_on_one_target() -> None:
    gate = Lockstep(["baseline", "noise1", "candidate"])
    inside: set[str] = set()
    overlaps: list[set[str]] = []

    async def scenario(run: str, target: str) -> None:
        async with gate.turn(target, "s1"):
            inside.add(run)
            overlaps.append(set(inside))
            await asyncio.sleep(0.01)
            inside.discard(run)

    await asyncio.gather(
        scenario("baseline", "ws://legacy"),
        scenario("noise1", "ws://legacy"),
        scenario("candidate", "ws://consolidated"),
    )
    # the two runs on one target never overlap; the other target does not wait for them
    assert not any({"baseline", "noise1"} <= seen for seen in overlaps)
    assert any({"baseline", "candidate"} <= seen for seen in overlaps)
    assert gate.turns_waited == 1
    assert gate.describe().endswith("took turns (1 waited)")
