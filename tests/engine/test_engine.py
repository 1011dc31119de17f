"""The replay engine against real WebSocket servers on 127.0.0.1 (port 0)."""

# ruff: noqa: F811  (the capture fixture is imported, then used as a parameter)

from __future__ import annotations

import asyncio
import gc
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from tests.engine.engine_helpers import capture, conversation  # noqa: F401
from tests.timeouts import scaled
from wsshadow.replay.capture.model import Close, Closer, Direction, Message
from wsshadow.replay.diff.normalize import unnumbered
from wsshadow.replay.engine.pacing import Pace
from wsshadow.replay.engine.run import (
    ReplayObserver,
    ReplayOptions,
    replay_capture,
    select_sessions,
)
from wsshadow.replay.engine.targets import parse_route_map
from wsshadow.replay.errors import BadInput

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def ws_server(handler: Handler, **kwargs: object) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def server_texts(session_messages: tuple[Message, ...]) -> list[object]:
    return [json.loads(m.payload) for m in session_messages if m.direction is Direction.SERVER]


# ---- causal pacing vs asap ---------------------------------------------------------------


async def random_delay_answers(ws: ServerConnection) -> None:
    """Answers each question after a random delay, concurrently: order depends on pacing."""
    rng = random.Random(7)
    pending: set[asyncio.Task[None]] = set()

    async def answer(n: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "answer", "n": n}))

    async for raw in ws:
        n = json.loads(raw)["n"]
        task = asyncio.create_task(answer(n, rng.uniform(0.0, 0.04)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    for task in pending:
        task.cancel()


async def test_causal_reproduces_the_conversation_that_asap_misorders(capture) -> None:
    _path, store = capture
    turns: list[tuple[str, object]] = []
    for n in range(8):
        turns += [("client", {"type": "ask", "n": n}), ("server", {"type": "answer", "n": n})]
    recorded = conversation("conv", turns)
    store.put_session(recorded)
    async with ws_server(random_delay_answers) as url:
        causal = await replay_capture(store, ReplayOptions(url, idle_timeout=0.3), run="causal")
        asap = await replay_capture(
            store, ReplayOptions(url, pace=Pace.ASAP, idle_timeout=0.3), run="asap"
        )
    assert causal.completed == 1 and asap.completed == 1
    expected = server_texts(recorded.messages)
    assert server_texts(store.get_session("causal:conv").messages) == expected
    got_asap = server_texts(store.get_session("asap:conv").messages)
    assert sorted(got_asap, key=lambda d: d["n"]) == expected  # same answers ...
    assert got_asap != expected  # ... in another order


# ---- state carry-over -------------------------------------------------------------------------


async def thread_server(ws: ServerConnection) -> None:
    """Issues a fresh thread id in its welcome and refuses messages for any other thread."""
    thread = f"thr_{random.randrange(16**8):08x}"
    await ws.send(json.dumps({"type": "welcome", "data": {"thread_id": thread}}))
    async for raw in ws:
        msg = json.loads(raw)
        if msg.get("thread_id") != thread:
            await ws.send(json.dumps({"type": "error", "reason": "unknown thread"}))
            await ws.close(4004, "unknown thread")
            return
        await ws.send(json.dumps({"type": "said", "text": msg["text"]}))


async def test_thread_id_issued_by_the_server_is_carried_over(capture) -> None:
    _path, store = capture
    old = "thr_0000dead"
    store.put_session(
        conversation(
            "t1",
            [
                ("server", {"type": "welcome", "data": {"thread_id": old}}),
                ("client", {"type": "say", "thread_id": old, "text": "one"}),
                ("server", {"type": "said", "text": "one"}),
                ("client", {"type": "say", "thread_id": old, "text": "two"}),
                ("server", {"type": "said", "text": "two"}),
            ],
        )
    )
    async with ws_server(thread_server) as url:
        on = await replay_capture(store, ReplayOptions(url, idle_timeout=0.3), run="on")
        off = await replay_capture(
            store, ReplayOptions(url, idle_timeout=0.3, carry_over=False), run="off"
        )
    assert [d["type"] for d in server_texts(store.get_session("on:t1").messages)] == [
        "welcome",
        "said",
        "said",
    ]
    assert on.outcomes[0].close == Close(1000, "", Closer.CLIENT, t=on.outcomes[0].close.t)
    off_session = store.get_session("off:t1")
    assert [d["type"] for d in server_texts(off_session.messages)] == ["welcome", "error"]
    assert off_session.close is not None and off_session.close.by is Closer.SERVER
    assert off_session.close.code == 4004 and off.outcomes[0].connected


# ---- credentials -----------------------------------------------------------------------------


async def test_redacted_authorization_is_replayed_with_the_given_credential(capture) -> None:
    path, store = capture
    seen: list[str | None] = []

    def check(conn: ServerConnection, request: Request) -> None:
        seen.append(request.headers.get("Authorization"))

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    store.put_session(
        conversation(
            "auth",
            [("client", {"type": "hi"}), ("server", {"type": "hi"})],
            headers=(("Authorization", "Bearer recorded-secret"), ("X-Trace", "abc")),
        )
    )
    stored = store.get_session("auth")
    assert (
        unnumbered(stored.handshake.request_header("Authorization"))
        == "${redacted:header:authorization}"
    )
    async with ws_server(echo, process_request=check) as url:
        missing = await replay_capture(store, ReplayOptions(url, env={}), run="missing")
        ok = await replay_capture(
            store,
            ReplayOptions(
                url, credentials={"authorization": "Bearer ${TOKEN}"}, env={"TOKEN": "fresh-1"}
            ),
            run="ok",
        )
    # the session without a credential failed before connecting, naming the placeholder
    assert not missing.outcomes[0].connected
    assert "${redacted:header:authorization}" in unnumbered(missing.outcomes[0].error or "")
    assert seen == ["Bearer fresh-1"]
    assert ok.completed == 1
    # the fresh credential is redacted again in the stored replay
    replayed = store.get_session("ok:auth")
    assert (
        unnumbered(replayed.handshake.request_header("Authorization"))
        == "${redacted:header:authorization}"
    )
    assert replayed.handshake.request_header("X-Trace") == "abc"
    store.close()
    assert b"fresh-1" not in path.read_bytes()


# ---- scale, maps, refusals, concurrency on one store ------------------------------------------


async def test_200_sessions_at_concurrency_50_all_complete(capture) -> None:
    _path, store = capture
    live = 0
    peak = 0

    async def echo(ws: ServerConnection) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        try:
            async for raw in ws:
                await ws.send(raw)
        finally:
            live -= 1

    sessions = [
        conversation(
            f"s{i:03d}",
            [
                t
                for n in range(3)
                for t in (("client", {"i": i, "n": n}), ("server", {"i": i, "n": n}))
            ],
            started_at=1_700_000_000.0 + i,
        )
        for i in range(200)
    ]
    store.put_sessions(sessions)
    async with ws_server(echo) as url:
        result = await replay_capture(store, ReplayOptions(url, concurrency=50), run="big")
    assert result.sessions == 200 and result.completed == 200 and result.errors == 0
    assert result.messages_sent == 600 and result.messages_received == 600
    assert 1 < peak <= 50
    assert store.count_sessions("big") == 200
    run = store.get_run("big")
    assert run is not None and run.sessions == 200 and run.errors == 0
    assert run.ended_at is not None and run.started_at is not None
    assert run.settings["concurrency"] == 50
    replayed = store.get_session("big:s123")
    assert replayed.provenance.origin == "s123" and replayed.provenance.run == "big"
    assert server_texts(replayed.messages) == server_texts(sessions[123].messages)


async def test_route_map_refused_handshake_and_concurrent_runs_on_one_store(capture) -> None:
    _path, store = capture
    paths: list[str] = []

    def route(conn: ServerConnection, request: Request) -> Response | None:
        paths.append(request.path)
        if "mode=factory" not in request.path:
            return conn.respond(403, "forbidden\n")
        return None

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    store.put_sessions(
        conversation(
            f"f{i}",
            [("client", {"n": i}), ("server", {"n": i})],
            route="/ws/factory",
            query="user=u",
        )
        for i in range(5)
    )
    maps = (parse_route_map("/ws/factory=/ws?mode=factory"),)
    thresholds = []

    class Watch(ReplayObserver):
        def session_finished(self, outcome: object) -> None:
            thresholds.append(gc.get_threshold()[0])

    before = gc.get_threshold()
    async with ws_server(echo, process_request=route) as url:
        mapped, unmapped = await asyncio.gather(
            replay_capture(store, ReplayOptions(url, maps=maps), run="mapped", progress=Watch()),
            replay_capture(store, ReplayOptions(url), run="unmapped"),
        )
    # Young collections are rarer while replays run, and as before once the last ended.
    assert thresholds and set(thresholds) == {10_000}
    assert gc.get_threshold() == before
    assert mapped.completed == 5
    assert "/ws?user=u&mode=factory" in paths
    assert unmapped.unreachable and unmapped.errors == 5
    refused = store.get_session("unmapped:f0")
    assert refused.handshake.status == 403
    assert refused.close is not None and refused.close.error == "handshake refused: HTTP 403"
    assert store.get_session("mapped:f0").handshake.route == "/ws"
    assert store.get_session("mapped:f0").handshake.query == "user=u&mode=factory"
    assert store.count_sessions("mapped") == 5 and store.count_sessions("unmapped") == 5


async def test_down_target_gives_per_session_errors(capture) -> None:
    _path, store = capture
    store.put_sessions(conversation(f"d{i}", [("client", {"n": i})]) for i in range(3))
    async with ws_server(lambda ws: ws.wait_closed()) as url:
        pass  # the port is free again: nothing listens there now
    result = await replay_capture(store, ReplayOptions(url, open_timeout=scaled(2)), run="down")
    assert result.unreachable and result.errors == 3
    assert all((o.error or "").startswith("unreachable") for o in result.outcomes)
    assert store.count_sessions("down") == 3


async def test_selection_by_id_route_and_shard(capture) -> None:
    _path, store = capture
    store.put_sessions(
        conversation(f"x{i:02d}", [("client", "hi")], route="/a" if i % 2 else "/b", started_at=i)
        for i in range(30)
    )
    shards = [
        {s.id for s in select_sessions(store, ReplayOptions("ws://h:1", shard=(i, 3)))}
        for i in range(3)
    ]
    assert set().union(*shards) == {f"x{i:02d}" for i in range(30)}
    assert sum(len(s) for s in shards) == 30 and all(shards)
    picked = select_sessions(
        store, ReplayOptions("ws://h:1", routes=("/a",), session_ids=("x01", "x02"))
    )
    assert [s.id for s in picked] == ["x01"]
    with pytest.raises(BadInput):
        select_sessions(store, ReplayOptions("ws://h:1", session_ids=("nope",)))
    with pytest.raises(BadInput):
        await replay_capture(store, ReplayOptions("ws://h:1", routes=("/zzz",)), run="r")


async def test_follow_observer_pairs_live_and_recorded_messages(capture) -> None:
    _path, store = capture
    store.put_session(
        conversation(
            "f",
            [
                ("client", {"q": 1}),
                ("server", {"a": 1}),
                ("client", {"q": 2}),
                ("server", {"a": 2}),
            ],
        )
    )
    pairs: list[tuple[str, str, str | None]] = []

    class Watch(ReplayObserver):
        def message(self, origin: str, replayed: Message, recorded: Message | None) -> None:
            pairs.append(
                (
                    replayed.direction.value,
                    str(replayed.payload),
                    recorded and str(recorded.payload),
                )
            )

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw.replace("q", "a"))

    async with ws_server(echo) as url:
        await replay_capture(store, ReplayOptions(url, follow=True), run="f", progress=Watch())
    assert pairs == [
        ("client", '{"q": 1}', '{"q": 1}'),
        ("server", '{"a": 1}', '{"a": 1}'),
        ("client", '{"q": 2}', '{"q": 2}'),
        ("server", '{"a": 2}', '{"a": 2}'),
    ]


async def test_run_names_must_be_new(capture) -> None:
    _path, store = capture
    store.put_session(conversation("a", [("client", "x")]))
    async with ws_server(lambda ws: ws.wait_closed()) as url:
        await replay_capture(store, ReplayOptions(url, idle_timeout=0.1), run="once")
        with pytest.raises(BadInput, match="exists already"):
            await replay_capture(store, ReplayOptions(url), run="once")


def test_options_reject_nonsense() -> None:
    for kwargs in ({"concurrency": 0}, {"rate": -1}, {"shard": (3, 3)}, {"speed": 0}):
        with pytest.raises(BadInput):
            ReplayOptions("ws://h:1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        ReplayOptions("http:/nohost")


async def test_wss_target_verified_with_a_private_ca(capture, tmp_path) -> None:
    import ssl

    import trustme

    _path, store = capture
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    store.put_session(conversation("tls", [("client", {"n": 1}), ("server", {"n": 1})]))

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    async with ws_server(echo, ssl=server_ctx) as url:
        wss = url.replace("ws://", "wss://")
        trusted = await replay_capture(store, ReplayOptions(wss, ca=ca_file), run="trusted")
        untrusted = await replay_capture(store, ReplayOptions(wss), run="untrusted")
    assert trusted.completed == 1
    assert server_texts(store.get_session("trusted:tls").messages) == [{"n": 1}]
    assert untrusted.unreachable and "CERTIFICATE_VERIFY_FAILED" in (untrusted.first_error() or "")
    with pytest.raises(BadInput, match="--ca"):
        await replay_capture(store, ReplayOptions(wss, ca=tmp_path / "missing.pem"), run="bad")


async def test_recorded_pace_starts_sessions_at_recorded_offsets_and_rate_limits(capture) -> None:
    _path, store = capture
    store.put_sessions(
        conversation(
            f"o{i}", [("client", {"n": i}), ("server", {"n": i})], started_at=100.0 + 0.4 * i
        )
        for i in range(3)
    )

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    async with ws_server(echo) as url:
        await replay_capture(store, ReplayOptions(url, pace=Pace.RECORDED, speed=2.0), run="rec")
        await replay_capture(store, ReplayOptions(url, rate=5.0), run="rate")
    rec = [store.get_session(f"rec:o{i}").started_at for i in range(3)]
    # recorded 0.4 s apart, at speed 2: about 0.2 s apart
    assert 0.15 <= rec[1] - rec[0] <= 0.6 and 0.35 <= rec[2] - rec[0] <= 0.9
    rate = [store.get_session(f"rate:o{i}").started_at for i in range(3)]
    assert rate[2] - rate[0] >= 0.35  # 5 sessions/s: the third starts 0.4 s after the first


async def test_cancelling_a_run_closes_connections_and_finishes_the_run_row(capture) -> None:
    _path, store = capture
    store.put_sessions(
        conversation(f"c{i}", [("server", {"hello": i}), ("client", {"n": i})]) for i in range(4)
    )
    closed = 0

    async def silent(ws: ServerConnection) -> None:
        nonlocal closed
        await ws.wait_closed()  # never says hello: causal pacing waits
        closed += 1

    async with ws_server(silent) as url:
        task = asyncio.create_task(
            replay_capture(store, ReplayOptions(url, causal_timeout=30), run="cut")
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
    assert closed == 4
    run = store.get_run("cut")
    assert run is not None and run.ended_at is not None


async def test_header_override_replaces_or_drops_recorded_headers(capture) -> None:
    _path, store = capture
    seen: list[dict[str, str | None]] = []

    def check(conn: ServerConnection, request: Request) -> None:
        h = request.headers
        seen.append({k: h.get(k) for k in ("Cookie", "X-Shadow", "User-Agent", "X-Keep")})

    async def echo(ws: ServerConnection) -> None:
        async for raw in ws:
            await ws.send(raw)

    store.put_session(
        conversation(
            "h",
            [("client", {"n": 1}), ("server", {"n": 1})],
            headers=(
                ("Cookie", "sid=secret"),
                ("User-Agent", "browser/1"),
                ("X-Keep", "yes"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "abc"),
            ),
        )
    )
    options = ReplayOptions("ws://127.0.0.1:1", headers=(("Cookie", ""), ("X-Shadow", "1")))
    async with ws_server(echo, process_request=check) as url:
        result = await replay_capture(store, replace(options, target=url), run="h")
    assert result.completed == 1
    assert seen == [{"Cookie": None, "X-Shadow": "1", "User-Agent": "browser/1", "X-Keep": "yes"}]
