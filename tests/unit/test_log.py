"""msica.testing.log against real verbose logs and against the documented format.

The real logs come from Wine's msiexec installing a package built here (a small
C custom action DLL compiled with zig, an .msi compiled with wixl), once per
session. The Windows excerpts are literal strings: Windows is not available
here, so they follow the verbose log format Windows Installer documents and
writes (``MSI (s) (..)`` lines, ``Return value 3`` for a failure, the
``MainEngineThread is returning`` and ``Installation success or error status``
lines, ``Property(S)``/``Property(C)`` dumps).
"""

from __future__ import annotations

import codecs
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from msica.testing.log import ActionRun, LogSummary, decode_log, parse_log, read_log
from tests.helpers import FIXTURE_TRACEBACK, FIXTURES, fixture_msi, run_msiexec

GREETING = "héllo wörld"


@dataclass(frozen=True)
class RealLogs:
    success: Path
    failure: Path


def _need_tools() -> None:
    from msica.errors import EngineError
    from msica.testing.runner import find_engine

    try:
        find_engine()
    except EngineError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh installs it)")
    if shutil.which("wixl") is None:
        pytest.fail("wixl not found: scripts/setup.sh installs it (apt-get install wixl)")


@pytest.fixture(scope="session")
def real_logs(tmp_path_factory: pytest.TempPathFactory) -> RealLogs:
    _need_tools()
    tmp = tmp_path_factory.mktemp("log-fixture")
    msi = fixture_msi(tmp, name="msica log test")
    success, failure = tmp / "success.log", tmp / "failure.log"
    assert run_msiexec(msi, success, f"GREETING={GREETING}") == 0
    assert run_msiexec(msi, failure, "FAIL=1") != 0
    run_msiexec(msi, tmp / "uninstall.log", verb="/x")
    return RealLogs(success, failure)


@pytest.fixture(scope="session")
def success(real_logs: RealLogs) -> LogSummary:
    return read_log(real_logs.success)


@pytest.fixture(scope="session")
def failure(real_logs: RealLogs) -> LogSummary:
    return read_log(real_logs.failure)


# --- real logs written by Wine's msiexec ------------------------------------------------


@pytest.mark.engine
def test_wine_writes_the_ansi_code_page_and_read_log_decodes_it(real_logs: RealLogs) -> None:
    raw = real_logs.success.read_bytes()
    assert GREETING.encode("cp1252") in raw  # the fact read_log relies on
    assert read_log(real_logs.success).properties["GREETING"] == GREETING


@pytest.mark.engine
def test_real_success_properties_and_engine(success: LogSummary) -> None:
    assert success.engine == "wine"
    assert success.properties["GREETING"] == GREETING
    assert success.properties["RESULT_PROP"] == GREETING  # set by the action
    assert "RESULT_OTHER" not in success.properties  # OTHER was never set
    assert success.failed_action is None
    assert success.exit_status is None


@pytest.mark.engine
def test_real_success_actions_in_order_with_return_values(success: LogSummary) -> None:
    names = [run.name for run in success.actions]
    assert names.index("CostFinalize") < names.index("CopyProps") < names.index("InstallFinalize")
    assert "FailAction" not in names  # its condition was false
    run = success.action("CopyProps")
    assert (run.return_value, run.logged_return_value, run.failed) == (1, 1, False)
    assert success.action("INSTALL").return_value == 1


@pytest.mark.engine
def test_real_action_lines_join_a_multi_line_record(success: LogSummary) -> None:
    run = success.action("CopyProps")
    assert run.lines == ("msica: CopyProps ran", FIXTURE_TRACEBACK)
    assert success.msica_lines == ("msica: CopyProps ran", FIXTURE_TRACEBACK)
    # No record anywhere starts with a piece of the traceback.
    everything = [line for action in success.actions for line in action.lines]
    assert not [line for line in everything if line.startswith(("  File", "ValueError"))]


@pytest.mark.engine
def test_real_failure_names_the_failed_action(failure: LogSummary) -> None:
    assert failure.failed_action == "FailAction"
    run = failure.action("FailAction")
    # Wine logs 0 for the failure; the summary reports it in Windows' terms.
    assert (run.logged_return_value, run.return_value, run.failed) == (0, 3, True)
    assert run.lines == ("msica: FailAction returns 1603",)
    assert failure.action("CopyProps").return_value == 1
    assert failure.action("INSTALL").failed
    assert "msica: FailAction returns 1603" in failure.msica_lines


@pytest.mark.engine
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-8"])
def test_read_log_accepts_other_encodings(
    real_logs: RealLogs, success: LogSummary, tmp_path: Path, encoding: str
) -> None:
    text = real_logs.success.read_bytes().decode("cp1252")
    copy = tmp_path / "copy.log"
    copy.write_bytes(text.encode(encoding))  # "utf-16" writes a BOM (LE here)
    if encoding == "utf-16":
        assert copy.read_bytes().startswith(codecs.BOM_UTF16_LE)
    assert read_log(copy) == success


@pytest.mark.engine
def test_action_lookup_error_names_what_was_logged(success: LogSummary) -> None:
    with pytest.raises(KeyError, match=r"no action 'Nope'.*CostFinalize.*CopyProps"):
        success.action("Nope")


# --- Windows' format (literal excerpts) ----------------------------------------------

# A backslash at the end of a line below continues the log line (Python's escape).
WINDOWS_FAILED = """\
=== Verbose logging started: 6/4/2024  12:00:00  Build type: SHIP UNICODE 5.00.10011.00  \
Calling process: C:\\WINDOWS\\system32\\msiexec.exe ===
MSI (c) (AC:B0) [12:00:00:100]: Resetting cached policy values
Action start 12:00:00: INSTALL.
MSI (s) (F0:CC) [12:00:01:000]: Doing action: Skipped
Action start 12:00:01: Skipped.
Action ended 12:00:01: Skipped. Return value 0.
MSI (s) (F0:CC) [12:00:01:200]: Doing action: MyCA
Action 12:00:01: MyCA.
Action start 12:00:01: MyCA.
MSI (s) (F0:E8) [12:00:01:250]: Invoking remote custom action. \
DLL: C:\\WINDOWS\\Installer\\MSI1234.tmp, Entrypoint: MyCA
msica[MyCA] Traceback (most recent call last):
  File "C:\\actions.py", line 7, in MyCA
    raise msica.errors.FunctionFailedError(1627, "MsiDoAction")
msica.errors.FunctionFailedError: MsiDoAction failed with error 1627
CustomAction MyCA returned actual error code 1603 \
(note this may not be 100% accurate if translation happened inside sandbox)
Action ended 12:00:01: MyCA. Return value 3.
Action ended 12:00:01: INSTALL. Return value 3.
Property(S): GREETING = first
Property(S): MULTI = line one
line two
Property(S): GREETING = second
MSI (s) (F0:CC) [12:00:02:000]: MainEngineThread is returning 1603
Property(C): GREETING = client view
MSI (c) (AC:B0) [12:00:02:100]: Windows Installer installed the product. Product Name: X. \
Product Version: 1.0.0. Product Language: 1033. Manufacturer: Y. \
Installation success or error status: 1603.
=== Verbose logging stopped: 6/4/2024  12:00:02 ===
"""


def test_windows_log_failure_and_exit_status() -> None:
    summary = parse_log(WINDOWS_FAILED.replace("\n", "\r\n"))
    assert summary.engine == "windows"
    assert summary.failed_action == "MyCA"
    assert summary.action("MyCA").return_value == 3
    assert summary.action("MyCA").logged_return_value == 3
    assert summary.action("INSTALL").failed
    assert summary.custom_action_errors == {"MyCA": 1603}
    assert summary.exit_status == 1603


def test_windows_return_value_0_means_not_executed() -> None:
    skipped = parse_log(WINDOWS_FAILED).action("Skipped")
    assert (skipped.return_value, skipped.failed) == (0, False)


def test_windows_properties_last_value_wins_and_sides_are_kept_apart() -> None:
    summary = parse_log(WINDOWS_FAILED)
    assert summary.properties["GREETING"] == "second"
    assert summary.properties["MULTI"] == "line one\nline two"
    assert summary.client_properties == {"GREETING": "client view"}


def test_windows_action_lines_keep_engine_lines_and_the_joined_traceback() -> None:
    run = parse_log(WINDOWS_FAILED).action("MyCA")
    traceback = (
        "msica[MyCA] Traceback (most recent call last):\n"
        '  File "C:\\actions.py", line 7, in MyCA\n'
        '    raise msica.errors.FunctionFailedError(1627, "MsiDoAction")\n'
        "msica.errors.FunctionFailedError: MsiDoAction failed with error 1627"
    )
    assert run.lines[0].startswith("MSI (s) (F0:E8) [12:00:01:250]: Invoking remote")
    assert run.lines[1] == traceback
    assert run.lines[2].startswith("CustomAction MyCA returned actual error code 1603")
    assert parse_log(WINDOWS_FAILED).msica_lines == (traceback,)


# --- Wine's format and continuation (literal excerpts) ----------------------------

# Wine's shape, as in the real logs above: no "MSI (s)" lines, 1/0 return values.
WINE_NOT_CALLED = """\
=== Logging started: 11/21/2026  5:23:04 ===
Action start 5:23:04: INSTALL.
Action start 5:23:04: Missing.
Action ended 5:23:04: Missing. Return value 0.
Action start 5:23:04: InstallFinalize.
Action start 5:23:04: ProcessComponents.
1: {D226FD7E-7F04-4AB0-9BA2-EDA457EEAC84} 2: {9B2F0C1E-5D3A-4F6B-8C7D-2E1A0B9C8D7E}
Action ended 5:23:04: ProcessComponents. Return value 1.
Feature: F
Action ended 5:23:04: InstallFinalize. Return value 1.
Action ended 5:23:04: INSTALL. Return value 1.
"""


def test_wine_zero_that_stopped_nothing_is_not_a_failure() -> None:
    summary = parse_log(WINE_NOT_CALLED)
    missing = summary.action("Missing")
    assert (missing.logged_return_value, missing.return_value, missing.failed) == (0, 0, False)
    assert summary.failed_action is None


def test_lines_belong_to_the_innermost_running_action() -> None:
    summary = parse_log(WINE_NOT_CALLED)
    assert summary.action("ProcessComponents").lines == (
        "1: {D226FD7E-7F04-4AB0-9BA2-EDA457EEAC84} 2: {9B2F0C1E-5D3A-4F6B-8C7D-2E1A0B9C8D7E}",
    )
    assert summary.action("InstallFinalize").lines == ("Feature: F",)
    assert summary.action("INSTALL").lines == ()


def test_continuation_keeps_inner_blank_lines_and_drops_trailing_ones() -> None:
    text = (
        "Action start 5:16:53: MyCA.\n"
        "msica[MyCA] Traceback (most recent call last):\n"
        '  File "a.py", line 1, in MyCA\n'
        "KeyError: 'x'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "ValueError: y\n"
        "\n"
        "msica: shim line\n"
        "Action ended 5:16:53: MyCA. Return value 1.\n"
    )
    run = parse_log(text).action("MyCA")
    assert run.lines == (
        "msica[MyCA] Traceback (most recent call last):\n"
        '  File "a.py", line 1, in MyCA\n'
        "KeyError: 'x'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "ValueError: y",
        "msica: shim line",
    )


def test_an_action_the_log_never_ends_has_no_return_value() -> None:
    summary = parse_log("Action start 5:16:53: Hung.\nmsica: still going\n")
    assert summary.actions == (ActionRun("Hung", None, ("msica: still going",), None),)
    assert summary.failed_action is None


def test_the_last_run_of_an_action_is_returned() -> None:
    text = (
        "Action start 1:00:00: A.\nmsica: first\nAction ended 1:00:00: A. Return value 1.\n"
        "Action start 1:00:01: A.\nmsica: second\nAction ended 1:00:01: A. Return value 1.\n"
    )
    assert parse_log(text).action("A").lines == ("msica: second",)


def test_decode_log_falls_back_to_cp1252_and_reads_utf16_without_bom() -> None:
    assert decode_log("Property(S): P = h\xe9llo\r\n".encode("cp1252")) == (
        "Property(S): P = h\xe9llo\r\n"
    )
    assert decode_log(b"\x81 undefined in cp1252") == "\ufffd undefined in cp1252"
    assert decode_log("Action start 1:00:00: A.".encode("utf-16-le")) == (
        "Action start 1:00:00: A."
    )


def test_a_plain_line_after_an_action_line_is_its_own_record() -> None:
    """Measured with Wine: a message logged after a nested MsiDoAction has no prefix."""
    text = (
        "Action start 6:33:51: Explore.\n"
        "Action 6:33:51: SetByDoAction. \n"
        "Action start 6:33:51: SetByDoAction.\n"
        "Action ended 6:33:51: SetByDoAction. Return value 1.\n"
        "message one and 2\n"
        "second line of it\n"
        "Action ended 6:33:51: Explore. Return value 1.\n"
    )
    summary = parse_log(text)
    assert summary.action("Explore").lines == (
        "Action 6:33:51: SetByDoAction. ",
        "message one and 2\nsecond line of it",
    )
    assert summary.action("SetByDoAction").return_value == 1


# Wine with a MajorUpgrade (excerpt): MigrateFeatureStates ends with 0 and the
# sequence goes on; the custom action that fails later is the one to point at.
WINE_ZERO_THEN_FAILURE = (FIXTURES / "logs" / "wine-zero-then-failure.log").read_text()


def test_wine_zero_the_sequence_went_past_is_not_the_failure() -> None:
    summary = parse_log(WINE_ZERO_THEN_FAILURE)
    assert summary.action("MigrateFeatureStates").failed is False
    assert summary.action("DoWork").failed is True
    assert summary.failed_action == "DoWork"
