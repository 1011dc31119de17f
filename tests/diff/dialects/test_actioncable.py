"""ActionCable from spec-derived messages (ActionCable is a Rails server: no Python package
serves it; messages follow actioncable's connection and consumer code)."""

import json

from tests.diff.dialects.dialectkit import C, S, detected, diff, names

CHAT = json.dumps({"channel": "ChatChannel", "room": "1"})
NEWS = json.dumps({"channel": "NewsChannel"})


def cable(text: str = "hi", swap: bool = False, ping: int = 1) -> list:
    pushes = [S({"identifier": CHAT, "message": {"text": text, "user": "u1"}}),
              S({"identifier": NEWS, "message": {"headline": "x"}})]  # fmt: skip
    return [
        S({"type": "welcome"}),
        C({"command": "subscribe", "identifier": CHAT}),
        C({"command": "subscribe", "identifier": NEWS}),
        S({"identifier": CHAT, "type": "confirm_subscription"}),
        S({"identifier": NEWS, "type": "confirm_subscription"}),
        C({"command": "message", "identifier": CHAT,
           "data": json.dumps({"action": "speak", "text": text})}),
        *(pushes[::-1] if swap else pushes),
        S({"type": "ping", "message": 1764150000 + ping}),
    ]  # fmt: skip


def test_detected_by_subprotocol_and_welcome():
    assert detected(cable(), subprotocol="actioncable-v1-json") == "actioncable"
    assert detected(cable()) == "actioncable"


def test_identical_and_pings_are_equivalent():
    assert diff(cable(), cable(ping=5)) == ("actioncable", [])


def test_changed_broadcast_names_channel_and_path():
    assert names(diff(cable(), cable(text="yo"))[1]) == [
        ("changed_value", "ChatChannel message", "text")
    ]


def test_channels_interleaving_differently_is_no_difference():
    assert diff(cable(), cable(swap=True))[1] == []
