"""The five planted regressions: present on the consolidated server, absent on legacy,
and nothing else differs once the noise (clocks, generated ids, the race) is removed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.timeouts import scaled

VOLATILE = {"timestamp", "server_time", "connection_id", "run_id", "request_id"}
USER = "judy-jablonski"  # longer than eight characters


def normalize(value: Any) -> Any:
    """Drop the fields that differ on every run (the demo's noise)."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


@dataclass(frozen=True)
class Transcript:
    subprotocol: str | None
    messages: tuple[Any, ...]
    close: int | None


async def transcript(base: str, route: str, script: str, *, browser: bool) -> Transcript:
    """Play one fixed exchange and return its normalized transcript."""
    kwargs: dict[str, Any] = {"open_timeout": 5, "ping_interval": None}
    if script != "unauth":
        token = f"user-{USER}"
        if browser:
            kwargs["subprotocols"] = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]
        else:
            kwargs["additional_headers"] = [("Authorization", f"Bearer {token}")]
    frames: list[str] = []
    if script == "golden":
        for i, text in enumerate(("Hello there", "What is the weather in Lisbon tomorrow?")):
            payload: dict[str, Any] = {"text": text, "thread_id": "t-1"}
            if i == 0 and "isolated" in route:
                payload["user_id"] = USER
            frames.append(json.dumps({"type": "user_message", "payload": payload}))
        frames += [json.dumps({"type": t, "payload": {}}) for t in ("ping", "heartbeat", "typing")]
    elif script == "bad_json":
        frames.append("{'type': 'user_message'")
    got: list[Any] = []
    async with connect(base + route, **kwargs) as ws:
        try:
            async with asyncio.timeout(scaled(5)):
                if script == "unauth":
                    while True:
                        got.append(json.loads(await ws.recv()))
                greeting = 0 if "factory" in route else 1 if "isolated" in route else 2
                got += [json.loads(await ws.recv()) for _ in range(greeting)]
                got.sort(key=lambda m: m["type"])  # the heartbeat races the welcome
                for frame in frames:
                    await ws.send(frame)
                    while True:
                        got.append(json.loads(await ws.recv()))
                        if got[-1]["type"] not in (
                            "agent_started",
                            "agent_thinking",
                            "tool_executing",
                            "tool_completed",
                        ):
                            break
        except ConnectionClosed:
            pass
    return Transcript(ws.subprotocol, tuple(normalize(got)), ws.close_code)


LEGACY_TO_CONSOLIDATED = {
    "/ws": ["/ws", "/ws?mode=main"],
    "/websocket": ["/websocket", "/ws?mode=legacy"],
    "/ws/factory": ["/ws/factory", "/ws?mode=factory"],
    "/ws/isolated": ["/ws/isolated", "/ws?mode=isolated"],
}
CASES = [
    (old, new, script, browser)
    for old, news in LEGACY_TO_CONSOLIDATED.items()
    for new in news
    for script in ("golden", "bad_json", "unauth")
    for browser in (True, False)
]


def expected_candidate(old: str, script: str, browser: bool, baseline: Transcript) -> Transcript:
    """The legacy transcript with exactly the planted regressions applied."""
    t = baseline
    if old == "/ws":
        if browser and script != "unauth":  # (4) echoes the token-bearing subprotocol
            t = replace(t, subprotocol=f"jwt.user-{USER}")
        if script == "unauth":  # (2) 1008, not 1011
            assert t.close == 1011
            t = replace(t, close=1008)
        if script == "bad_json":  # (3) JSON_PARSE_ERROR, not FORMAT_ERROR
            msgs = [
                {**m, "error_code": "JSON_PARSE_ERROR"}
                if m.get("error_code") == "FORMAT_ERROR"
                else m
                for m in t.messages
            ]
            assert msgs != list(t.messages)
            t = replace(t, messages=tuple(msgs))
    if old == "/ws/factory":  # (1) agent_thinking dropped
        msgs = [m for m in t.messages if m["type"] != "agent_thinking"]
        if script == "golden":
            assert len(msgs) == len(t.messages) - 2
        t = replace(t, messages=tuple(msgs))
    if old == "/ws/isolated":  # (5) user_context.user_id truncated
        msgs = [
            {**m, "user_context": {"user_id": USER[:8] + "..."}} if "user_context" in m else m
            for m in t.messages
        ]
        if script == "golden":
            assert sum("user_context" in m for m in msgs) == 10
        t = replace(t, messages=tuple(msgs))
    return t


@pytest.mark.parametrize(("old", "new", "script", "browser"), CASES)
async def test_only_the_planted_regressions_differ(
    legacy: str, consolidated: str, old: str, new: str, script: str, browser: bool
) -> None:
    baseline, again, candidate = await asyncio.gather(
        transcript(legacy, old, script, browser=browser),
        transcript(legacy, old, script, browser=browser),
        transcript(consolidated, new, script, browser=browser),
    )
    assert baseline == again  # normalization removes all the noise
    assert candidate == expected_candidate(old, script, browser, baseline)
    if script == "golden":
        assert baseline.messages, "the exchange produced messages"


async def test_main_regressions_spelled_out(legacy: str, consolidated: str) -> None:
    old = await transcript(legacy, "/ws", "bad_json", browser=True)
    new = await transcript(consolidated, "/ws?mode=main", "bad_json", browser=True)
    assert (old.subprotocol, new.subprotocol) == ("jwt-auth", f"jwt.user-{USER}")
    assert [m.get("error_code") for m in old.messages][-1] == "FORMAT_ERROR"
    assert [m.get("error_code") for m in new.messages][-1] == "JSON_PARSE_ERROR"
    old_u = await transcript(legacy, "/ws", "unauth", browser=False)
    new_u = await transcript(consolidated, "/ws", "unauth", browser=False)
    assert (old_u.close, new_u.close) == (1011, 1008)
    assert (
        old_u.messages
        == new_u.messages
        == (
            {
                "type": "error_message",
                "error_code": "NO_TOKEN",
                "error_message": old_u.messages[0]["error_message"],
            },
        )
    )
