"""A multi-user GraphQL chat on the real strawberry server (graphql-transport-ws, uvicorn).

Alice creates a room with a mutation sent over the WebSocket and gets a server-issued id;
Bob and Carol subscribe to the room's messages with that id (a GraphQL variable); Alice
posts, and every subscriber receives the message as a ``next`` of its subscription. Replayed
with ``shadow``, the three sessions form one scenario: an identical server is equivalent with
every recorded event reproduced, and a server that stops delivering to subscribers is
divergent, naming the subscription's event.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import strawberry
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.shadow.dialect_kit import recorded_capture, serving_asgi, shadow, signatures
from tests.timeouts import scaled
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import DiffConfig, TimingConfig
from wsshadow.replay.engine.scenarios import capture_links

pytestmark = pytest.mark.slow

NO_TIMING = DiffConfig(timing=TimingConfig(floor_ms=60_000))
PROTOCOL = Subprotocol("graphql-transport-ws")


@strawberry.type
class Line:
    author: str
    text: str


@asynccontextmanager
async def chat_server(*, deaf_subscribers: bool = False) -> AsyncIterator[str]:
    """Rooms with a server-issued id; a post reaches every subscriber of its room."""
    from strawberry.asgi import GraphQL

    rooms: dict[str, list[asyncio.Queue[Line]]] = {}

    @strawberry.type
    class Query:
        @strawberry.field
        def rooms(self) -> int:
            return len(rooms)

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def create_room(self) -> str:
            room = "room-" + secrets.token_hex(4).upper()
            rooms[room] = []
            return room

        @strawberry.mutation
        def post(self, room: str, author: str, text: str) -> int:
            line = Line(author=author, text=text)
            for queue in rooms.get(room, []):
                if not deaf_subscribers:
                    queue.put_nowait(line)
            return len(rooms.get(room, []))

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def lines(self, room: str, upto: int) -> AsyncIterator[Line]:
            queue: asyncio.Queue[Line] = asyncio.Queue()
            rooms.setdefault(room, []).append(queue)
            try:
                for _ in range(upto):
                    yield await queue.get()
            finally:
                rooms[room].remove(queue)

    schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
    async with serving_asgi(GraphQL(schema)) as url:
        yield url


async def _open(url: str) -> ClientConnection:
    ws = await connect(url + "/graphql", subprotocols=[PROTOCOL])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    while json.loads(await ws.recv())["type"] != "connection_ack":
        pass
    return ws


async def _until(ws: ClientConnection, op: str, kind: str) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), scaled(5.0)))
        if msg.get("id") == op and msg["type"] == kind:
            return msg


def _subscribe(op: str, query: str, variables: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    return json.dumps({"id": op, "type": "subscribe", "payload": payload})


LINES = (
    "subscription Lines($room: String!, $upto: Int!) "
    "{ lines(room: $room, upto: $upto) { author text } }"
)
POST = (
    "mutation Post($room: String!, $text: String!) "
    '{ post(room: $room, author: "alice", text: $text) }'
)


async def three_users(url: str, inline: bool = False) -> None:
    """Alice creates the room; Bob and Carol subscribe to two lines; Alice posts two.

    ``inline``: the subscribers write the room id into the query's text instead of passing
    it as a variable."""
    alice = await _open(url)
    await alice.send(_subscribe("create", "mutation Create { createRoom }"))
    room = (await _until(alice, "create", "next"))["payload"]["data"]["createRoom"]
    await _until(alice, "create", "complete")
    await asyncio.sleep(0.3)
    listeners = []
    for _name in ("bob", "carol"):
        ws = await _open(url)
        if inline:
            query = f'subscription Lines {{ lines(room: "{room}", upto: 2) {{ author text }} }}'
            await ws.send(_subscribe("lines", query))
        else:
            await ws.send(_subscribe("lines", LINES, {"room": room, "upto": 2}))
        listeners.append(ws)
        await asyncio.sleep(0.3)
    for n in range(2):
        await alice.send(_subscribe(f"post{n}", POST, {"room": room, "text": f"line {n}"}))
        await _until(alice, f"post{n}", "complete")
        for ws in listeners:
            await _until(ws, "lines", "next")
        await asyncio.sleep(0.3)
    for ws in listeners:
        await _until(ws, "lines", "complete")
        await ws.close()
    await alice.close()


@pytest.fixture(scope="module")
def chat_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    capture = tmp_path_factory.mktemp("graphql-room") / "room.db"
    return recorded_capture(capture, chat_server, three_users)


@pytest.fixture(scope="module")
def inline_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    capture = tmp_path_factory.mktemp("graphql-inline") / "room.db"
    return recorded_capture(capture, chat_server, lambda url: three_users(url, inline=True))


async def test_a_room_id_written_into_the_query_text_links_and_replays_too(
    inline_capture: Path,
) -> None:
    """The id inside ``lines(room: "room-…", upto: 2)`` is found in the longer string and
    replaced there by the id the replayed Alice received."""
    with CaptureStore.open(inline_capture, readonly=True) as store:
        graph = capture_links(store, DiffConfig().event_keys)
    assert [len(m) for m in graph.scenarios.values()] == [3]
    async with chat_server() as base, chat_server() as cand:
        report = await shadow(inline_capture, base, cand, NO_TIMING)
    assert report["verdict"] == "equivalent", signatures(report)
    assert report["fidelity"]["sessions"]["reproduced"] == 3


def test_the_room_is_one_scenario_linked_by_its_id(chat_capture: Path) -> None:
    with CaptureStore.open(chat_capture, readonly=True) as store:
        graph = capture_links(store, DiffConfig().event_keys)
    assert len(graph.scenarios) == 1
    (members,) = graph.scenarios.values()
    assert len(members) == 3
    values = {lk.value for lk in graph.links if lk.kind == "value"}
    assert len(values) == 1 and all(str(v).startswith("room-") for v in values)


async def test_an_identical_graphql_server_is_equivalent_with_everything_reproduced(
    chat_capture: Path,
) -> None:
    for _ in range(3):
        async with chat_server() as base, chat_server() as cand:
            report = await shadow(chat_capture, base, cand, NO_TIMING)
        assert report["verdict"] == "equivalent", signatures(report)
        fidelity = report["fidelity"]
        assert fidelity["sessions"] == {"total": 3, "reproduced": 3, "unreproduced": 0}
        assert fidelity["events"]["reproduced"] == fidelity["events"]["recorded"]


async def test_a_graphql_server_that_stops_delivering_to_subscribers_is_divergent(
    chat_capture: Path,
) -> None:
    async with chat_server() as base, chat_server(deaf_subscribers=True) as cand:
        report = await shadow(chat_capture, base, cand, NO_TIMING)
    assert report["verdict"] == "divergent"
    found = signatures(report)
    assert found and all("subscribe Lines" in s for s in found), found


async def test_replayed_alone_the_subscribers_hear_nothing_and_the_verdict_says_so(
    chat_capture: Path,
) -> None:
    async with chat_server() as base, chat_server() as cand:
        report = await shadow(chat_capture, base, cand, NO_TIMING, links=False)
    assert report["verdict"] != "equivalent"
    assert report["fidelity"]["sessions"]["unreproduced"] >= 2
