"""Issue 19, item 4: plain HTTP through the recording proxy is streamed both ways.

A real aiohttp upstream on 127.0.0.1 (in a thread) serves server-sent events,
takes uploads and serves a large download; the proxy runs in-process, or as
a ``wsshadow record`` subprocess where its memory is measured. Before the
fix the proxy buffered both bodies whole: events never arrived, uploads over
1 MiB got 413, and a download cost the proxy its size in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.reliability.proxykit import rss_mib, start_record
from tests.timeouts import scaled
from wsshadow.recorders.proxy import RecordingProxy

MIB = 2**20
DOWNLOAD = 160 * MIB


@contextmanager
def upstream_app() -> Iterator[tuple[str, dict[str, Any]]]:
    """An aiohttp upstream: /events (SSE, then holds the stream open), /upload, /big."""
    release = threading.Event()
    seen: dict[str, Any] = {"release": release}

    async def events(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        for i in range(3):
            await out.write(f"data: event {i}\n\n".encode())
            await asyncio.sleep(0.05)
        # the stream stays open, as an event stream does, until the test is done
        while not release.is_set():
            await asyncio.sleep(0.05)
        await out.write_eof()
        return out

    async def upload(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        seen["upload"] = (size, digest.hexdigest())
        return web.Response(text=f"{size} {digest.hexdigest()}")

    async def big(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        out.content_length = DOWNLOAD
        await out.prepare(request)
        chunk = b"\x5a" * MIB
        for _ in range(DOWNLOAD // MIB):
            await out.write(chunk)
        await out.write_eof()
        return out

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application(client_max_size=1024 * MIB)
        app.router.add_get("/events", events)
        app.router.add_post("/upload", upload)
        app.router.add_get("/big", big)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield f"ws://127.0.0.1:{holder['port']}", seen
    finally:
        release.set()
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _http(url: str) -> str:
    return url.replace("ws://", "http://", 1)


async def test_server_sent_events_arrive_as_they_are_sent(tmp_path: Path) -> None:
    with upstream_app() as (upstream, seen):
        async with RecordingProxy(upstream, tmp_path / "cap.db", listen=("127.0.0.1", 0)) as proxy:
            async with aiohttp.ClientSession() as http, asyncio.timeout(scaled(20)):
                # (buffered, the answer never came: the upstream has not ended the stream)
                async with http.get(_http(proxy.url) + "/events") as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == "text/event-stream"
                    got = b""
                    while got.count(b"\n\n") < 3:
                        got += await resp.content.readany()
                    seen["release"].set()  # now the upstream may end the stream
                    got += await resp.content.read()
    assert got == b"data: event 0\n\ndata: event 1\n\ndata: event 2\n\n"


async def test_an_upload_over_one_mib_reaches_the_upstream_whole(tmp_path: Path) -> None:
    body = os.urandom(5 * MIB)

    async def chunks() -> Any:  # sent chunked, without a Content-Length, too
        for i in range(0, len(body), 256 * 1024):
            yield body[i : i + 256 * 1024]

    with upstream_app() as (upstream, seen):
        async with RecordingProxy(upstream, tmp_path / "cap.db", listen=("127.0.0.1", 0)) as proxy:
            async with aiohttp.ClientSession() as http:
                for data in (body, chunks()):
                    async with http.post(_http(proxy.url) + "/upload", data=data) as resp:
                        assert resp.status == 200, await resp.text()
                        text = await resp.text()
                    assert text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"
                    assert seen["upload"] == (len(body), hashlib.sha256(body).hexdigest())


async def test_a_large_download_does_not_cost_the_proxy_its_size(tmp_path: Path) -> None:
    with upstream_app() as (upstream, _seen):
        rec = await start_record(tmp_path / "cap.db", upstream)
        try:
            base = peak = rss_mib(rec.pid)
            digest, size = hashlib.sha256(), 0
            async with aiohttp.ClientSession() as http:
                async with http.get(_http(rec.url) + "/big") as resp:
                    assert resp.status == 200
                    assert resp.content_length == DOWNLOAD  # the upstream's length, kept
                    async for chunk in resp.content.iter_chunked(MIB):
                        digest.update(chunk)
                        size += len(chunk)
                        peak = max(peak, rss_mib(rec.pid))
        finally:
            assert await rec.stop() == 0
    assert size == DOWNLOAD
    assert digest.hexdigest() == hashlib.sha256(b"\x5a" * DOWNLOAD).hexdigest()
    print(f"proxy RSS {base:.0f} MiB -> peak {peak:.0f} MiB for a {DOWNLOAD // MIB} MiB download")
    assert peak - base < 48, (base, peak)  # buffered whole, it grew by more than the download
