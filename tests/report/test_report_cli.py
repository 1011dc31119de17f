"""``wsshadow report``: run in-process, real files, exit codes and one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.report.report_fixtures import FIXTURE, GOLDEN, columns_collapsed
from wsshadow.replay.cli import main


def test_text_to_stdout_matches_golden_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert columns_collapsed(out) == columns_collapsed((GOLDEN / "report.txt").read_text("utf-8"))


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("json", lambda text: json.loads(text)["schema_version"] == 1),
        ("junit", lambda text: ET.fromstring(text.encode()).tag == "testsuites"),
        ("markdown", lambda text: text.startswith("### ❌ wsshadow: divergent")),
        ("html", lambda text: text.startswith("<!DOCTYPE html>")),
    ],
)
def test_each_format(fmt: str, check, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["report", str(FIXTURE), "--format", fmt]) == 0
    assert check(capsys.readouterr().out)


def test_output_file_format_from_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, marker in (
        ("r.html", "<!DOCTYPE html>"),
        ("r.xml", "<?xml"),
        ("r.md", "### "),
        ("r.json", "{"),
        ("r.txt", "DIVERGENT"),
    ):
        assert main(["report", str(FIXTURE), "--output", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_text(encoding="utf-8").startswith(marker)
    assert "wrote the html report" in capsys.readouterr().err
    # --format wins over the extension
    assert main(["report", str(FIXTURE), "-f", "json", "-o", str(tmp_path / "x.txt")]) == 0
    assert json.loads((tmp_path / "x.txt").read_text())["verdict"] == "divergent"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a wsshadow report: expected a JSON object"),
        ('{"hello": 1}', "not a wsshadow report: no schema_version"),
        ('{"schema_version": 7}', "schema_version 7 is not supported"),
        ('{"schema_version": 1, "verdict": "divergent"}', "missing sessions, differences, noise"),
        (
            '{"schema_version": 1, "verdict": "maybe", "sessions": {}, "differences": [], "noise": []}',
            "verdict must be one of equivalent, divergent, inconclusive",
        ),
        (
            '{"schema_version": 1, "verdict": "equivalent", "sessions": {"total": 1}, '
            '"differences": [], "noise": []}',
            "sessions.equivalent must be a non-negative integer",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    assert main(["report", str(path), "--format", "html"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err


def test_missing_file_and_unknown_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(FIXTURE), "-o", str(tmp_path / "r.pdf")]) == 2
    assert "cannot tell the report format" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()
    assert main(["report", str(FIXTURE), "-f", "pdf"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_every_format_writes_a_report_with_lone_surrogates_and_controls(tmp_path: Path) -> None:
    from tests.report.report_fixtures import load_fixture
    from wsshadow.replay.report.render import EXTENSIONS, load_report, write_report

    report = load_fixture()
    report["differences"][0]["signature"] += " \ud800\x00\u202e"
    report["session_details"][0]["rows"][0]["baseline"]["payload"] = {"x": "\udfff\x1b"}
    for ext in sorted(set(EXTENSIONS)):
        path = write_report(report, tmp_path / f"r{ext}")
        text = path.read_text(encoding="utf-8")
        assert "\x00" not in text and "\x1b" not in text
    assert load_report(tmp_path / "r.json") == report
