"""msica log FILE and the summary msica run prints: from literal logs in Windows' and Wine's
format (tests/engine/test_run_and_log.py does the same on real installs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msica.cli import main as msica_main
from msica.testing import report
from msica.testing.log import parse_log
from tests.unit.test_log import WINDOWS_FAILED

# Wine's shape: a failed msica action ends with 0, and so does INSTALL, which it stopped.
WINE_FAILED = """\
=== Logging started: 11/21/2026  5:23:04 ===
Action start 5:23:04: INSTALL.
Action start 5:23:04: Greet.
msica[Greet] hello
Action ended 5:23:04: Greet. Return value 1.
Action start 5:23:05: Explode.
msica[Explode] about to fail
msica[Explode] action failed:
Traceback (most recent call last):
  File "C:\\users\\x\\actions.py", line 9, in Explode
    raise ValueError("asked to fail: boom")
ValueError: asked to fail: boom
Action ended 5:23:05: Explode. Return value 0.
Action ended 5:23:05: INSTALL. Return value 0.
Property(S): GREETING = hello
Property(S): FAIL_WITH = boom
Property(S): ProductName = lifecycle
"""

WINE_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "C:\\users\\x\\actions.py", line 9, in Explode\n'
    '    raise ValueError("asked to fail: boom")\n'
    "ValueError: asked to fail: boom"
)


def test_document_of_a_failed_wine_log() -> None:
    data = report.document(parse_log(WINE_FAILED))
    assert data["exit_code"] is None  # Wine logs record none
    assert data["succeeded"] is False
    assert data["engine"] == "wine"
    assert data["failed_action"] == "Explode"
    assert data["failure"]["traceback"] == WINE_TRACEBACK
    assert data["failure"]["msica_lines"][0] == "msica[Explode] about to fail"
    assert [(a["name"], a["return_value"], a["outcome"]) for a in data["actions"]] == [
        ("INSTALL", 3, "failed"), ("Greet", 1, "succeeded"), ("Explode", 3, "failed"),
    ]
    greet = data["actions"][1]
    assert (greet["msica_lines"], greet["traceback"]) == (["msica[Greet] hello"], None)
    assert data["properties"] == {"GREETING": "hello", "FAIL_WITH": "boom",
                                  "ProductName": "lifecycle"}


def test_msica_log_text_points_at_the_failed_action_and_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "install.log"
    log.write_bytes(WINE_FAILED.replace("\n", "\r\n").encode("cp1252"))
    assert msica_main(["log", str(log), "--show-property", "GREETING"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"log {log}: failed (log: {log})"
    assert "  Greet succeeded:" in out
    assert "  property GREETING = 'hello'" in out
    failure = out.index("  failed action: Explode")
    assert out[failure + 1:] == [f"    {line}" for line in WINE_TRACEBACK.splitlines()]


def test_msica_log_json_of_a_windows_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "windows.log"
    log.write_bytes(b"\xff\xfe" + WINDOWS_FAILED.replace("\n", "\r\n").encode("utf-16-le"))
    assert msica_main(["log", str(log), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["exit_code"], data["engine"], data["failed_action"]) == (1603, "windows", "MyCA")
    assert data["failure"]["traceback"].endswith(
        "FunctionFailedError: MsiDoAction failed with error 1627")
    assert data["failure"]["lines"][-1].startswith(
        "CustomAction MyCA returned actual error code 1603")
    assert data["properties"]["MULTI"] == "line one\nline two"


def test_a_failed_action_without_msica_lines_shows_its_last_log_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "native.log"
    log.write_text(WINDOWS_FAILED.replace("msica[MyCA] Traceback", "Traceback"),
                   encoding="utf-8")
    assert msica_main(["log", str(log)]) == 1
    out = capsys.readouterr().out
    assert "  failed action: MyCA\n    its last log lines:\n" in out
    assert "CustomAction MyCA returned actual error code 1603" in out


def test_msica_log_of_a_successful_log_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "ok.log"
    log.write_text(WINE_FAILED.split("Action start 5:23:05: Explode.")[0]
                   + "Action ended 5:23:05: INSTALL. Return value 1.\n", encoding="utf-8")
    assert msica_main(["log", str(log), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["succeeded"], data["failure"]) == (True, None)


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("just some text\n", "holds no actions and no properties"),
])
def test_msica_log_refuses_what_is_not_a_verbose_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    log = tmp_path / "x.log"
    if content is not None:
        log.write_text(content, encoding="utf-8")
    assert msica_main(["log", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msica: error: ") and message in err and "msiexec /l*v" in err
