"""JSON framed in text messages: found, redacted, filled back the way it was framed."""

import json

import pytest

from wsshadow.replay.capture.framing import json_spans, rewrite_json_text
from wsshadow.replay.capture.redact import Redactor
from wsshadow.replay.engine.credentials import Credentials

CABLE = json.dumps({"command": "message", "identifier": "{}",
                    "data": json.dumps({"action": "auth", "token": "abc"})})  # fmt: skip


@pytest.mark.parametrize(
    ("text", "docs"),
    [
        ('{"a": 1}', ['{"a": 1}']),
        ('42["chat",{"a":1}]', ['["chat",{"a":1}]']),
        (
            '451-/admin,7["up",{"_placeholder":true,"num":0}]',
            ['["up",{"_placeholder":true,"num":0}]'],
        ),
        ('{"type":1}\x1e{"type":6}\x1e', ['{"type":1}', '{"type":6}']),
        ("SEND\ndestination:/a\n\n[1, 2]\x00", ["[1, 2]"]),
        ('{"n":1}\n{"n":2}\n', ['{"n":1}', '{"n":2}']),
        ("hello there", []),
        ('prefix that is far too long to be a framing prefix {"a": 1}', []),
    ],
)
def test_json_spans(text: str, docs: list[str]) -> None:
    assert [text[a:b] for a, b in json_spans(text)] == docs


def test_rewrite_keeps_untouched_documents_and_framing() -> None:
    text = '{"a":"x"}\x1e{"b": "keep"}\x1e'
    assert (
        rewrite_json_text(text, lambda s: s.upper() if s == "x" else s)
        == '{"a":"X"}\x1e{"b": "keep"}\x1e'
    )
    assert rewrite_json_text("plain x", lambda s: s.replace("x", "y")) == "plain y"


def test_redaction_reaches_framed_and_nested_json() -> None:
    r = Redactor()
    assert r.text('42["login",{"password":"hunter2"}]') == (
        '42["login",{"password":"${redacted:json:password#1}"}]'
    )
    nested = json.loads(json.loads(r.text(CABLE))["data"])
    assert nested == {"action": "auth", "token": "${redacted:json:token#2}"}


def test_credentials_fill_framed_and_nested_json_escaped_once_per_level() -> None:
    creds = Credentials.resolve({"token": 'T"1', "password": 'p"w'}, {})
    r = Redactor()
    sio = creds.fill_json_text(r.text('42["login",{"password":"hunter2"}]'))
    assert json.loads(sio[2:]) == ["login", {"password": 'p"w'}]
    cable = creds.fill_json_text(r.text(CABLE))
    assert json.loads(json.loads(cable)["data"])["token"] == 'T"1'
