"""Distinct recorded users replay as distinct test users: an app that authenticates by
bearer token, two users recorded through the real proxy, ``authorization#1`` and
``authorization#2`` filled with two test users' tokens (identity_apps.py)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.engine.identity_apps import RECORDED, TESTERS, InviteServer, invite_and_talk
from tests.engine.scenario_apps import record
from tests.shadow.dialect_kit import serving_aiohttp
from wsshadow.replay.capture.store import CaptureStore
from wsshadow.replay.cli import main

ANN, BEN = TESTERS["ann"], TESTERS["ben"]
NUMBERED = ["--credential", f"authorization#1={ANN}", "--credential", f"authorization#2={BEN}"]


@pytest.fixture
async def capture(tmp_path: Path) -> Path:
    path = tmp_path / "invite.db"
    async with serving_aiohttp(InviteServer().app()) as upstream:
        await record(upstream, path, invite_and_talk)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "no-timing.toml"
    path.write_text("[diff.timing]\nfloor_ms = 60000\n")
    return path


async def shadow(
    capture: Path, config: Path, candidate: InviteServer, *extra: str
) -> tuple[int, dict[str, Any]]:
    report = capture.parent / f"report-{abs(hash(extra))}.json"
    async with (
        serving_aiohttp(InviteServer().app()) as base,
        serving_aiohttp(candidate.app()) as cand,
    ):
        args = ["shadow", str(capture), "--baseline", base, "--candidate", cand,
                "--config", str(config), "--report", str(report), *extra]  # fmt: skip
        code = await asyncio.to_thread(main, args)
    return code, json.loads(report.read_text())


def capture_bytes(capture: Path) -> bytes:
    return b"".join(p.read_bytes() for p in capture.parent.glob(capture.name + "*"))


def inviter(store: CaptureStore) -> str:
    (sid,) = [
        s.id for s in store.iter_sessions()
        if any('"invite"' in str(m.payload) for m in s.client_messages())
    ]  # fmt: skip
    return sid


def test_the_two_recorded_users_get_two_numbers(capture: Path) -> None:
    with CaptureStore.open(capture) as store:
        needed = store.credentials_needed()
        alice = inviter(store)
    assert sorted(needed.values()) == [("authorization#1",), ("authorization#2",)]
    assert needed[alice] == ("authorization#1",)  # she connected first
    blob = capture_bytes(capture)
    for token in RECORDED.values():
        assert token.split()[1].encode() not in blob


async def test_numbered_credentials_reproduce_the_recording(capture: Path, config: Path) -> None:
    # user 1 from the command line, user 2 from the config file's [credentials]
    config.write_text(config.read_text() + f'[credentials]\n"authorization#2" = "{BEN}"\n')
    code, report = await shadow(capture, config, InviteServer(), *NUMBERED[:2])
    assert code == 0, report["differences"]
    assert report["verdict"] == "equivalent"
    assert report["fidelity"]["sessions"] == {"total": 2, "reproduced": 2, "unreproduced": 0}
    with CaptureStore.open(capture) as store:
        run = next(r.name for r in store.runs() if r.name.endswith("-baseline"))
        replayed = {s.provenance.origin: s for s in store.iter_sessions(run)}
        alice = inviter(store)
    # each user's stored replay holds its own numbered placeholder, never the token
    header = replayed[alice].handshake.request_header("Authorization")
    assert header == "${redacted:header:authorization#1}"
    blob = capture_bytes(capture)
    assert ANN.split()[1].encode() not in blob and BEN.split()[1].encode() not in blob


async def test_one_plain_credential_makes_one_user_and_the_replay_inconclusive(
    capture: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = await shadow(
        capture, config, InviteServer(), "--credential", f"authorization={ANN}"
    )
    assert code == 3 and report["verdict"] == "inconclusive"
    assert report["fidelity"]["sessions"]["reproduced"] < 2
    causes = json.dumps(report["session_details"])
    assert "error" in causes  # Bob's accept: "you cannot accept your own invite"
    hint = [line for line in capsys.readouterr().err.splitlines() if "hint:" in line]
    assert len(hint) == 1 and "authorization#1, authorization#2" in hint[0]
    assert "--credential authorization#N=VALUE" in hint[0]


async def test_a_candidate_that_mixes_up_sender_and_recipient_is_divergent(
    capture: Path, config: Path
) -> None:
    code, report = await shadow(capture, config, InviteServer(wrong_from=True), *NUMBERED)
    assert code == 1 and report["verdict"] == "divergent"
    assert report["fidelity"]["sessions"]["reproduced"] == 2  # the baseline reproduced
    assert "from" in json.dumps(report["differences"])


def test_captures_ls_names_each_sessions_credentials(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["captures", "ls", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "credentials" in out.splitlines()[0]
    assert sorted(re.findall(r"authorization#\d", out)) == ["authorization#1", "authorization#2"]


async def test_a_capture_without_numbers_still_replays_with_a_plain_credential(
    capture: Path, tmp_path: Path
) -> None:
    """A capture from before numbering: its placeholders are ``${redacted:header:authorization}``."""
    jsonl = tmp_path / "invite.jsonl"
    assert main(["captures", "export", str(capture), str(jsonl), "--recorded"]) == 0
    older = re.sub(r"(\$\{redacted:[a-z]+:[a-z_.-]+)#\d+\}", r"\1}", jsonl.read_text())
    assert "#1}" not in older and "${redacted:header:authorization}" in older
    jsonl.write_text(older)
    old = tmp_path / "old.db"
    assert main(["captures", "import", str(jsonl), str(old)]) == 0
    async with serving_aiohttp(InviteServer().app()) as target:
        args = ["replay", str(old), "--target", target, "--run", "r", "--no-links",
                "--credential", f"authorization={ANN}"]  # fmt: skip
        assert await asyncio.to_thread(main, args) == 0
    with CaptureStore.open(old) as store:
        replayed = list(store.iter_sessions("r"))
    assert len(replayed) == 2 and all(s.handshake.status == 101 for s in replayed)
    welcomes = [json.loads(str(s.server_messages()[0].payload)) for s in replayed]
    assert welcomes == [{"type": "welcome", "user": "ann"}] * 2
