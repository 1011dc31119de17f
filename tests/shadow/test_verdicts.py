"""Verdicts that are earned: real servers on loopback where a hollow "equivalent" used to hide.

(a) a game whose second player joins with a code the server issued to the
first player's connection: the replay cannot reproduce it, so the verdict is
inconclusive (exit 3) with the cause; (b) a JSON-RPC-like server answering
pipelined requests in completion order: a constant changed in one method is
found by the alignment-free field checks; (c) a text protocol whose every
payload carries a volatile id: never equivalent.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
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

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def session(sid: str, route: str, frames: list[tuple[str, str]], t0: float = 0.0) -> Session:
    msgs = tuple(
        Message(i, t0 + i * 0.01, Direction(d), Opcode.TEXT, text)
        for i, (d, text) in enumerate(frames)
    )
    return Session(
        sid, 1000.0, Handshake(route), msgs, Close(1000, "", Closer.CLIENT, t=len(msgs) * 0.01),
        Provenance(),
    )  # fmt: skip


def store_capture(path: Path, sessions: list[Session]) -> Path:
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(sessions)
    return path


async def shadow(capture: Path, baseline: str, candidate: str, *extra: str) -> int:
    args = ["shadow", str(capture), "--baseline", baseline, "--candidate", candidate, *extra]
    return await asyncio.to_thread(main, args)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Short waits (the servers answer in milliseconds), no timing differences."""
    path = tmp_path / "wsshadow.toml"
    path.write_text(
        f"[replay]\ncausal_timeout = {scaled(1.0)}\nidle_timeout = {scaled(0.5)}\n"
        "[diff.timing]\nfloor_ms = 60000\n"
    )
    return path


def J(value: Any) -> str:
    return json.dumps(value)


# ---- (a) a game: the second player joins with a code issued to the first -----------


def game_handler() -> Handler:
    games: dict[str, list[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        game: list[ServerConnection] | None = None
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "create":
                code = secrets.token_hex(3).upper()
                game = games[code] = [ws]
                await ws.send(J({"type": "created", "code": code}))
            elif msg["type"] == "join":
                game = games.get(msg["code"])
                if game is None:
                    await ws.send(J({"type": "error", "message": "Game not found."}))
                    continue
                game.append(ws)
                await ws.send(J({"type": "joined"}))
            elif msg["type"] == "move":
                if game is None:
                    await ws.send(J({"type": "error", "message": "Game not found."}))
                    continue
                event = {"type": "win"} if msg["n"] == 4 else {"type": "play", "n": msg["n"]}
                for peer in list(game):
                    await peer.send(J(event))

    return handler


def game_sessions() -> list[Session]:
    """Six recorded games: the host creates, the guest joins with the code and plays."""
    out = []
    for g in range(6):
        code = f"C{g:04X}"
        moves = [{"type": "play", "n": n} for n in (1, 2, 3)] + [{"type": "win"}]
        host = [("client", J({"type": "create"})), ("server", J({"type": "created", "code": code}))]
        host += [("server", J(m)) for m in moves]
        guest = [("client", J({"type": "join", "code": code})), ("server", J({"type": "joined"}))]
        for n, m in zip((1, 2, 3, 4), moves, strict=True):
            guest += [("client", J({"type": "move", "n": n})), ("server", J(m))]
        out += [session(f"g{g}-host", "/game", host), session(f"g{g}-guest", "/game", guest)]
    return out


async def test_unreproducible_sessions_are_inconclusive_with_the_cause(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = store_capture(tmp_path / "game.db", game_sessions())
    report_path = tmp_path / "report.json"
    async with server(game_handler()) as url:
        code = await shadow(
            capture, url, url, "--config", str(config), "--report", str(report_path),
            "--report", str(tmp_path / "report.md"), "--report", str(tmp_path / "junit.xml"),
            "--report", str(tmp_path / "report.html"),
        )  # fmt: skip
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert code == 3, out
    assert report["schema_version"] == 2 and report["verdict"] == "inconclusive"
    assert report["differences"] == []
    fidelity = report["fidelity"]
    assert fidelity["measured"] is True
    assert fidelity["sessions"]["unreproduced"] == 12 and fidelity["sessions"]["reproduced"] == 0
    causes = [c["cause"] for c in fidelity["causes"]]
    # (a loaded machine may add "; causal wait timed out ..." to a cause)
    assert any(
        c.startswith(
            'baseline answered error "Game not found." (x5) where the recording had '
            "play (x3), joined, win"
        )
        for c in causes
    ), causes
    assert any(c.startswith("baseline did not send play (x3), win") for c in causes), causes
    guest = next(d for d in report["session_details"] if d["session"] == "g0-guest")
    assert guest["reproduced"] == round(1 / 6, 4)  # 5 server events and the close: the close
    assert guest["cause"].startswith('baseline answered error "Game not found."')
    # the reasons come first in every format
    assert out.startswith("INCONCLUSIVE")
    assert out.splitlines()[1].lstrip().startswith("12 of 12 sessions not reproduced")
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("### ⚠️ wsshadow: inconclusive") and "12 of 12 sessions" in md
    junit = (tmp_path / "junit.xml").read_text()
    assert "not reproduced" in junit and 'name="verdict"' in junit
    assert "inconclusive" in (tmp_path / "report.html").read_text()


# ---- (b) JSON-RPC-like answers in completion order ---------------------------------

METHODS = ("price", "rate", "echo")


def rpc_handler(currency: str = "USD") -> Handler:
    async def answer(ws: ServerConnection, req: dict[str, Any]) -> None:
        await asyncio.sleep(random.uniform(0, 0.02))
        method, n = req["method"], req["params"]["n"]
        if method == "price":
            result: dict[str, Any] = {"amount": 10 * n, "currency": currency}
        elif method == "rate":
            result = {"value": n / 4, "unit": "pct"}
        else:
            result = {"text": f"echo {n}"}
        await ws.send(J({"jsonrpc": "2.0", "id": req["id"], "result": result}))

    async def handler(ws: ServerConnection) -> None:
        tasks = set()
        async for raw in ws:
            task = asyncio.create_task(answer(ws, json.loads(raw)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    return handler


def rpc_sessions() -> list[Session]:
    out = []
    for s in range(12):
        requests = [
            {"jsonrpc": "2.0", "id": i + 1, "method": METHODS[i % 3], "params": {"n": i + s}}
            for i in range(6)
        ]
        frames = [("client", J(r)) for r in requests]
        for r in requests:  # as recorded: in request order
            n = r["params"]["n"]
            result = {
                "price": {"amount": 10 * n, "currency": "USD"},
                "rate": {"value": n / 4, "unit": "pct"},
                "echo": {"text": f"echo {n}"},
            }[r["method"]]
            frames.append(("server", J({"jsonrpc": "2.0", "id": r["id"], "result": result})))
        out.append(session(f"rpc{s:02}", "/rpc", frames))
    return out


async def test_a_changed_constant_behind_out_of_order_replies_is_divergent(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = store_capture(tmp_path / "rpc.db", rpc_sessions())
    async with server(rpc_handler()) as legacy, server(rpc_handler("EUR")) as rewrite:
        code = await shadow(capture, legacy, rewrite, "--config", str(config), "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["verdict"] == "divergent"
    # by position (replies correlated by id, #17) or by the field checks (#15)
    found = [d for d in report["differences"] if (d["path"] or "").endswith("currency")]
    assert found, [d["signature"] for d in report["differences"]]
    assert "EUR" in json.dumps(found[0]["examples"]) and "USD" in json.dumps(found[0]["examples"])
    assert report["fidelity"]["sessions"]["unreproduced"] == 0


async def test_identical_out_of_order_servers_show_no_difference(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = store_capture(tmp_path / "rpc.db", rpc_sessions())
    async with server(rpc_handler()) as legacy, server(rpc_handler()) as rewrite:
        code = await shadow(capture, legacy, rewrite, "--config", str(config), "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert report["differences"] == [], [d["signature"] for d in report["differences"]]
    # replies correlated by id (#17): equivalent; positional noise would make it inconclusive
    assert (code, report["verdict"]) in ((0, "equivalent"), (3, "inconclusive"))


# ---- (c) a text protocol whose every payload carries a volatile id ------------------


def text_handler(extra: str = "") -> Handler:
    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(f"{random.randrange(10**5, 10**6)}|ack|{raw}{extra}")

    return handler


def text_sessions() -> list[Session]:
    out = []
    for s in range(10):
        frames: list[tuple[str, str]] = []
        for i in range(4):
            frames += [("client", f"say {s} {i}"), ("server", f"{123456 + i}|ack|say {s} {i}")]
        out.append(session(f"txt{s}", "/txt", frames))
    return out


@pytest.mark.parametrize("extra", ["", "|v2"])
async def test_volatile_ids_in_whole_text_payloads_are_never_equivalent(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str], extra: str
) -> None:
    capture = store_capture(tmp_path / "txt.db", text_sessions())
    async with server(text_handler()) as legacy, server(text_handler(extra)) as rewrite:
        code = await shadow(capture, legacy, rewrite, "--config", str(config), "--format", "json")
    report = json.loads(capsys.readouterr().out)
    sigs = [d["signature"] for d in report["differences"]]
    assert report["verdict"] != "equivalent"
    route = next(r for r in report["fidelity"]["routes"] if r["route"] == "/txt")
    if extra:  # the text changed beyond its tokens: a difference, never noise
        assert (code, report["verdict"]) == (1, "divergent") and "changed_value /txt -" in sigs
    else:  # an identical server: the id token is noise, the rest compared; no false alarm
        assert (code, report["verdict"], sigs) == (3, "inconclusive", [])
        assert "changed_value /txt - <number>1" in [n["signature"] for n in report["noise"]]
        assert route["comparable"] is False and "suppressed as noise" in route["reason"]
        assert report["fidelity"]["sessions"]["unreproduced"] == 0


# ---- causal waits that time out are visible ----------------------------------------


def first_answer_only() -> Handler:
    async def handler(ws: ServerConnection) -> None:
        answered = False
        async for _ in ws:
            if not answered:
                await ws.send(J({"type": "answer"}))
                answered = True

    return handler


async def test_timed_out_causal_waits_are_counted_and_named(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames: list[tuple[str, str]] = []
    for n in range(3):
        frames += [("client", J({"type": "ask", "n": n})), ("server", J({"type": "answer"}))]
    capture = store_capture(tmp_path / "waits.db", [session("w", "/ask", frames)])
    async with server(first_answer_only()) as url:
        code = await asyncio.to_thread(
            main, ["replay", str(capture), "--target", url, "--config", str(config)]
        )
        out = capsys.readouterr().out
        assert code == 0
        assert re.search(
            r"causal waits timed out 1 time in 1 session: \d+\.\d s lost waiting for "
            "server messages that never came",
            out,
        ), out
        code = await shadow(capture, url, url, "--config", str(config), "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 3 and report["verdict"] == "inconclusive"
    [cause] = report["fidelity"]["causes"]
    assert cause["cause"] == (
        "baseline did not send answer (x2); causal wait timed out once awaiting answer"
    )


# ---- replay --follow aligns like the diff ------------------------------------------


def skips_b() -> Handler:
    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            kind = json.loads(raw)["want"]
            if kind != "b":
                await ws.send(J({"type": kind, "v": 1}))

    return handler


async def test_follow_pairs_by_event_key_and_lists_what_never_came(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames: list[tuple[str, str]] = []
    for kind in "abcd":
        frames += [("client", J({"want": kind})), ("server", J({"type": kind, "v": 1}))]
    capture = store_capture(tmp_path / "follow.db", [session("f", "/f", frames)])
    async with server(skips_b()) as url:
        code = await asyncio.to_thread(
            main,
            ["replay", str(capture), "--target", url, "--session", "f", "--follow",
             "--config", str(config)],
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    received = [line for line in out.splitlines() if "←" in line and "never" not in line]
    assert len(received) == 3 and all(" = " in line for line in received), out
    [never] = [line for line in out.splitlines() if "(never received)" in line]
    assert '"type": "b"' in never and " - " in never
    assert re.search(r"waited \d+\.\d s for 1 message that never came", out), out
    assert "aligned as the diff aligns them: 3 equal, 1 missing" in out
