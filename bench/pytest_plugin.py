"""The pytest plugin's cost: a capture of the demo's traffic (16 sessions) run as tests.

Records the demo's scripted traffic against the legacy server (through the
test suite's small recording relay), then times whole ``pytest`` runs in a
subprocess: against the legacy server (all pass) with 0 and 1 noise runs,
against the consolidated server (10 items fail, the causal waits for the
dropped ``agent_thinking`` dominate), and the plugin's cost when it is
installed but not used (an empty pytest run with and without ``-p no:wsshadow``).

    .venv/bin/python bench/pytest_plugin.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._table import median_spread, print_table  # noqa: E402
from tests.pytest_plugin.relay import recording_relay  # noqa: E402
from wsshadow.replay.capture.redact import Redactor  # noqa: E402
from wsshadow.replay.capture.store import CaptureStore  # noqa: E402
from wsshadow.replay.demo import demo_config_path, demo_servers, run_traffic  # noqa: E402


def start(capture: Path) -> tuple[tuple[str, str], threading.Event]:
    ready: Future[tuple[str, str]] = Future()
    stop = threading.Event()

    async def main() -> None:
        async with demo_servers() as servers:
            async with recording_relay(servers.legacy) as relay:
                await run_traffic(relay.url, seed=7, shared_room=False)  # replayed alone
            with CaptureStore.open(capture, create=True, redactor=Redactor(enabled=False)) as st:
                st.put_sessions(relay.sessions)
            ready.set_result((servers.legacy, servers.consolidated))
            while not stop.is_set():
                await asyncio.sleep(0.05)

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    return ready.result(timeout=60), stop


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - t, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        capture = work / "legacy.db"
        (legacy, consolidated), stop = start(capture)
        common = [f"--wsshadow-capture={capture}", f"--wsshadow-config={demo_config_path()}"]
        cases = [
            ("empty run, plugin disabled (-p no:wsshadow)", ["-p", "no:wsshadow"]),
            ("empty run, plugin installed, no capture", []),
            ("legacy, noise runs 0", [*common, f"--wsshadow-target={legacy}",
                                      "--wsshadow-no-maps", "--wsshadow-noise-runs=0"]),
            ("legacy, noise runs 1 (default)", [*common, f"--wsshadow-target={legacy}",
                                                "--wsshadow-no-maps"]),
            ("consolidated (maps), noise runs 1", [*common, f"--wsshadow-target={consolidated}"]),
        ]  # fmt: skip
        # Interleaved rounds, so that load from elsewhere hits every case alike.
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        outcomes: dict[str, str] = {}
        for _ in range(args.runs):
            for name, extra in cases:
                took, outcomes[name] = timed(extra, work)
                times[name].append(took)
        stop.set()
        rows = []
        for name, _ in cases:
            med, spread = median_spread(times[name])
            rows.append((name, f"{med:.2f}", f"{spread:.0%}", outcomes[name].strip("= ")))
    print_table(
        f"pytest runs over a 16-session capture (median of {args.runs}, wall seconds)",
        ["run", "median s", "spread", "pytest says"],
        rows,
    )


if __name__ == "__main__":
    main()
