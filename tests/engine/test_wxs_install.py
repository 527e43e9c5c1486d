"""msica wxs for real: the WiX v3 include compiled by wixl, installed by wine64 msiexec.

tests/fixtures/wix holds actions with conditions (one true, one false), a
first_sequence action, one whose failure is ignored, and deferred actions fed
by type 51 setters (data=). The .msi gets the Type numbers msica computes (the
msibuild queries the include names restore what wixl drops), then the install
shows what each option did.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from msica.author import wxs
from msica.build import builder, config
from msica.testing import runner
from tests.helpers import FIXTURES, windows_path, wixl_fix_types, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120


@pytest.fixture(scope="module")
def wix_msi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, wxs.DllInfo]:
    project = tmp_path_factory.mktemp("wix") / "wix"
    shutil.copytree(FIXTURES / "wix", project)
    [result] = builder.build(project, config.load(project))
    include = wxs.write(result.dll, project / "actions.wxi")
    msi = wixl_msi(project / "product.wxs", project / "wix.msi")
    assert len(wixl_fix_types(msi, include)) == 3  # FirstOnly, WriteHidden and its setter
    return msi, wxs.read_dll(result.dll)


def _custom_action_rows(msi: Path) -> dict[str, list[str]]:
    out = subprocess.run(["msiinfo", "export", str(msi), "CustomAction"], check=True,
                         capture_output=True, text=True).stdout
    return {row.split("\t")[0]: row.split("\t") for row in out.splitlines()[3:]}


def test_the_msi_holds_msica_type_numbers(wix_msi: tuple[Path, wxs.DllInfo]) -> None:
    msi, info = wix_msi
    rows = _custom_action_rows(msi)
    for action in info.actions:
        assert int(rows[action["name"]][1]) == action["type"], action["name"]
    assert {name: int(rows[name][1]) for name in ("Present", "FirstOnly", "Ignored",
                                                  "WriteData", "WriteHidden")} == {
        "Present": 1, "FirstOnly": 257, "Ignored": 65, "WriteData": 1025,
        "WriteHidden": 11265}
    # The type 51 setters: Source is the deferred action (its property), Target the text.
    assert rows["MsicaData_WriteData"][1:4] == ["51", "WriteData",
                                                "OUTDIR=[OUTDIR];GREETING=[GREETING]"]
    assert rows["MsicaData_WriteHidden"][1:3] == [str(51 + 0x2000), "WriteHidden"]


@pytest.fixture(scope="module")
def installed(wix_msi: tuple[Path, wxs.DllInfo],
              tmp_path_factory: pytest.TempPathFactory) -> tuple[runner.InstallResult, Path]:
    msi, _ = wix_msi
    out = tmp_path_factory.mktemp("wix-out")
    result = runner.install(
        msi,
        {"RUN_PRESENT": "1", "OUTDIR": windows_path(out), "GREETING": "hello world",
         "SECRET": "s3cret"},
        log_path=msi.with_suffix(".log"),
        timeout=ENGINE_TIMEOUT,
    )
    return result, out


def test_install_succeeds(installed: tuple[runner.InstallResult, Path]) -> None:
    result, _ = installed
    assert result.exit_code == 0, result.log.failed_action


def test_condition_true_runs_and_false_skips(
    installed: tuple[runner.InstallResult, Path],
) -> None:
    result, out = installed
    properties = result.log.properties
    assert properties.get("PRESENT_RAN") == "yes"
    assert "SKIPPED_RAN" not in properties
    ran = {run.name for run in result.log.actions}
    assert "Present" in ran and "Skipped" not in ran
    assert "WriteSkipped" not in ran and "MsicaData_WriteSkipped" not in ran
    assert not (out / "WriteSkipped.json").exists()


def test_first_sequence_action_runs_when_no_ui_sequence_ran(
    installed: tuple[runner.InstallResult, Path],
) -> None:
    result, _ = installed
    assert result.log.properties.get("FIRST_RAN") == "yes"


def test_ignored_return_does_not_fail_the_install(
    installed: tuple[runner.InstallResult, Path],
) -> None:
    result, _ = installed
    assert result.log.properties.get("IGNORED_RAN") == "yes"
    [run] = [run for run in result.log.actions if run.name == "Ignored"]
    # The action returned 1603; with Continue (Type 65) the engine records success.
    assert run.return_value == 1
    assert result.succeeded


def test_type_51_setter_feeds_the_deferred_action(
    installed: tuple[runner.InstallResult, Path],
) -> None:
    _, out = installed
    written = json.loads((out / "WriteData.json").read_text(encoding="utf-8"))
    # The engine formats [OUTDIR] and [GREETING] into the text as they are.
    assert written["raw"] == f"OUTDIR={windows_path(out)};GREETING=hello world"
    assert written["data"] == {"OUTDIR": windows_path(out), "GREETING": "hello world"}


def test_hidden_no_impersonation_action_gets_its_data(
    installed: tuple[runner.InstallResult, Path],
) -> None:
    _, out = installed
    written = json.loads((out / "WriteHidden.json").read_text(encoding="utf-8"))
    assert written["data"] == {"OUTDIR": windows_path(out), "SECRET": "s3cret"}
