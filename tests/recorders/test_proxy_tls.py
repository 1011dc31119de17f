"""TLS on both sides of the proxy, with certificates from a test CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from wsshadow.recorders.proxy import RecordingProxy
from wsshadow.replay.capture.model import Closer
from wsshadow.replay.capture.store import CaptureStore


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem_files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    return files


@pytest.fixture
async def wss_upstream(ca: trustme.CA) -> AsyncIterator[str]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=ctx) as server:
        yield f"wss://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


async def test_wss_upstream_verified_and_tls_listening(wss_upstream, pem_files, ca, capture_path):
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    proxy = RecordingProxy(
        wss_upstream,
        capture_path,
        listen=("127.0.0.1", 0),
        upstream_ca=pem_files["ca"],
        tls_cert=pem_files["cert"],
        tls_key=pem_files["key"],
    )
    async with proxy:
        assert proxy.url.startswith("wss://")
        async with connect(proxy.url + "/secure", ssl=client_ctx) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
    with CaptureStore.open(capture_path) as store:
        [s] = list(store.iter_sessions())
    assert [m.payload for m in s.messages if m.opcode.is_data] == ["over tls", "over tls"]


async def test_untrusted_upstream_certificate_is_refused_not_ignored(wss_upstream, capture_path):
    async with RecordingProxy(wss_upstream, capture_path, listen=("127.0.0.1", 0)) as proxy:
        with pytest.raises(InvalidStatus) as info:
            async with connect(proxy.url + "/secure"):
                pass
    assert info.value.response.status_code == 502
    with CaptureStore.open(capture_path) as store:
        [s] = list(store.iter_sessions())
    assert s.close is not None and s.close.by is Closer.ERROR
    assert "certificate" in (s.close.error or "").lower()
