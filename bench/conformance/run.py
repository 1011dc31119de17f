"""`make conformance`: Autobahn|Testsuite directly and through `wsshadow record`.

Runs `wstest -m fuzzingclient` (cases 1.* to 7.*, 9.* and 10.*) against a
websockets echo server twice, once directly and once through the recording
proxy, and prints a table of the cases whose outcome (behavior, close
behavior) differs between the two, and whether it is worse through the
proxy. autobahntestsuite runs on Python 2.7
only: the script builds bench/.work/wstest27 with virtualenv < 20.22 from a
python2.7 interpreter (PATH or pyenv), and says so clearly when there is
none. Exit status: 0 when no case is worse through the proxy, 1 when some
are, 2 when it could not run. (The direct server's NON-STRICT verdicts move
with timing from run to run, so "differs" alone is noisy.)

    .venv/bin/python bench/conformance/run.py [--cases 1.* 2.* ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # bench/ (this folder keeps it out of make bench)
ROOT = HERE.parent
WORK = HERE / ".work"
TOOL = WORK / "vtool"
ENV27 = WORK / "wstest27"
WSTEST = ENV27 / "bin" / "wstest"
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
MAX_SIZE = 64 * 2**20


def _runs(python: str) -> bool:
    """True when ``python`` starts (a pyenv shim on PATH fails unless pyenv selects 2.7)."""
    try:
        done = subprocess.run([python, "-c", "import sys"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_python27() -> str | None:
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{pyenv}/versions/2.7*/bin/python2.7"), reverse=True)
    found = shutil.which("python2.7")
    if found:
        candidates.append(found)
    return next((c for c in candidates if _runs(c)), None)


def ensure_wstest(python27: str) -> None:
    """Build the Python 2.7 environment holding autobahntestsuite (once)."""
    if WSTEST.exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    print("conformance: building a Python 2.7 environment for autobahntestsuite...", flush=True)
    if not (TOOL / "bin" / "virtualenv").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOL)], check=True)
        subprocess.run([str(TOOL / "bin" / "pip"), "install", "-q", "virtualenv<20.22"], check=True)
    subprocess.run([str(TOOL / "bin" / "virtualenv"), "-q", "-p", python27, str(ENV27)], check=True)
    subprocess.run([str(ENV27 / "bin" / "pip"), "install", "-q", "autobahntestsuite"], check=True)


async def serve_echo() -> None:
    from websockets.asyncio.server import serve

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(Exception):
            async for m in ws:
                await ws.send(m)

    async with serve(echo, "127.0.0.1", 0, max_size=MAX_SIZE, compression=None) as server:
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await asyncio.Future()


def start_record(upstream: str, capture: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay", "record", "--upstream", upstream,
         "--listen", "127.0.0.1:0", "--max-message-size", str(MAX_SIZE), str(capture)],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"recording (ws://\S+)", line)
    if not match:
        raise SystemExit(f"conformance: wsshadow record did not start: {line.strip()}")
    return proc, match.group(1)


def outcomes(index: dict[str, dict[str, dict[str, str]]], agent: str) -> dict[str, tuple[str, str]]:
    return {
        case: (r.get("behavior", "?"), r.get("behaviorClose", "?"))
        for case, r in index.get(agent, {}).items()
    }


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(p) for p in case.split(".") if p.isdigit())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=CASES)
    ap.add_argument("--keep", type=Path, help="keep the Autobahn reports in this directory")
    args = ap.parse_args()

    python27 = find_python27()
    if python27 is None:
        print(
            "conformance: no Python 2.7 interpreter found (autobahntestsuite runs only on 2.7; "
            "looked for python2.7 on PATH and under ~/.pyenv/versions/2.7*): nothing was run",
            file=sys.stderr,
        )
        return 2
    try:
        ensure_wstest(python27)
    except subprocess.CalledProcessError as e:
        print(f"conformance: could not install autobahntestsuite ({e})", file=sys.stderr)
        return 2

    env = dict(os.environ, WEBSOCKETS_MAX_FRAGMENTS="1000000")
    echo = subprocess.Popen(
        [sys.executable, __file__, "--serve-echo"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert echo.stdout is not None
    upstream = f"ws://127.0.0.1:{int(echo.stdout.readline())}"
    work = Path(args.keep or tempfile.mkdtemp(prefix="wsshadow-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    record = None
    try:
        record, proxied = start_record(upstream, work / "conformance.db")
        spec = {
            "outdir": str(work / "reports"),
            "servers": [
                {"agent": "direct", "url": upstream},
                {"agent": "wsshadow", "url": proxied},
            ],
            "cases": args.cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        (work / "fuzzingclient.json").write_text(json.dumps(spec, indent=2))
        start = time.perf_counter()
        run = subprocess.run(
            [str(WSTEST), "-m", "fuzzingclient", "-s", str(work / "fuzzingclient.json")],
            cwd=work, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        took = time.perf_counter() - start
        index_file = work / "reports" / "index.json"
        if run.returncode != 0 or not index_file.exists():
            print(run.stdout[-2000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
            print(f"conformance: wstest failed (exit {run.returncode})", file=sys.stderr)
            return 2
        index = json.loads(index_file.read_text())
    finally:
        if record is not None and record.poll() is None:
            record.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                record.communicate(timeout=30)
        echo.terminate()
        echo.wait()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    direct, proxied_out = outcomes(index, "direct"), outcomes(index, "wsshadow")
    cases = sorted(set(direct) | set(proxied_out), key=case_key)
    differ = [c for c in cases if direct.get(c) != proxied_out.get(c)]
    worse = [c for c in differ if is_worse(proxied_out.get(c), direct.get(c))]
    print(f"### Autobahn|Testsuite fuzzingclient, cases {' '.join(args.cases)} ({took:.0f} s)\n")
    print(
        f"{len(cases)} cases; {len(differ)} behave differently through wsshadow record, "
        f"{len(worse)} of them worse than directly.\n"
    )
    if differ:
        print("| case | direct | through wsshadow record | |")
        print("| --- | --- | --- | --- |")
        for c in differ:
            d, p = direct.get(c, ("-", "-")), proxied_out.get(c, ("-", "-"))
            verdict = "worse" if c in worse else "better" if is_worse(d, p) else "other"
            print(f"| {c} | {d[0]} / close {d[1]} | {p[0]} / close {p[1]} | {verdict} |")
    return 1 if worse else 0


# Autobahn's verdicts, best first; a case is worse through the proxy when either
# its behavior or its close behavior ranks lower than directly.
_RANK = {"OK": 0, "NON-STRICT": 1, "INFORMATIONAL": 1, "UNIMPLEMENTED": 2, "WRONG CODE": 2,
         "UNCLEAN": 2, "FAILED": 3}  # fmt: skip


def is_worse(a: tuple[str, str] | None, b: tuple[str, str] | None) -> bool:
    """True when outcome ``a`` ranks below ``b`` in behavior or close behavior."""
    return any(x > y for x, y in zip(rank(a), rank(b), strict=True))


def rank(outcome: tuple[str, str] | None) -> tuple[int, int]:
    if outcome is None:
        return (9, 9)
    return (_RANK.get(outcome[0], 3), _RANK.get(outcome[1], 3))


if __name__ == "__main__":
    if "--serve-echo" in sys.argv:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_echo())
        sys.exit(0)
    sys.exit(main())
