"""Fidelity, alignment-free field checks, noise budget and verdict: the pure parts."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from tests.diff.diffkit import S, session
from wsshadow.replay.capture.model import Close, Closer
from wsshadow.replay.config import DiffConfig, VerdictConfig, load_config
from wsshadow.replay.diff.capture import DiffAccumulator, diff_session
from wsshadow.replay.diff.distributions import FieldDistributions, binomial_tail
from wsshadow.replay.diff.fidelity import FidelityTally, session_fidelity
from wsshadow.replay.diff.normalize import Normalizer
from wsshadow.replay.diff.verdict import NoiseBudget, count_values, decide_verdict
from wsshadow.replay.errors import ConfigError

ROUTE = "/ws"
CFG = DiffConfig()
RC = CFG.for_route(ROUTE)
NORM = Normalizer(RC)


# ---- fidelity ---------------------------------------------------------------------


def test_a_faithful_replay_reproduces_everything_even_with_other_values() -> None:
    recorded = session("r", [S({"type": "hello", "user": "alice"}), S({"type": "bye"})])
    replay = session("b", [S({"type": "hello", "user": "replayer"}), S({"type": "bye"})])
    fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
    assert (fid.events, fid.reproduced_events, fid.cause) == (3, 3, None)
    assert fid.share == 1.0


def test_an_error_answer_in_place_of_events_names_both() -> None:
    moves = [S({"type": "play", "n": n}) for n in range(6)]
    recorded = session("r", [S({"type": "joined"}), *moves])
    error = S({"type": "error", "data": {"message": "Game not found."}})
    replay = session("b", [S({"type": "joined"}), error])
    fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
    assert (
        fid.cause == 'baseline answered error "Game not found." where the recording had play (x6)'
    )
    assert fid.reproduced_events == 2 and fid.events == 8  # joined and the close


def test_an_early_server_close_says_after_how_many_messages() -> None:
    recorded = session("r", [S({"type": "m", "n": n}) for n in range(9)])
    replay = session(
        "b", [S({"type": "m", "n": n}) for n in range(2)], close=Close(1008, "", Closer.SERVER)
    )
    fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
    assert fid.cause == "closed by server 1008 after 2 of 9 messages"
    assert fid.share == pytest.approx(2 / 10)


def test_a_refused_handshake_reproduces_nothing() -> None:
    recorded = session("r", [S({"type": "m"})])
    replay = session("b", [], status=403)
    fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
    assert fid.share == 0 and fid.cause == "handshake answered 403 where the recording had 101"


def test_text_payloads_that_vary_between_baseline_runs_are_credited_at_the_end() -> None:
    tally = FidelityTally(VerdictConfig())
    recorded = session("r", [S(f"{100 + i}|ack") for i in range(4)])
    replay = session("b", [S(f"{900 + i}|ack") for i in range(4)])
    fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
    assert fid.reproduced_events == 1 and len(fid.value_rows) == 4
    tally.add("r", ROUTE, fid)
    out, shares = tally.finish(noise={"changed_value /ws - <number>1"})
    assert out["sessions"] == {"total": 1, "reproduced": 1, "unreproduced": 0}
    assert shares == {"r": (1.0, None)}
    tally = FidelityTally(VerdictConfig())
    tally.add("r", ROUTE, fid)
    out, shares = tally.finish(noise=set())
    assert out["sessions"]["unreproduced"] == 1
    assert (
        shares["r"][1]
        == "payloads differ from the recording: messages without an event key (at <number>1) (x4)"
    )


def test_causes_are_grouped_with_counts_and_example_sessions() -> None:
    tally = FidelityTally(VerdictConfig())
    for i in range(7):
        recorded = session(f"r{i}", [S({"type": "m", "n": n}) for n in range(9)])
        replay = session(
            "b", [S({"type": "m", "n": n}) for n in range(i % 2 + 1)],
            close=Close(1008, "", Closer.SERVER),
        )  # fmt: skip
        tally.add(f"r{i}", ROUTE, session_fidelity(recorded, replay, NORM, RC, ROUTE))
    out, _ = tally.finish(noise=set())
    assert [(c["count"], len(c["sessions"])) for c in out["causes"]] == [(7, 5)]
    assert out["causes"][0]["cause"].startswith("closed by server 1008 after 1 of 9")


# ---- alignment-free field checks ---------------------------------------------------


def test_binomial_tail_matches_the_definition() -> None:
    def exact(k: int, n: int, p: float) -> float:
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    for k, n, p in ((0, 5, 0.3), (3, 10, 0.2), (10, 10, 0.5), (1, 40, 0.01), (7, 30, 0.9)):
        assert binomial_tail(k, n, p) == pytest.approx(exact(k, n, p), rel=1e-9)
    assert binomial_tail(11, 10, 0.5) == 0.0


def _streams(values: list[Any]) -> list[Any]:
    return NORM.stream(session("x", [S({"type": "quote", "currency": v}) for v in values]))


def _fields(base: list[list[Any]], cand: list[list[Any]]) -> FieldDistributions:
    fd = FieldDistributions(0.01)
    fd.track(ROUTE, [("quote", "currency")])
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        fd.add_session(f"s{i}", ROUTE, [(_streams(b), None)], (_streams(c), None))
    return fd


def test_a_changed_constant_is_found_and_named() -> None:
    fd = _fields([["USD"]] * 12, [["EUR"]] * 12)
    [f] = fd.findings()
    assert (f.event, f.path, f.expected, f.actual) == ("quote", "currency", "USD", "EUR")
    assert f.count == 12 and f.p_value < 1e-10 and "no baseline run ever did" in f.reason


def test_a_rare_new_value_is_not_a_finding() -> None:
    fd = _fields([["USD"]] * 40, [["USD"]] * 39 + [["GBP"]])
    assert fd.findings() == []


def test_volatile_values_never_become_findings() -> None:
    rng = random.Random(5)
    base = [[f"id-{rng.getrandbits(40)}"] for _ in range(60)]
    cand = [[f"id-{rng.getrandbits(40)}"] for _ in range(60)]
    fd = _fields(base, cand)
    assert fd.findings() == [] and fd.volatile(ROUTE, "quote", "currency")


def test_a_removed_field_is_found() -> None:
    fd = FieldDistributions(0.01)
    fd.track(ROUTE, [("quote", "fee")])
    for i in range(10):
        base = NORM.stream(session("b", [S({"type": "quote", "fee": 1})]))
        cand = NORM.stream(session("c", [S({"type": "quote"})]))
        fd.add_session(f"s{i}", ROUTE, [(base, None)], (cand, None))
    [f] = fd.findings()
    assert (f.path, f.expected, f.actual) == ("fee", 1, "<absent>")


def test_a_value_that_differs_between_baseline_runs_too_is_noise() -> None:
    fd = FieldDistributions(0.01)
    fd.track(ROUTE, [("quote", "currency")])
    for i in range(12):
        runs = [(_streams(["A"]), None), (_streams(["B"]), None)]
        fd.add_session(f"s{i}", ROUTE, runs, (_streams(["C"]), None))
    assert fd.findings() == []


def test_positional_noise_hiding_a_changed_constant_becomes_a_difference() -> None:
    """Replies in completion order: positions vary, so every field is noise by position."""
    rng = random.Random(3)

    def replies(currency: str) -> list[Any]:
        items = [{"id": i, "result": {"currency": currency}} if i % 2 else
                 {"id": i, "result": {"unit": "pct"}} for i in range(6)]  # fmt: skip
        rng.shuffle(items)
        return [S(v) for v in items]

    acc = DiffAccumulator(CFG)
    for i in range(12):
        base = session("b", replies("USD"))
        noise = [session("n", replies("USD"))]
        cand = session("c", replies("EUR"))
        acc.add(diff_session(f"s{i}", "/rpc", base, cand, noise, CFG.for_route("/rpc")))
    parts = acc.finish()
    found = [d for d in parts["differences"] if d["path"] == "result.currency"]
    assert found and parts["verdict"] == "divergent"
    assert found[0]["examples"][0]["expected"] == "USD"
    assert found[0]["examples"][0]["actual"] == "EUR"


# ---- noise budget and verdict ------------------------------------------------------


def test_count_values_counts_json_leaves_and_whole_texts() -> None:
    stream = NORM.stream(session("x", [S({"a": 1, "b": {"c": [1, 2], "d": {}}}), S("text")]))
    assert count_values(stream) == 5


def _noise(route: str, path: str | None, occurrences: int) -> dict[str, Any]:
    return {"signature": f"changed_value {route} - {path}", "kind": "changed_value",
            "route": route, "event": None, "path": path, "occurrences": occurrences}  # fmt: skip


def test_routes_are_not_comparable_when_noise_swallows_payloads_or_values() -> None:
    budget = NoiseBudget()
    for route in ("/a", "/b", "/c"):
        budget.add(route, NORM.stream(session("x", [S({"a": i, "b": i}) for i in range(50)])))
    routes = budget.routes(
        [_noise("/a", "a", 10), _noise("/b", "a", 30), _noise("/c", None, 1)], VerdictConfig()
    )
    by_route = {r["route"]: r for r in routes}
    assert by_route["/a"]["comparable"] and by_route["/a"]["suppressed_share"] == 0.1
    assert not by_route["/b"]["comparable"] and "30%" in by_route["/b"]["reason"]
    assert not by_route["/c"]["comparable"]
    assert "whole payloads" in by_route["/c"]["reason"]
    # values of volatile fields (ids) hide nothing: they do not count
    routes = budget.routes([_noise("/b", "a", 30)], VerdictConfig(), lambda *_: True)
    assert routes[1]["comparable"] and routes[1]["suppressed_values"] == 0


def test_the_verdict_needs_no_difference_reproduced_sessions_and_comparable_routes() -> None:
    cfg = VerdictConfig()
    good = {"measured": True, "sessions": {"total": 20, "reproduced": 19}, "routes": []}
    assert decide_verdict([], good, cfg) == ("equivalent", [])
    poor = {**good, "sessions": {"total": 20, "reproduced": 18},
            "causes": [{"cause": "closed by server 1008 after 2 of 9 messages", "count": 2}]}  # fmt: skip
    verdict, reasons = decide_verdict([], poor, cfg)
    assert verdict == "inconclusive"
    assert reasons == [
        "2 of 20 sessions not reproduced by the baseline replay (90% reproduced, 95% needed): "
        "closed by server 1008 after 2 of 9 messages (x2)"
    ]
    blind = {**good, "routes": [{"route": "/x", "comparable": False, "reason": "r"}]}
    assert decide_verdict([], blind, cfg) == ("inconclusive", ["route /x is not comparable: r"])
    assert decide_verdict([{"signature": "s"}], blind, cfg)[0] == "divergent"
    assert decide_verdict([], {"measured": False}, cfg) == ("equivalent", [])


def test_verdict_table_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "wsshadow.toml"
    path.write_text("[verdict]\nmin_session_fidelity = 0.5\nmin_reproduced = 1\n")
    assert load_config(path).verdict == VerdictConfig(0.5, 1.0, 0.2)
    for bad, message in (
        ("[verdict]\nmin_reproduced = 1.5", "[verdict].min_reproduced: expected a share"),
        ("[verdict]\nmax_noise = 0.1", "[verdict].max_noise: unknown key"),
        ('[verdict]\nmax_noise_share = "x"', "[verdict].max_noise_share: expected a number"),
    ):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=rf"{message.replace('[', '.').replace(']', '.')}"):
            load_config(path)


def test_big_values_are_counted_by_digest_and_shown_cut() -> None:
    fd = FieldDistributions(0.01)
    fd.track(ROUTE, [("quote", "blob")])
    for i in range(10):
        base = NORM.stream(session("b", [S({"type": "quote", "blob": "x" * 5000})]))
        cand = NORM.stream(session("c", [S({"type": "quote", "blob": "y" * 5000})]))
        fd.add_session(f"s{i}", ROUTE, [(base, None)], (cand, None))
    [f] = fd.findings()
    assert f.expected == "x" * 256 + "…" and f.actual == "y" * 256 + "…"
    base_side = fd.fields[ROUTE, "quote", "blob"][0]
    assert all(len(k) <= 300 for k in base_side.counts)


def test_an_unmet_link_leads_the_cause_and_groups_across_scenarios() -> None:
    """A replayed session's unmet links (provenance tags, engine/scenario_pacing.py) come
    first in its cause; the same failure in another scenario (other ids, another value)
    is the same cause."""
    from dataclasses import replace

    from wsshadow.replay.capture.model import unmet_link_tags

    tally = FidelityTally(VerdictConfig())
    for game, (p1, code) in enumerate([("a1b2c3d4e5f6", "J-7F3A91"), ("0f9e8d7c6b5a", "J-00C0DE")]):
        link = (
            f"waited for value {code!r} from server message 0 of session {p1} "
            f"(never arrived: {p1} got created in its place)"
        )
        recorded = session(f"p2-{game}", [S({"type": "joined"}), S({"type": "moved"})])
        replay = session("b", [S({"type": "error", "reason": "no such game"})])
        tags = (*replay.provenance.tags, *unmet_link_tags((link, "causal wait for x timed out")))
        replay = replace(replay, provenance=replace(replay.provenance, tags=tags))
        fid = session_fidelity(recorded, replay, NORM, RC, ROUTE)
        assert fid.links == (link, "causal wait for x timed out")
        assert fid.cause is not None and fid.cause.startswith(f"{link} (and 1 more unmet links); ")
        tally.add(f"p2-{game}", ROUTE, fid)
    out, _ = tally.finish(noise=set())
    assert [(c["count"], c["sessions"]) for c in out["causes"]] == [(2, ["p2-0", "p2-1"])]
