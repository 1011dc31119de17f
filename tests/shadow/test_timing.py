"""Timing findings that hold up: real servers on loopback, shadow run after shadow run.

A server that is slow only on its first requests (cold caches) must not make
a timing finding; a server that adds a steady 100 ms to one event must, every
time, and ``[verdict] timing`` decides whether that makes the verdict divergent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.timeouts import scaled
from wsshadow.replay.capture.model import (
    Close,
    Closer,
    Direction,
    Handshake,
    Message,
    Opcode,
    Provenance,
    Session,
)
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

SESSIONS = 12
RUNS = 10
IDLE = f"{scaled(2):g}"
"""--idle-timeout: every session ends with the server's close; this only bounds a stuck one."""


class Shop:
    """Answers ``ask`` with ``answer`` and ``fetch`` with ``data``.

    ``cold``: the first this many requests the process serves take 150 ms
    more (empty caches); ``slow_data``: every ``data`` takes this much more.
    """

    def __init__(self, cold: int = 0, slow_data: float = 0.0) -> None:
        self.cold = cold
        self.slow_data = slow_data
        self.served = 0

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "welcome"}))
        async for raw in ws:
            msg = json.loads(raw)
            self.served += 1
            if self.served <= self.cold:
                await asyncio.sleep(0.15)
            if msg["type"] == "ask":
                await ws.send(json.dumps({"type": "answer", "n": msg["n"]}))
            elif msg["type"] == "fetch":
                if self.slow_data:
                    await asyncio.sleep(self.slow_data)
                await ws.send(json.dumps({"type": "data", "n": msg["n"]}))
            elif msg["type"] == "bye":
                await ws.close(1000, "done")
                return


@asynccontextmanager
async def server(shop: Shop) -> AsyncIterator[str]:
    async with serve(shop.handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def recorded_session(i: int) -> Session:
    msgs: list[Message] = []

    def m(d: str, payload: dict[str, Any]) -> None:
        msgs.append(Message(len(msgs), len(msgs) * 0.002, Direction(d), Opcode.TEXT,
                            json.dumps(payload)))  # fmt: skip

    m("server", {"type": "welcome"})
    for n in (1, 2):
        m("client", {"type": "ask", "n": n})
        m("server", {"type": "answer", "n": n})
        m("client", {"type": "fetch", "n": n})
        m("server", {"type": "data", "n": n})
    m("client", {"type": "bye"})
    return Session(
        f"rec{i:02}",
        1000.0 + i,
        Handshake("/shop"),
        tuple(msgs),
        Close(1000, "done", Closer.SERVER, t=0.05),
        Provenance(),
    )


def make_capture(path: Path) -> Path:
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(recorded_session(i) for i in range(SESSIONS))
    return path


async def shadow(capture: Path, baseline: str, candidate: str, *extra: str) -> tuple[int, Any]:
    report = capture.with_suffix(".json")
    args = ["shadow", str(capture), "--baseline", baseline, "--candidate", candidate,
            "--report", str(report), "--idle-timeout", IDLE, *extra]  # fmt: skip
    code = await asyncio.to_thread(main, args)
    return code, json.loads(report.read_text())


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wsshadow.toml"
    path.write_text(text)
    return str(path)


async def test_a_cold_candidate_is_no_timing_difference_run_after_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warm = Shop(cold=10)
    warm.served = 10  # the baseline has just served the recording
    async with server(warm) as baseline:
        for run in range(RUNS):
            async with server(Shop(cold=10)) as candidate:  # a fresh, cold process each time
                code, report = await shadow(
                    make_capture(tmp_path / f"cold{run}.db"), baseline, candidate
                )
            timing = report["timing"]
            assert code == 0 and report["verdict"] == "equivalent", (run, report["differences"])
            assert timing["findings"] == [], (run, timing["findings"])
            assert {e["event"] for e in timing["events"]} >= {"answer", "data"}
            assert timing["interleaving"].startswith("lockstep")
            assert timing["warmup"] == 5
    capsys.readouterr()


async def test_cold_requests_without_warmup_are_outliers_not_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no warm-up, 10 cold requests of 48 reach the statistics; the medians do not move."""
    warm = Shop(cold=10)
    warm.served = 10
    async with server(warm) as baseline, server(Shop(cold=10)) as candidate:
        code, report = await shadow(
            make_capture(tmp_path / "nowarm.db"), baseline, candidate, "--warmup", "0"
        )
    assert report["timing"]["warmup"] == 0
    assert code == 0 and report["timing"]["findings"] == [], report["timing"]["events"]
    slowest = max(e["candidate"]["p95_ms"] for e in report["timing"]["events"])
    assert slowest >= 150, "the cold requests were measured (and outvoted)"
    capsys.readouterr()


async def test_a_steady_100_ms_on_one_event_is_found_every_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server(Shop()) as baseline, server(Shop(slow_data=0.1)) as candidate:
        for run in range(RUNS):
            code, report = await shadow(
                make_capture(tmp_path / f"slow{run}.db"), baseline, candidate
            )
            timing = report["timing"]
            assert [f["signature"] for f in timing["findings"]] == ["timing /shop data"], (
                run, timing["events"],
            )  # fmt: skip
            found = timing["findings"][0]
            # the server sleeps 100 ms; the baseline median moves with the machine's load
            assert found["candidate"]["median_ms"] >= 100
            assert found["candidate"]["median_ms"] - found["baseline"]["median_ms"] >= 50
            assert found["baseline"]["samples"] == found["candidate"]["samples"] == 2 * SESSIONS
            assert found["p_value"] < 0.01 and found["candidate"]["p95_ms"] >= 100
            # report (the default): listed, and the verdict stays equivalent
            assert timing["mode"] == "report"
            assert code == 0 and report["verdict"] == "equivalent", report["differences"]
    out = capsys.readouterr().out
    assert "timing /shop data" in out


async def test_gate_makes_the_timing_finding_divergent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = config(tmp_path, '[verdict]\ntiming = "gate"\n')
    files = {ext: tmp_path / f"report.{ext}" for ext in ("html", "md", "xml")}
    reports = [arg for f in files.values() for arg in ("--report", str(f))]
    async with server(Shop()) as baseline, server(Shop(slow_data=0.1)) as candidate:
        code, report = await shadow(
            make_capture(tmp_path / "gate.db"), baseline, candidate, "--config", gate, *reports
        )
    assert code == 1 and report["verdict"] == "divergent"
    assert report["timing"]["mode"] == "gate" and report["differences"] == []
    assert [f["event"] for f in report["timing"]["findings"]] == ["data"]
    assert "timing /shop data" in capsys.readouterr().out
    page = files["html"].read_text()
    section = page[page.index('<section id="timing-events">') :]
    section = section[: section.index("</section>")]
    assert "timing /shop data" in section and section.count("<svg") == 1
    assert "1 timing finding (gating)" in section and "http://" not in section.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "timing /shop data" in files["md"].read_text()
    xml = files["xml"].read_text()
    assert '<testsuite name="timing" tests="1" failures="1"' in xml


async def test_an_unknown_timing_mode_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = config(tmp_path, '[verdict]\ntiming = "fail"\n')
    code = await asyncio.to_thread(
        main, ["shadow", str(make_capture(tmp_path / "bad.db")), "--baseline", "ws://127.0.0.1:9",
               "--candidate", "ws://127.0.0.1:9", "--config", bad],
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "[verdict].timing" in err and err.count("\n") == 1


class Counting(Shop):
    def __init__(self) -> None:
        super().__init__()
        self.connections = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        await super().handler(ws)


async def test_replay_warmup_replays_the_first_sessions_unrecorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = Counting()
    capture = make_capture(tmp_path / "warm.db")
    async with server(shop) as target:
        code = await asyncio.to_thread(
            main, ["replay", str(capture), "--target", target, "--warmup", "3", "--run", "w",
                   "--idle-timeout", IDLE],
        )  # fmt: skip
    assert code == 0 and shop.connections == SESSIONS + 3
    with CaptureStore.open(capture) as store:
        assert store.count_sessions("w") == SESSIONS
        assert [r.name for r in store.runs()] == ["w"]
        assert store.get_run("w").settings["warmup"] == 3  # type: ignore[union-attr]
    capsys.readouterr()


async def test_a_negative_warmup_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = make_capture(tmp_path / "neg.db")
    code = await asyncio.to_thread(
        main, ["replay", str(capture), "--target", "ws://127.0.0.1:9", "--warmup", "-1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "warmup" in err and err.count("\n") == 1
