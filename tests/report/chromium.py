"""Headless Chromium driven over the Chrome DevTools Protocol with the websockets client.

Only for tests: starts Debian's ``chromium`` on a fresh profile with a
loopback debugging port, attaches to one page, records console messages,
exceptions and network requests, and stops exactly the process group it started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import websockets

from tests.timeouts import scaled

CHROMIUM = "/usr/bin/chromium"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class CdpError(RuntimeError):
    """A DevTools command that failed."""


class Chromium:
    """One headless Chromium and one attached page; use as ``async with``."""

    def __init__(self, workdir: Path, width: int = 1280, height: int = 900) -> None:
        self.workdir = workdir
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ws: Any = None
        self.session_id: str | None = None

    async def __aenter__(self) -> Chromium:
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        # A profile used before holds the old port: read only what this process writes.
        (profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.log = (self.workdir / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,  # its own process group: we stop exactly what we started
        )
        try:
            port, path = await self._devtools_port(profile / "DevToolsActivePort")
            self._ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
            self._reader = asyncio.create_task(self._read())
            target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
            attached = await self.send(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                page=False,
            )
            self.session_id = attached["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                await self.send(f"{domain}.enable")
            await self.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": self.size[0],
                    "height": self.size[1],
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
            )
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close", page=False), scaled(5))
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=scaled(5))
            # Renderer and zygote children share the group even after the main one exits.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=scaled(5))
        self.log.close()

    async def _devtools_port(self, path: Path, timeout: float = 30.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited with {self.proc.returncode}; see {self.log.name}"
                )
            with contextlib.suppress(FileNotFoundError, ValueError):
                lines = path.read_text().split("\n")
                if len(lines) >= 2 and lines[1].startswith("/devtools/"):
                    return int(lines[0]), lines[1].strip()
            await asyncio.sleep(0.05)
        raise TimeoutError("chromium did not write DevToolsActivePort")

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            else:
                self.events.append(msg)

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        page: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command (to the page unless ``page`` is False) and return its result."""
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if page and self.session_id:
            msg["sessionId"] = self.session_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page; return its JSON value, raise on an exception."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str, ready: str = "true", timeout: float = 30.0) -> float:
        """Load ``url`` and wait until ``ready`` evaluates truthy; return the seconds it took."""
        start = time.monotonic()
        await self.send("Page.navigate", {"url": url})
        while time.monotonic() - start < timeout:
            with contextlib.suppress(CdpError):
                if await self.evaluate(ready):
                    return time.monotonic() - start
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{url} not ready after {timeout}s")

    async def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Write a PNG screenshot of the page."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        shot = await self.send("Page.captureScreenshot", params)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        """URLs of every network request the page made."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
