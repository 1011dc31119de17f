"""The help a person reads: workflow order, whole summaries, values named by words."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import wsshadow
from wsshadow.replay.cli import main
from wsshadow.replay.cli.app import WORKFLOW


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--version")
    assert (code, out.strip()) == (0, f"wsshadow {wsshadow.__version__}")


def test_commands_in_workflow_order_with_whole_summaries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _run(capsys, "-h")
    assert code == 0
    listed = re.findall(r"^  (\w+)\s", out.split("Commands:")[1], flags=re.M)
    assert listed == [c for c in WORKFLOW if c in listed]
    assert listed[:3] == ["record", "replay", "shadow"] and "demo" in listed
    assert "..." not in out.split("Commands:")[1]  # no summary cut off


COMMANDS = [
    ["record"], ["replay"], ["shadow"], ["diff"], ["report"], ["serve"], ["demo"],
    ["captures", "scenarios"],
    ["captures", "ls"], ["captures", "show"], ["captures", "export"],
    ["captures", "import"], ["captures", "merge"],
]  # fmt: skip


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_values_are_named_by_words(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out = _run(capsys, *argv, "--help")
    assert code == 0 and "Usage:" in out
    described = out.split("Arguments:")[-1]  # arguments and options
    assert not re.search(r"<(list\[|str>|int>|float>|path>|Path)", described), described


def test_no_redact_says_what_it_keeps(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _run(capsys, "record", "--help")
    text = " ".join(out.split())
    for word in ("Authorization", "Cookie", "subprotocols", "query parameters", "JSON fields"):
        assert word in text


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wsshadow.replay", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("wsshadow ")
