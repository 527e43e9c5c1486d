"""The Session API under the real engine: each member exercised by an action in
tests/fixtures/session_api, which reports what it got through properties."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from msica.author import wxs
from msica.build import builder, config
from msica.customactiondata import encode
from msica.testing import runner
from tests.helpers import FIXTURES, REPO, windows_path, wine_command, wixl_msi, zig_cc

pytestmark = pytest.mark.engine

SECRET = "Sup3r-S3cret-Value"

# Where the Explore action retargets INSTALLDIR (C:\msica custom target\).
CUSTOM_TARGET = (
    Path(os.environ.get("WINEPREFIX", Path.home() / ".wine")) / "drive_c" / "msica custom target"
)

# Values DTF's CustomActionData cannot carry, through a real deferred action. The
# literal part stays within cp1252 (wixl 0.101 crashes on other characters in
# a literal, measured); text beyond it arrives at run time from the command
# line through [UNI], inserted as it is (it holds no ';').
LITERAL_DATA = {
    "SEMI": "a;b;;c;",
    "EQUALS": "x=y==z",
    "LEADING": "=starts with equals",
    "EMPTY": "",
    "NEWLINES": "line one\nline two",
    "LATIN": "Grüße, café, niño",
    "ARROWS": "<=>",
    "MORE_ARROWS": "<<=>>=<=>;<=;>",
    "PATH": "C:\\Program Files\\app\\",
    "LONG": "é;=" * 1500,
}
UNI = "東京 Ωλ ü"
# What UsesData declares with uses=, given on the command line (Wine cannot pass a
# double quote or a newline there; Explore sets AWK_NEWLINES; AWK_UNSET is unset).
USED = {
    "AWK_SEMI": "a;b;;c;",
    "AWK_ARROWS": "x<=>y <=><=>",
    "AWK_EQUALS": "=lead=and=more",
    "AWK_PATH": "C:\\ProgramData\\app\\",  # no space: see msica.testing.runner
    "AWK_UNICODE": "東京 Ωλ",
}
AWKWARD_DATA = {**LITERAL_DATA, "UNICODE": UNI}
DATA_WXI = (
    '<Include xmlns="http://schemas.microsoft.com/wix/2006/wi">\n'
    '  <CustomAction Id="SetReadData" Property="ReadData" Value='
    + quoteattr(encode(LITERAL_DATA) + ";UNICODE=[UNI]", {"\n": "&#10;"})
    + '/>\n  <InstallExecuteSequence><Custom Action="SetReadData" Sequence="1498"/>'
    "</InstallExecuteSequence>\n</Include>\n"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> runner.InstallResult:
    project = tmp_path_factory.mktemp("session") / "session_api"
    shutil.copytree(FIXTURES / "session_api", project)
    dll = builder.build(project, config.load(project))[0].dll
    wxs.write(dll, project / "actions.wxi")
    (project / "data.wxi").write_text(DATA_WXI, encoding="utf-8")
    msi = wixl_msi(project / "product.wxs", project / "session.msi")
    shutil.rmtree(CUSTOM_TARGET, ignore_errors=True)  # left by an earlier run
    return runner.install(msi, {"PASSWORD": SECRET, "UNI": UNI, **USED},
                          log_path=project / "session.log", timeout=120)


def _api(result: runner.InstallResult, key: str) -> str:
    return result.log.properties[f"API_{key}"]


def test_immediate_action_sees_the_running_install(installed: runner.InstallResult) -> None:
    assert installed.succeeded, installed.log.msica_lines
    assert _api(installed, "SCHEDULED") == "False"
    assert _api(installed, "IN_SCRIPT") == "False"
    assert _api(installed, "LANGUAGE") == "1033"
    assert _api(installed, "PRODUCT_CODE") == installed.log.properties["ProductCode"]
    assert _api(installed, "HAS_PRODUCT_NAME") == "True"
    assert _api(installed, "HAS_NOTHING") == "False"
    assert _api(installed, "DEFAULTED") == "fallback"
    assert (_api(installed, "SET_THEN"), _api(installed, "DELETED_NOW")) == ("True", "True")


def test_format_and_conditions(installed: runner.InstallResult) -> None:
    # [[]...[]] are MSI's escapes for brackets; the log dump would expand real ones,
    # so the action's text is checked with them spelled < >.
    assert _api(installed, "FORMATTED") == "msica session test in <brackets> ok"
    assert _api(installed, "COND_TRUE") == "True"
    assert _api(installed, "COND_FALSE") == "False"
    assert _api(installed, "BAD_CONDITION") == "the condition '1 = = 2' is not valid MSI syntax"


def test_directories_disk_and_actions(installed: runner.InstallResult) -> None:
    assert _api(installed, "TARGET_BEFORE") == "C:\\Program Files\\msica session test\\"
    assert _api(installed, "TARGET_AFTER") == "C:\\msica custom target\\"
    assert installed.log.properties["INSTALLDIR"] == "C:\\msica custom target\\"
    assert _api(installed, "SOURCE").endswith("\\")
    assert _api(installed, "BAD_DIRECTORY") == "267:MsiGetTargetPathW"
    # Windows answers True here; Wine's msi.dll has no MsiVerifyDiskSpace, and
    # msica says so instead of letting the stub end the custom-action server.
    assert _api(installed, "DISK_OK").startswith(
        "unsupported: MsiVerifyDiskSpace is not implemented by Wine's msi.dll"
    )
    assert _api(installed, "DID_IT") == "yes"  # do_action ran the type 51 action
    assert installed.log.properties["INSTALLLEVEL"] == "3"


def test_deferred_action_is_guarded(installed: runner.InstallResult) -> None:
    lines = installed.log.action("DeferredGuard").lines
    product = installed.log.properties["ProductCode"]
    assert f"msica[DeferredGuard] deferred: in_script=True product={product}" in lines
    refused = [line for line in lines if line.startswith("msica[DeferredGuard] refused:")]
    assert len(refused) == 1, lines
    assert "not INSTALLDIR" in refused[0]
    assert "session['CustomActionData']" in refused[0]


def test_features_components_and_messages(installed: runner.InstallResult) -> None:
    # A first install: nothing was installed; CostFinalize asked for LOCAL.
    assert _api(installed, "MAIN") == "ABSENT>LOCAL"
    assert _api(installed, "COMPONENT") == "ABSENT>LOCAL"
    assert _api(installed, "EXTRA") == "ABSENT"
    assert "message one and 2" in installed.log.action("Explore").lines
    assert _api(installed, "ANSWER") in ("NONE", "OK")


def test_requests_reach_the_disk(installed: runner.InstallResult) -> None:
    """The retargeted folder was made; the folder of the feature asked absent was not."""
    assert CUSTOM_TARGET.is_dir()
    assert not (CUSTOM_TARGET / "extra").exists()


def test_database_queries_and_temporary_rows(installed: runner.InstallResult) -> None:
    props = installed.log.properties
    assert props["DB_ROWS"] == "'ProductName', 'msica session test'"
    assert props["DB_TABLES"] == "Feature,Property"
    assert props["DB_HAS"] == "(True, False, True, False)"
    assert props["DB_FEATURES"] == "'Extra', 1 | 'Main', 1"  # Level is an integer column
    # wixl writes the product name as the subject, page count 500 (the InstallerVersion),
    # and a package code GUID as the revision number.
    assert props["DB_SUMMARY"] == "msica session test|500|38"
    # Rows a former action inserted as TEMPORARY are there for a later one.
    assert props["DB_READ_BACK"] == (
        "'TEMP_ONE', 'it\\'s; a \"value\" = 1' | 'TEMP_TWO', 'second'"
    )
    assert installed.log.action("ReadBack").return_value == 1
    # ReadBack then updated one through a record, deleted one with SQL and
    # inserted one through the view; a third action sees exactly that.
    assert props["DB_READ_AGAIN"] == "'TEMP_THREE', 'third' | 'TEMP_TWO', 'second, updated'"


def test_user_sid_and_a_run_mode_the_action_sets(installed: runner.InstallResult) -> None:
    assert installed.log.properties["SEEN_USER_SID"] == "True"
    assert installed.log.properties["REBOOT_MODE"] == "True"
    # The engine heard it: success, reboot required (ERROR_SUCCESS_REBOOT_REQUIRED).
    assert installed.exit_code == 3010


def test_hidden_values_never_reach_msica_lines(installed: runner.InstallResult) -> None:
    lines = installed.log.msica_lines
    assert installed.log.properties["PASSWORD_SHA"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert not [line for line in lines if SECRET in line]
    text = "\n".join(lines)
    for expected in (
        "msica[UseSecret] the password is ******",
        "msica[UseSecret] printed ******",
        "ValueError: rejected ******",
        "msica[HiddenDeferred] deferred got ******",  # the whole data is hidden
    ):
        assert expected in text, text


def test_awkward_values_reach_a_deferred_action_intact(installed: runner.InstallResult) -> None:
    lines = installed.log.action("ReadData").lines
    for key, value in AWKWARD_DATA.items():
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        assert f"msica[ReadData] data {key} {len(value)} {digest}" in lines, (key, lines)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[int, list[str]]]:
    """Installs a fresh build of the package under tests/engine/c/ui_recorder.c, an
    external UI handler (MsiSetExternalUIW + MsiInstallProductW) that writes down
    every message a UI is sent and answers warnings with Cancel."""
    tmp = tmp_path_factory.mktemp("ui")
    recorder = zig_cc(tmp, [REPO / "tests/engine/c/ui_recorder.c"],
                      "-target", "x86_64-windows-gnu", "-municode", "-lmsi",
                      output_name="ui_recorder.exe")
    project = tmp / "session_api"
    shutil.copytree(FIXTURES / "session_api", project)
    dll = builder.build(project, config.load(project))[0].dll
    wxs.write(dll, project / "actions.wxi")
    (project / "data.wxi").write_text(DATA_WXI, encoding="utf-8")

    def record(name: str, *properties: str) -> tuple[int, list[str]]:
        msi = wixl_msi(project / "product.wxs", project / f"{name}.msi")
        seen = tmp / f"{name}.txt"
        for _ in range(2):
            seen.unlink(missing_ok=True)
            done = subprocess.run(
                [*wine_command(), str(recorder), windows_path(msi), windows_path(seen),
                 f"PASSWORD={SECRET}", "UNI=u", *properties],
                capture_output=True, timeout=120, env={**os.environ, "WINEDEBUG": "-all"},
            )
            lines = seen.read_text(encoding="utf-8-sig").splitlines() if seen.is_file() else []
            # MsiInstallProductW's return, as the recorder wrote it before exiting:
            # the question is what the engine returned, whatever Wine does at exit.
            results = [line.split()[1] for line in lines if line.startswith("result ")]
            if results or done.returncode >= 0:
                break
            # Killed by a signal before the engine returned: Wine's own crash (seen
            # once in CI, SIGSEGV in the recorder's process); one more run.
        assert len(results) == 1, (
            f"the recorder ended with status {done.returncode} before MsiInstallProductW "
            f"returned; stderr: {done.stderr.decode(errors='replace')[-2000:]}; seen: {lines}"
        )
        return int(results[0]), lines

    return record


def test_progress_reaches_the_installer_ui(
    recorded: Callable[..., tuple[int, list[str]]],
) -> None:
    """Wine's verbose log has no progress messages; an external UI sees them."""
    code, lines = recorded("progress")
    assert code == 3010  # reboot required, from set_mode
    assert "0a000000 1: 3 2: 12345 3: 0 " in lines  # Explore added to the total
    assert "0a000000 1: 1 2: 777 3: 1 " in lines  # ReadData: ticks per action data
    assert "09000000 reading data" in lines
    assert "0a000000 1: 2 2: 4321 3: 0 " in lines  # ReadData reported its ticks


def test_a_users_cancel_ends_the_install_with_1602(
    recorded: Callable[..., tuple[int, list[str]]],
) -> None:
    code, lines = recorded("cancel", "CANCEL_TEST=1")
    assert "02000000 Go on with the test?" in lines  # the question the UI was asked
    assert code == 1602  # the UI's Cancel became the action's 1602
    assert not any(line.startswith("04000000 msica[ReadData]") for line in lines)


def test_uses_passes_properties_to_a_deferred_action_exactly(
    installed: runner.InstallResult,
) -> None:
    lines = installed.log.action("UsesData").lines
    expected = {**USED, "AWK_NEWLINES": "line one\nline two", "AWK_UNSET": ""}
    for key, value in expected.items():
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        assert f"msica[UsesData] uses {key} {len(value)} {digest}" in lines, (key, lines)
    # msica's immediate setter ran first, in the same DLL.
    assert installed.log.action("MsicaData_UsesData").return_value == 1
