"""Dialects end to end: real clients recorded through the proxy against real server
libraries, then shadow-replayed to an identical server, one with a field changed inside the
framed payload, and one answering in another order.

Socket.IO: python-socketio (server and client). GraphQL over WebSocket: strawberry-graphql
(both graphql-transport-ws and subscriptions-transport-ws). JSON-RPC 2.0: jsonrpcserver.
MQTT: the mosquitto broker with its WebSocket listener and the paho-mqtt client. STOMP,
Phoenix, SignalR and ActionCable have no server in the package registries used here: their
tests are spec-derived (tests/diff/dialects).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import socketio
from aiohttp import web
from strawberry import type as strawberry_type
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.shadow.dialect_kit import (
    free_port,
    record,
    serving_aiohttp,
    serving_asgi,
    shadow,
    signatures,
)
from tests.timeouts import scaled
from wsshadow.replay.capture.model import Direction, Session
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, TimingConfig
from wsshadow.replay.diff.dialects.mqtt import Mqtt

pytestmark = pytest.mark.slow

SLOW_OK = DiffConfig(timing=TimingConfig(floor_ms=60_000))
"""The answers held back to change their order are slower: that is not what is tested."""


# ---- Socket.IO ---------------------------------------------------------------------


Server = Callable[[str], AbstractAsyncContextManager[str]]  # variant -> a server, its URL


async def record_then_shadow(
    tmp_path: Path,
    server: Server,
    client: Callable[[str], Awaitable[None]],
    route: str,
    dialect: str,
    changed: str,
) -> None:
    """Record ``client`` against the ``same`` server, then shadow it: an identical server is
    equivalent (the route detected as ``dialect``), the ``changed`` one differs by exactly
    the signature ``changed``, and the ``swapped`` one (replies in another order) is
    equivalent."""
    capture = tmp_path / "capture.db"
    async with server("same") as legacy:
        await record(legacy, capture, client)
        async with server("same") as same:
            report = await shadow(capture, legacy, same)
        assert report["verdict"] == "equivalent", signatures(report)
        assert report["dialects"] == {route: [dialect]}
        async with server("changed") as other:
            report = await shadow(capture, legacy, other)
        assert signatures(report) == [changed]
        async with server("swapped") as swapped:
            report = await shadow(capture, legacy, swapped, SLOW_OK)
        assert report["verdict"] == "equivalent", signatures(report)


@asynccontextmanager
async def socketio_server(variant: str = "same") -> AsyncIterator[str]:
    """A python-socketio chat: ``changed`` reports another count, ``swapped`` acks the
    first emit last."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("join")
    async def join(sid: str, data: dict) -> None:
        count = 2 if variant == "changed" else 1
        await sio.emit("joined", {"room": data["room"], "count": count, "sid": sid}, to=sid)

    @sio.on("chat")
    async def chat(sid: str, data: dict) -> dict:
        if variant == "swapped" and data["n"] == 1:
            await asyncio.sleep(0.3)
        return {"ok": True, "echo": data["text"], "n": data["n"]}

    async with serving_aiohttp(app) as url:
        yield url


async def socketio_client(url: str, transports: tuple[str, ...] = ("websocket",)) -> None:
    client = socketio.AsyncClient()
    acked: list[object] = []
    await client.connect(url.replace("ws://", "http://"), transports=list(transports))
    await client.emit("join", {"room": "lobby"})
    await asyncio.sleep(0.1)
    await client.emit("chat", {"text": "hi", "n": 1}, callback=acked.append)
    await client.emit("chat", {"text": "yo", "n": 2}, callback=acked.append)
    while len(acked) < 2:
        await asyncio.sleep(0.02)
    await client.disconnect()


async def test_socketio(tmp_path: Path) -> None:
    await record_then_shadow(
        tmp_path, socketio_server, socketio_client, "/socket.io/", "socketio",
        "changed_value /socket.io/ joined count",
    )  # fmt: skip


async def test_socketio_upgraded_from_long_polling(tmp_path: Path) -> None:
    """The client opens with polling and upgrades; the replay gets a fresh sid the same way."""
    capture = tmp_path / "capture.db"

    async def client(url: str) -> None:
        await socketio_client(url, ("polling", "websocket"))

    async with socketio_server() as legacy:
        await record(legacy, capture, client)
        with CaptureStore.open(capture) as store:
            [recorded] = list(store.iter_sessions())
        assert "sid=" in recorded.handshake.query
        assert [m.payload for m in recorded.messages][:1] == ["2probe"]
        async with socketio_server() as same:
            report = await shadow(capture, legacy, same)
        assert signatures(report) == [] and report["sessions"]["errored"] == 0
        # The replay of an upgraded session gets connect_error where the recording had
        # connect: fidelity (#15) says so instead of calling it equivalent.
        if report["verdict"] != "equivalent":
            assert report["verdict"] == "inconclusive"
            [cause] = report["fidelity"]["causes"]
            assert "connect_error" in cause["cause"], cause
        async with socketio_server("changed") as changed:
            report = await shadow(capture, legacy, changed, credentials=CREDENTIALS)
        assert signatures(report) == ["changed_value /socket.io/ joined count"]


# ---- GraphQL over WebSocket (strawberry) ---------------------------------------------


@asynccontextmanager
async def graphql_server(variant: str = "same") -> AsyncIterator[str]:
    """A strawberry schema with subscriptions, on uvicorn; ``changed`` sends another
    text, ``swapped`` finishes the first operation last."""
    import strawberry
    from strawberry.asgi import GraphQL

    @strawberry.type
    class Query:
        @strawberry.field
        def version(self) -> str:
            return "1"

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def hello(self, name: str) -> AsyncIterator[str]:
            if variant == "swapped" and name == "first":
                await asyncio.sleep(0.3)
            yield f"hello {name}"

        @strawberry.subscription
        async def count(self, upto: int) -> AsyncIterator[Tick]:
            for i in range(upto):
                yield Tick(n=i, text="tick" if variant != "changed" or i < 1 else "tock")

    app = GraphQL(strawberry.Schema(query=Query, subscription=Subscription))
    async with serving_asgi(app) as url:
        yield url


@strawberry_type
class Tick:
    n: int
    text: str


def graphql_client(protocol: str) -> Callable[[str], Awaitable[None]]:
    """A client speaking ``protocol`` (graphql-transport-ws or graphql-ws): three
    subscriptions at once, waiting for every operation to complete."""
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    ops = {
        "1": {"query": 'subscription First { hello(name: "first") }'},
        "2": {"query": 'subscription Second { hello(name: "second") }'},
        "3": {"query": "subscription Count { count(upto: 3) { n text } }"},
    }

    async def client(url: str) -> None:
        async with connect(url + "/graphql", subprotocols=[Subprotocol(protocol)]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            while json.loads(await ws.recv())["type"] != "connection_ack":
                pass
            for op_id, payload in ops.items():
                await ws.send(json.dumps({"id": op_id, "type": start, "payload": payload}))
            done: set[str] = set()
            while len(done) < len(ops):
                msg = json.loads(await ws.recv())
                if msg["type"] == "complete":
                    done.add(msg["id"])
            if protocol == "graphql-ws":
                await ws.send(json.dumps({"type": "connection_terminate"}))

    return client


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_graphql(tmp_path: Path, protocol: str) -> None:
    await record_then_shadow(
        tmp_path, graphql_server, graphql_client(protocol), "/graphql", "graphql",
        "changed_value /graphql subscribe Count next data.count.text",
    )  # fmt: skip


# ---- JSON-RPC 2.0 (jsonrpcserver) -------------------------------------------------------


@asynccontextmanager
async def jsonrpc_server(variant: str = "same") -> AsyncIterator[str]:
    """jsonrpcserver's dispatcher behind a websockets server, each request answered as soon
    as it is done; ``changed`` computes another total, ``swapped`` answers the first last."""
    from jsonrpcserver import Result, Success, async_dispatch
    from websockets.asyncio.server import ServerConnection, serve

    async def add(a: int, b: int) -> Result:
        if variant == "swapped" and a == 1:
            await asyncio.sleep(0.3)
        total = a + b + (1 if variant == "changed" and a == 2 else 0)
        return Success({"total": total, "terms": [a, b]})

    async def handler(ws: ServerConnection) -> None:
        tasks: set[asyncio.Task[None]] = set()

        async def answer(raw: str) -> None:
            response = await async_dispatch(raw, methods={"add": add})
            if response:
                await ws.send(response)

        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "welcome", "params": {"v": 1}}))
        async for raw in ws:
            task = asyncio.create_task(answer(str(raw)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[index]


async def jsonrpc_client(url: str) -> None:
    async with connect(url + "/rpc") as ws:
        await ws.recv()
        for i, (a, b) in enumerate([(1, 2), (2, 3), (3, 4)], 1):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "add",
                                      "params": {"a": a, "b": b}}))  # fmt: skip
        for _ in range(3):
            await ws.recv()


async def test_jsonrpc(tmp_path: Path) -> None:
    await record_then_shadow(
        tmp_path, jsonrpc_server, jsonrpc_client, "/rpc", "jsonrpc",
        "changed_value /rpc add result total",
    )  # fmt: skip


# ---- MQTT (mosquitto and paho-mqtt) ---------------------------------------------------

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
MQTT_USER, MQTT_PASSWORD = "sensor", "s3cret-Pa55"
"""The brokers let only this user in: a replay's CONNECT must carry the password."""


@asynccontextmanager
async def mqtt_broker(tmp_path: Path, status: dict[str, object]) -> AsyncIterator[str]:
    """A mosquitto broker reached over WebSocket, holding ``status`` as the retained message
    of ``sensors/status`` (published by a paho client before anyone subscribes).

    Debian's mosquitto is built without its WebSocket listener, so a bridge relays each
    WebSocket connection's binary messages to the broker's TCP port and back, byte for
    byte, as that listener would (MQTT over WebSocket is the TCP byte stream in binary
    messages). Only ``MQTT_USER`` with ``MQTT_PASSWORD`` may connect.
    """
    from websockets.asyncio.server import ServerConnection, serve

    port = free_port()
    passwords = tmp_path / f"mosquitto-{port}.passwd"
    made = await asyncio.create_subprocess_exec(
        MOSQUITTO_PASSWD, "-b", "-c", str(passwords), MQTT_USER, MQTT_PASSWORD,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await made.wait() == 0
    conf = tmp_path / f"mosquitto-{port}.conf"
    # As root, mosquitto becomes user mosquitto, who cannot read pytest's private tmp_path.
    conf.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\npersistence false\n"
    )
    proc = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip

    async def bridge(ws: ServerConnection) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def down() -> None:
            while data := await reader.read(65536):
                await ws.send(data)
            await ws.close()

        task = asyncio.create_task(down())
        try:
            async for message in ws:
                writer.write(message if isinstance(message, bytes) else message.encode())
                await writer.drain()
        finally:
            writer.close()
            await asyncio.gather(task, return_exceptions=True)

    def mqtt_only(connection: ServerConnection, offered: list[str]) -> str | None:
        return "mqtt" if "mqtt" in offered else None

    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        async with serve(bridge, "127.0.0.1", 0, select_subprotocol=mqtt_only) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[index]
            await asyncio.to_thread(_mqtt_session, url, [("sensors/status", status, True)], [])
            yield url
    finally:
        proc.terminate()
        await proc.wait()


def _mqtt_session(
    url: str, publish: list[tuple[str, object, bool]], subscribe: list[str], level: int = 4
) -> None:
    """A paho-mqtt client over WebSocket (MQTT 3.1.1, or 5.0 with ``level=5``), with a user
    name and password: subscribe, wait for the retained message, then publish at QoS 1 and
    wait for what it subscribed to to come back; disconnect."""
    import paho.mqtt.client as mqtt

    host, port = url.removeprefix("ws://").split(":")
    got: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rec-1",
                         transport="websockets",
                         protocol=mqtt.MQTTv5 if level == 5 else mqtt.MQTTv311)  # fmt: skip
    client.ws_set_options(path="/mqtt")
    client.username_pw_set(MQTT_USER, MQTT_PASSWORD)
    client.on_message = lambda _c, _u, msg: got.append(msg.topic)
    client.connect(host, int(port))
    client.loop_start()
    try:
        for topic in subscribe:
            client.subscribe(topic, qos=1)
        deadline = time.monotonic() + scaled(5)
        while subscribe and "sensors/status" not in got and time.monotonic() < deadline:
            time.sleep(0.01)
        for topic, payload, retain in publish:
            client.publish(topic, json.dumps(payload), qos=1, retain=retain).wait_for_publish(5)
        echoes = [t for t, _, _ in publish if any(_matches(f, t) for f in subscribe)]
        while subscribe and len(got) < 1 + len(echoes) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        client.disconnect()
        client.loop_stop()


CREDENTIALS = {"password": MQTT_PASSWORD}


def _matches(topic_filter: str, topic: str) -> bool:
    return topic == topic_filter or (
        topic_filter.endswith("#") and topic.startswith(topic_filter[:-1])
    )


@pytest.mark.parametrize("level", [4, 5], ids=["mqtt3.1.1", "mqtt5"])
async def test_mqtt(tmp_path: Path, level: int) -> None:
    """Broker-side differences come from the retained message each broker holds. (mosquitto
    answers in order; replies in another order are covered by tests/diff/dialects.) The
    baseline, noise and candidate runs go at once, the baseline and noise runs to one
    broker: each run's own client id keeps the broker from taking one run's session over
    for another's (sent as recorded, one of them was cut off). The password is redacted
    in the capture and filled again inside the CONNECT, whose lengths are encoded again
    (a broker that checks it refuses anything else). The session subscribes only
    to what no run publishes: runs that share a broker at once see each other's
    publications on the topics they subscribe to (docs/dialects.md)."""
    capture = tmp_path / "capture.db"

    async def client(url: str) -> None:
        await asyncio.to_thread(
            _mqtt_session, url, [("sensors/kitchen", {"temp": 21.5}, False)],
            ["sensors/status", "cmd/#"], level,
        )  # fmt: skip

    async with mqtt_broker(tmp_path, {"ok": True, "fw": 3}) as legacy:
        await record(legacy, capture, client)
        async with mqtt_broker(tmp_path, {"ok": True, "fw": 3}) as same:
            report = await shadow(capture, legacy, same, credentials=CREDENTIALS)
        assert report["verdict"] == "equivalent", signatures(report)
        assert report["dialects"] == {"/mqtt": ["mqtt"]}
        assert report["fidelity"]["sessions"]["reproduced"] == report["sessions"]["total"] == 1
        assert report["noise"] == [] and report["differences"] == []
        async with mqtt_broker(tmp_path, {"ok": True, "fw": 4}) as changed:
            report = await shadow(capture, legacy, changed, credentials=CREDENTIALS)
        assert signatures(report) == ["changed_value /mqtt PUBLISH sensors/status payload.fw"]
    with CaptureStore.open(capture) as store:
        sessions = list(store.iter_all_sessions())
    ids = [_client_id(session) for session in sessions]
    assert ids[0] == "rec-1" and len(set(ids)) == len(ids) == 7  # one per run: 1 + 2 x 3
    for session in sessions:  # none stores the password, every CONNECT a placeholder
        connect = next(m.payload for m in session.messages if m.direction is Direction.CLIENT)
        assert isinstance(connect, bytes) and connect.endswith(b"}")
        assert all(MQTT_PASSWORD.encode() not in m.payload for m in session.messages
                   if isinstance(m.payload, bytes))  # fmt: skip


def _client_id(session: Session) -> str:
    """The client id of the CONNECT a session opened with."""
    payload = next(m.payload for m in session.messages if m.direction is Direction.CLIENT)
    (connect, *_) = Mqtt().decode_message(Direction.CLIENT, payload)
    assert connect.key == "CONNECT", connect
    return str(connect.value["client_id"])
