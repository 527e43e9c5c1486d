"""The whole path, for real: Python source -> msica build -> msica wxs -> wixl ->
wine64 msiexec -> effects in the verbose log.

Wine reports success even for a missing export or a crashed action, so these
tests assert on what the actions did: properties they computed from what they
read, lines they wrote, and the return value the engine recorded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from msica.build import builder, config
from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine

# A hung action fails the test in two minutes rather than the runner's ten.
ENGINE_TIMEOUT = 120

# Long enough to need a second MsiGetPropertyW call (ERROR_MORE_DATA), with
# text outside the log's code page, brackets, ";", "=" and "%" (Wine cannot pass a
# double quote or a run of spaces on the msiexec command line: see msica.testing.runner).
AWKWARD = "Grüße, 東京 & Ωmega; a=b [x] 100% " + "λ" * 400


@pytest.fixture(scope="module")
def echo_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("echo") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    results = builder.build(project, config.load(project))
    assert [r.dll.name for r in results] == ["echo.x64.dll"]
    assert msica_main(["wxs", str(results[0].dll), "-o", str(project / "actions.wxi")]) == 0
    return wixl_msi(project / "product.wxs", project / "echo.msi")


@pytest.fixture(scope="module")
def echo_install(echo_msi: Path) -> runner.InstallResult:
    return runner.install(echo_msi, {"ECHO_INPUT": AWKWARD},
                          log_path=echo_msi.with_suffix(".log"), timeout=ENGINE_TIMEOUT)


def test_action_reads_the_command_line_property_exactly(
    echo_install: runner.InstallResult,
) -> None:
    props = echo_install.log.properties
    assert echo_install.exit_code == 0
    assert props["ECHO_LENGTH"] == str(len(AWKWARD))
    assert props["ECHO_SHA256"] == hashlib.sha256(AWKWARD.encode("utf-8")).hexdigest()
    assert props["ECHO_COPY_MATCHES"] == "yes"


def test_action_writes_its_own_log_line(echo_install: runner.InstallResult) -> None:
    run = echo_install.log.action("Echo")
    assert run.return_value == 1
    assert f"msica[Echo] echo read {len(AWKWARD)} characters; brackets [stay] as written" in (
        run.lines
    )


def test_second_action_runs_through_its_own_export(echo_install: runner.InstallResult) -> None:
    run = echo_install.log.action("SecondStep")
    assert run.return_value == 1
    # It read the property the first action set, so it really ran after it.
    assert echo_install.log.properties["SECOND_SAW"] == f"length={len(AWKWARD)}"
    assert "msica[SecondStep] second step printed this" in run.lines


def test_bare_shim_fails_with_a_log_line_and_1603(tmp_path: Path) -> None:
    """A DLL without payload: the shim explains itself in the log; the install fails."""
    dll = tmp_path / "bare.dll"
    dll.write_bytes(builder.shim_path("x64").read_bytes())
    wxi = tmp_path / "actions.wxi"
    wxi.write_text(
        '<Include xmlns="http://schemas.microsoft.com/wix/2006/wi">\n'
        '  <Binary Id="Bare" SourceFile="bare.dll"/>\n'
        '  <CustomAction Id="Bare" BinaryKey="Bare" DllEntry="CustomAction"'
        ' Execute="immediate" Impersonate="yes" Return="check"/>\n'
        '  <InstallExecuteSequence><Custom Action="Bare" After="CostFinalize"/>'
        "</InstallExecuteSequence>\n"
        "</Include>\n",
        encoding="utf-8",
    )
    shutil.copy(FIXTURES / "echo" / "product.wxs", tmp_path / "product.wxs")
    msi = wixl_msi(tmp_path / "product.wxs", tmp_path / "bare.msi")
    result = runner.install(msi, log_path=tmp_path / "bare.log", timeout=ENGINE_TIMEOUT)
    assert result.exit_code == 1603
    run = result.log.action("Bare")
    assert run.return_value == 3
    assert any("carries no msica payload" in line for line in run.lines), run.lines
    assert result.log.failed_action == "Bare"


def test_cli_run_reports_exit_code_lines_and_properties(
    echo_msi: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = msica_main(["run", str(echo_msi), "-p", "ECHO_INPUT=plain words",
                       "--show-property", "ECHO_LENGTH"])
    out = capsys.readouterr().out
    assert code == 0
    assert "exit code 0" in out
    assert "  Echo succeeded:" in out
    assert "msica[Echo] echo read 11 characters; brackets [stay] as written" in out
    assert "property ECHO_LENGTH = '11'" in out


def test_cli_run_json_names_the_failed_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    source = project / "echo_actions.py"
    source.write_text(
        source.read_text(encoding="utf-8").replace(
            "    return ActionResult.SUCCESS\n",
            "    raise RuntimeError('the disk is full of ' + text)\n",
        ),
        encoding="utf-8",
    )
    results = builder.build(project, config.load(project))
    assert msica_main(["wxs", str(results[0].dll), "-o", str(project / "actions.wxi")]) == 0
    msi = wixl_msi(project / "product.wxs", project / "fail.msi")
    capsys.readouterr()
    code = msica_main(["run", str(msi), "-p", "ECHO_INPUT=lemons", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["exit_code"] == 1603
    assert document["failed_action"] == "Echo"
    echo = next(a for a in document["actions"] if a["name"] == "Echo")
    assert echo["outcome"] == "failed"
    traceback_text = "\n".join(echo["msica_lines"])
    assert "Traceback (most recent call last):" in traceback_text
    assert "RuntimeError: the disk is full of lemons" in traceback_text
    assert 'echo_actions.py", line' in traceback_text
    # The action after it never ran.
    assert "SecondStep" not in [a["name"] for a in document["actions"]]
