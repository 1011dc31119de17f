"""The private aiohttp parts the recorders rely on are all there (else: which one is gone)."""

from __future__ import annotations

import aiohttp

from wsshadow.recorders.aiohttp_private import PRIVATE_API, missing_private_api


def test_the_installed_aiohttp_has_every_private_part_we_use() -> None:
    assert missing_private_api() == [], (
        f"aiohttp {aiohttp.__version__} lacks private parts the recording relay uses; "
        "see recorders/aiohttp_private.py"
    )


def test_a_missing_part_is_named() -> None:
    fake = (*PRIVATE_API, ("aiohttp.web_protocol", "RequestHandler", "no_such_thing"))
    assert missing_private_api(fake) == ["aiohttp.web_protocol.RequestHandler.no_such_thing"]
    assert missing_private_api((("aiohttp.client_ws", "NoSuchClass", "x"),)) == [
        "aiohttp.client_ws.NoSuchClass.x"
    ]
