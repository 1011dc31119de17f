"""``python -m wsshadow.replay.demo.servers``: prints both URLs, serves, stops cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.timeouts import scaled


async def test_dev_entry_point_serves_and_stops() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsshadow.replay.demo.servers",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [
            (await asyncio.wait_for(proc.stdout.readline(), scaled(10))).decode() for _ in range(2)
        ]
        urls = dict(re.findall(r"^(\w+)\s+(ws://127\.0\.0\.1:\d+)", "".join(lines), re.M))
        assert set(urls) == {"legacy", "consolidated"}
        headers = [("Authorization", "Bearer user-entry-point-user")]
        async with connect(
            urls["consolidated"] + "/ws?mode=isolated", additional_headers=headers
        ) as ws:
            assert json.loads(await ws.recv())["user_id"] == "entry-point-user"
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), scaled(5))
            assert ws.close_code == 1001  # the server said goodbye on shutdown
        assert await asyncio.wait_for(proc.wait(), scaled(10)) == 0
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
