"""``wsshadow demo``: record the legacy backend through the proxy, shadow the consolidation.

The whole product on one realistic case: both servers start on loopback,
scripted users talk to the legacy routes through the recording proxy,
``shadow`` replays the capture against the consolidated server (and the
legacy one twice, for noise), and every report format is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import load_config
from wsshadow.replay.demo import demo_config_path, demo_servers, run_traffic
from wsshadow.replay.demo.traffic import TrafficSummary
from wsshadow.replay.engine.options import ReplayOverrides, build_replay_options
from wsshadow.replay.report.render import write_report
from wsshadow.replay.shadow import ShadowResult, shadow_capture

__all__ = ["DEMO_FILES", "DemoResult", "Recorder", "RecorderFactory", "run_demo"]

DEMO_FILES = ("capture.db", "report.json", "report.html", "report.md", "junit.xml")
"""What ``wsshadow demo`` writes into its output folder."""


class Recorder(Protocol):
    """The part of the recording proxy the demo uses: where clients connect."""

    @property
    def url(self) -> str: ...


RecorderFactory = Callable[[str, CaptureStore], AbstractAsyncContextManager[Recorder]]
"""Starts a recording proxy in front of an upstream URL, writing into a store."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and where it put it."""

    out: Path
    files: dict[str, Path]
    traffic: TrafficSummary
    shadow: ShadowResult
    legacy_url: str
    consolidated_url: str

    @property
    def report(self) -> dict[str, Any]:
        """The JSON report of the shadow comparison."""
        return self.shadow.report


def _fresh_capture(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def run_demo(
    out: Path,
    recorder: RecorderFactory,
    *,
    seed: int | None = None,
    concurrency: int = 50,
    causal_timeout: float | None = None,
) -> DemoResult:
    """Run the demo end to end into ``out`` and return what it found.

    ``recorder`` starts the recording proxy (``recorders.proxy.RecordingProxy``
    in the CLI). ``causal_timeout`` overrides the demo config's (0.5 s), for
    a loaded machine. A previous demo's files in ``out`` are replaced.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in DEMO_FILES}
    _fresh_capture(files["capture.db"])
    config = load_config(demo_config_path())
    async with demo_servers(seed=seed) as servers:
        with CaptureStore.open(files["capture.db"], create=True) as store:
            async with recorder(servers.legacy, store) as proxy:
                traffic = await run_traffic(proxy.url, seed=seed)
            options = build_replay_options(
                config,
                servers.consolidated,
                ReplayOverrides.of(concurrency=concurrency, causal_timeout=causal_timeout),
                os.environ,
            )
            shadow = await shadow_capture(
                store,
                baseline=servers.legacy,
                candidate=servers.consolidated,
                options=options,
                config=config.diff,
                noise_runs=1,
                prefix="demo",
                verdict=config.verdict,
            )
    for name in ("report.json", "report.html", "report.md", "junit.xml"):
        write_report(shadow.report, files[name])
    return DemoResult(
        out=out,
        files=files,
        traffic=traffic,
        shadow=shadow,
        legacy_url=servers.legacy,
        consolidated_url=servers.consolidated,
    )
