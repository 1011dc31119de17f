"""``wsshadow replay`` and ``captures merge`` run in-process against real servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.server import ServerConnection, serve

from tests.engine.engine_helpers import conversation
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main
from wsshadow.replay.diff.normalize import unnumbered


@contextmanager
def echo_server(seen_auth: list[str | None] | None = None) -> Iterator[str]:
    """A threaded echo server on 127.0.0.1 (the CLI runs its own event loop)."""

    def handler(ws: ServerConnection) -> None:
        if seen_auth is not None:
            seen_auth.append(ws.request.headers.get("Authorization") if ws.request else None)
        for raw in ws:
            ws.send(raw)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            server.shutdown()
            thread.join(5)


def make_capture(tmp_path: Path, n: int = 4, **kwargs: object) -> Path:
    path = tmp_path / "cap.db"
    with CaptureStore.open(path, create=True) as store:
        store.put_sessions(
            conversation(
                f"s{i}",
                [
                    ("client", {"n": i}),
                    ("server", {"n": i}),
                    ("client", {"m": i}),
                    ("server", {"m": i}),
                ],
                started_at=1_700_000_000.0 + i,
                **kwargs,  # type: ignore[arg-type]
            )
            for i in range(n)
        )
    return path


def test_replay_stores_a_run_and_prints_a_summary(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path)
    with echo_server() as url:
        code = main(["replay", str(cap), "--target", url, "--run", "r1", "--concurrency", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "run r1" in out.out and "4 sessions, 4 completed, 0 errors" in out.out
    assert main(["captures", "ls", str(cap), "--run", "r1"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("replay:r1") == 4 and "r1:s0" in listing
    with CaptureStore.open(cap) as store:
        run = store.get_run("r1")
        assert run is not None and run.sessions == 4 and run.target == url


def test_down_target_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path, n=3)
    with echo_server() as url:
        pass  # nothing listens on that port any more
    code = main(["replay", str(cap), "--target", url, "--run", "down"])
    out = capsys.readouterr()
    assert code == 2
    errors = [line for line in out.err.splitlines() if "error" in line]
    assert len(errors) == 1 and "accepted none of 3 sessions" in errors[0]
    assert "Traceback" not in out.err
    with CaptureStore.open(cap) as store:
        stored = list(store.summaries("down"))
        assert len(stored) == 3 and all(s.close_error.startswith("unreachable") for s in stored)


def test_bad_options_exit_2(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path, n=1)
    for argv in (
        ["--target", "ftp://x"],
        ["--target", "ws://127.0.0.1:1", "--map", "nonsense"],
        ["--target", "ws://127.0.0.1:1", "--shard", "3/3"],
        ["--target", "ws://127.0.0.1:1", "--follow"],
        ["--target", "ws://127.0.0.1:1", "--session", "nope"],
        ["--target", "ws://127.0.0.1:1", "--header", "no colon"],
    ):
        assert main(["replay", str(cap), *argv]) == 2, argv
    assert "Traceback" not in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.db"), "--target", "ws://127.0.0.1:1"]) == 2


def test_credential_flag_reaches_the_server(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path, n=1, headers=(("Authorization", "Bearer old"),))
    seen: list[str | None] = []
    with echo_server(seen) as url:
        assert main(["replay", str(cap), "--target", url, "--run", "nocred"]) == 2
        assert seen == []  # failed before connecting
        assert "${redacted:header:authorization}" in unnumbered(capsys.readouterr().out)
        code = main(
            ["replay", str(cap), "--target", url, "--credential", "authorization=Bearer new"]
        )
    assert code == 0 and seen == ["Bearer new"]


def test_follow_prints_live_and_recorded_side_by_side(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path, n=2)
    with echo_server() as url:
        code = main(["replay", str(cap), "--target", url, "--session", "s1", "--follow"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if "←" in line or "→" in line]
    assert len(lines) == 4
    assert all(" = " in line for line in lines)
    assert json.dumps({"m": 1}) in lines[-1]


def test_shards_merge_back_into_one_run(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path, n=12)
    shards = []
    with echo_server() as url:
        for i in range(3):
            shard = tmp_path / f"shard{i}.db"
            shard.write_bytes(cap.read_bytes())
            assert (
                main(["replay", str(shard), "--target", url, "--run", "r", "--shard", f"{i}/3"])
                == 0
            )
            shards.append(shard)
    merged = tmp_path / "merged.db"
    assert main(["captures", "merge", str(merged), *map(str, shards)]) == 0
    with CaptureStore.open(merged) as store:
        assert store.count_sessions() == 12
        assert store.count_sessions("r") == 12
        run = store.get_run("r")
        assert run is not None and run.sessions == 12 and run.errors == 0
        assert {s.origin for s in store.summaries("r")} == {f"s{i}" for i in range(12)}
    assert "merged" in capsys.readouterr().err
