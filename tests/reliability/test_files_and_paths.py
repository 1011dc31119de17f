"""Files wsshadow writes: owner-only captures, only where told, no code from config values."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.kit import assert_one_error, cli, make_capture, recorded, ws_server
from wsshadow.recorders.asgi import WsShadowRecorder
from wsshadow.recorders.serve import serve_asgi
from wsshadow.replay.capture.jsonl import write_jsonl
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.config import load_config


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000 for the test: the files' modes are the code's choice alone."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(path: Path) -> dict[str, int]:
    out = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            out[p.name] = stat.S_IMODE(p.stat().st_mode)
    return out


def _jsonl(path: Path, *ids: str) -> Path:
    with path.open("wb") as f:
        write_jsonl([recorded(i, [("client", '{"type":"a"}'), ("server", '{"type":"b"}')])
                     for i in ids], f)  # fmt: skip
    return path


def _owner_only(path: Path) -> None:
    modes = _modes(path)
    assert modes and all(m == 0o600 for m in modes.values()), modes


def test_every_cli_writer_makes_owner_only_files(open_umask: None, tmp_path: Path, capsys) -> None:
    src = _jsonl(tmp_path / "in.jsonl", "a", "b")
    imported = tmp_path / "imported.db"
    assert cli(capsys, ["captures", "import", src, imported])[0] == 0
    _owner_only(imported)
    merged = tmp_path / "merged.db"
    assert cli(capsys, ["captures", "merge", merged, imported])[0] == 0
    _owner_only(merged)
    exported = tmp_path / "out.jsonl"
    assert cli(capsys, ["captures", "export", imported, exported])[0] == 0
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    with ws_server() as url:
        assert cli(capsys, ["replay", imported, "--target", url, "--run", "r"])[0] == 0
    _owner_only(imported)


async def test_the_asgi_recorder_makes_owner_only_files(open_umask: None, tmp_path: Path) -> None:
    asgi = tmp_path / "asgi.db"

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

    from websockets.asyncio.client import connect

    recorder = WsShadowRecorder(app, capture=asgi, flush_interval=0.05)
    with serve_asgi(recorder) as served:
        async with connect(f"{served.ws_url}/ws") as ws:
            await ws.wait_closed()
        recorder.close()
        _owner_only(asgi)  # the -wal and -shm too, while it is open
    with CaptureStore.open(asgi) as store:
        assert store.count_sessions() == 1


def test_export_writes_only_where_told(tmp_path: Path, capsys) -> None:
    cap = make_capture(tmp_path / "cap.db", sessions=2, turns=1)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    # A planted OUT.tmp symlink (the old temporary name) must not redirect the write.
    (tmp_path / "out.jsonl.tmp").symlink_to(victim)
    assert cli(capsys, ["captures", "export", cap, tmp_path / "out.jsonl"])[0] == 0
    assert victim.read_text() == "precious\n"
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5
    # A missing directory is an error, not a created path.
    assert_one_error(cli(capsys, ["captures", "export", cap, tmp_path / "nodir" / "x.jsonl"]))
    assert not (tmp_path / "nodir").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_hostile_ids_and_routes_never_become_paths(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside"
    ids = [
        "../../outside/escaped",
        str(outside / "absolute"),
        "..\\..\\win",
        "a/b/../../c",
        "\x00x",
    ]
    with (work / "in.jsonl").open("wb") as f:
        write_jsonl(
            [recorded(i, [("client", '{"type":"a"}'), ("server", '{"type":"b"}')],
                      route="/../../../outside/route") for i in ids],
            f,
        )  # fmt: skip
    har = {"log": {"entries": [{
        "_resourceType": "websocket", "startedDateTime": "2026-11-26T10:00:00Z",
        "request": {"method": "GET", "url": "ws://127.0.0.1:9/../../outside/har", "headers": []},
        "response": {"status": 101, "headers": []},
        "_webSocketMessages": [{"type": "send", "time": 1.0, "opcode": 1, "data": "{}"}]}]}}  # fmt: skip
    (work / "in.har").write_text(json.dumps(har))
    cap = work / "cap.db"
    before = _tree(tmp_path)
    assert cli(capsys, ["captures", "import", work / "in.jsonl", cap])[0] == 0
    assert cli(capsys, ["captures", "import", work / "in.har", cap])[0] == 0
    assert cli(capsys, ["captures", "ls", cap])[0] == 0
    assert cli(capsys, ["captures", "show", cap, ids[0]])[0] == 0
    assert cli(capsys, ["captures", "export", cap, work / "out.jsonl"])[0] == 0
    with ws_server() as url:
        code, _o, err = cli(capsys, ["replay", cap, "--target", url, "--run", "../../outside/run"])
        assert code == 0, err
    code, _o, err = cli(
        capsys,
        ["diff", cap, "--candidate", "../../outside/run", "--output", work / "r.html",
         "--report", work / "r.md", "--report", work / "r.json"],
    )  # fmt: skip
    assert code in (0, 1), err
    created = _tree(tmp_path) - before
    assert created <= {f"work/{n}" for n in ("cap.db", "cap.db-wal", "cap.db-shm", "out.jsonl",
                                               "r.html", "r.md", "r.json")}, created  # fmt: skip
    assert not outside.exists()
    with CaptureStore.open(cap) as store:
        assert set(ids) <= set(store.session_ids())


PAYLOADS = [
    "__import__('os').system('touch PWNED')",
    "$(touch PWNED)",
    "`touch PWNED`",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "${__import__('os').system('touch PWNED')}",
]


def test_config_values_are_data_never_code(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cap = make_capture(tmp_path / "cap.db", sessions=2, turns=1)
    p0 = json.dumps(PAYLOADS[0])
    cfg = tmp_path / "wsshadow.toml"
    cfg.write_text(
        "[diff]\n"
        f"event_keys = {json.dumps(PAYLOADS)}\n"
        f"ignore = [{json.dumps('**.x')}]\n"
        "[diff.custom_masks]\n"
        f"evil = {json.dumps(PAYLOADS[0].replace('(', '[(]').replace(')', '[)]'))}\n"
        "[credentials]\n"
        f"authorization = {p0}\n"
        f"other = {json.dumps(PAYLOADS[1])}\n"
        "[targets]\n"
        f"candidate = {json.dumps('ws://127.0.0.1:1/' + PAYLOADS[2])}\n"
    )
    loaded = load_config(cfg)
    assert loaded.diff.event_keys == tuple(PAYLOADS)  # kept as the strings they are
    assert loaded.credentials["authorization"] == PAYLOADS[0]
    code, _out, err = cli(capsys, ["diff", cap, "--candidate", "r1", "--format", "json"])
    assert code in (0, 1), err
    code, _out, err = cli(capsys, ["diff", cap, "--candidate", "r1", "--config", cfg, "-f", "json"])
    assert code in (0, 1), err
    with ws_server() as url:
        for value in PAYLOADS:
            cli(capsys, ["replay", cap, "--target", url, "--run", f"r{PAYLOADS.index(value)}",
                         "--credential", f"authorization={value}", "--header", f"X-A: {value}"])  # fmt: skip
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
