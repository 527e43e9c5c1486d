"""``msica validate``: one package per ICE that breaks it, the exact messages, the exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from msica.cli import main
from tests.helpers import FIXTURES, wixl_msi
from tests.helpers import ice_fixture_msi as build_fixture

pytestmark = pytest.mark.skipif(shutil.which("msibuild") is None, reason="needs msitools")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


ALL_CHECKS = "ICE12, ICE27, ICE63, ICE68, ICE72, ICE77, ICE80, ICE82, ICE93"

EXPECTED = {
    "ice12": (1, [
        "error ICE12: CustomAction 'SetNoDir' (type 35) sets directory 'NoSuchDir', which is "
        "not in the Directory table: add that Directory row or change the action's Source",
        "error ICE12: 'EarlyLogDir' (type 35) is at 950 in InstallExecuteSequence, before "
        "CostFinalize (1000): give it a number above 1000",
        "error ICE12: 'LateInstallDir' (type 51 setting a directory) is at 1030 in "
        "InstallExecuteSequence, after CostFinalize (1000): give it a number below 1000",
    ]),
    "ice27": (1, [
        "error ICE27: in-script (deferred, rollback or commit) action 'DoThings' is in "
        "InstallUISequence, which has no script: move it to InstallExecuteSequence between "
        "InstallInitialize and InstallFinalize",
        "error ICE27: InstallExecuteSequence runs 'NoSuchAction', which is not a standard "
        "action, a CustomAction row or a Dialog: add its CustomAction row or remove it from "
        "InstallExecuteSequence",
    ]),
    "ice63": (0, [
        "warning ICE63: 'SetDoThings' (1510) falls between InstallInitialize (1500) and "
        "RemoveExistingProducts (1525): if it writes to the script, the upgrade breaks; "
        "sequence it after RemoveExistingProducts or before InstallInitialize",
        "warning ICE63: 'UndoThings' (1520) falls between InstallInitialize (1500) and "
        "RemoveExistingProducts (1525): if it writes to the script, the upgrade breaks; "
        "sequence it after RemoveExistingProducts or before InstallInitialize",
    ]),
    "ice68": (1, [
        "error ICE68: CustomAction 'BadType' has invalid type 1027: 3 is not a basic custom "
        "action type; choose a valid type (see 'Summary List of All Custom Action Types')",
        "warning ICE68: CustomAction 'ElevatedImmediate' (type 2049) is marked no-impersonate "
        "(0x800) but is not deferred, so it does not run elevated: add in-script (0x400) or "
        "drop 0x800",
    ]),
    "ice72": (1, [
        "error ICE72: AdvtExecuteSequence runs custom action 'CheckThings' (type 1); only "
        "types 19, 35 and 51 may run while advertising: remove it from AdvtExecuteSequence",
    ]),
    "ice77": (1, [
        "error ICE77: in-script action 'UndoThings' is at 1440 in InstallExecuteSequence, "
        "outside InstallInitialize (1500) .. InstallFinalize (6600): give it a number "
        "between the two",
        "error ICE77: in-script action 'DoThings' is at 6700 in InstallExecuteSequence, "
        "outside InstallInitialize (1500) .. InstallFinalize (6600): give it a number "
        "between the two",
    ]),
    "ice80": (1, [
        "error ICE80: CustomAction 'Script64' is a 64-bit script (0x1000) but the package's "
        "Template is 'Intel;1033', not Intel64, x64 or Arm64: build the package for x64 "
        "(or Arm64), or drop the 64-bit script bit",
    ]),
    "ice82": (0, [
        "warning ICE82: InstallExecuteSequence runs 'CheckThings' and 'PlaceLogDir' both at "
        "1020: the engine may run them in either order; give all of them but one another "
        "number",
        "warning ICE82: InstallExecuteSequence runs 'Script64' and 'ProcessComponents' both "
        "at 1600: the engine may run them in either order; give 'Script64' another number",
    ]),
    "ice93": (0, [
        "warning ICE93: CustomAction 'InstallFiles' has the name of a standard action: "
        "rename it",
    ]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_ice_fixture_gets_its_message(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msi = build_fixture(name, tmp_path)
    code, lines, err = run(capsys, "validate", str(msi))
    expected_code, expected = EXPECTED[name]
    prefix = f"{msi}: "
    assert all(line.startswith(prefix) for line in lines), lines
    body = [line[len(prefix):] for line in lines]
    assert sorted(body[:-1]) == sorted(expected)
    errors = sum(1 for line in expected if line.startswith("error"))
    warnings = len(expected) - errors
    assert body[-1] == (
        f"{errors} error{'' if errors == 1 else 's'}, {warnings} warning"
        f"{'' if warnings == 1 else 's'} ({ALL_CHECKS})"
    )
    assert code == expected_code
    assert err == ""


def test_clean_fixture_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msi = build_fixture("clean", tmp_path)
    code, lines, _ = run(capsys, "validate", str(msi))
    assert lines == [
        f"{msi}: no problems found by {ALL_CHECKS}"]
    assert code == 0


def test_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msi = build_fixture("ice93", tmp_path)
    assert run(capsys, "validate", str(msi))[0] == 0
    assert run(capsys, "validate", "--strict", str(msi))[0] == 1


def test_json_lists_findings_by_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msi = build_fixture("ice72", tmp_path)
    code, lines, _ = run(capsys, "validate", "--json", str(msi))
    document = json.loads("\n".join(lines))
    assert code == 1
    assert document["errors"] == 1 and document["warnings"] == 0
    assert document["findings"] == [{
        "ice": "ICE72", "level": "error", "table": "AdvtExecuteSequence", "row": "CheckThings",
        "message": EXPECTED["ice72"][1][0].removeprefix("error ICE72: "),
    }]


def test_two_includes_numbered_on_their_own_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `msica wxs` include numbers its actions from the standard ones, so two DLLs'
    includes in one product can ask for the same numbers; validate says so."""
    if shutil.which("wixl") is None:
        pytest.skip("needs wixl")
    from tests.unit.test_inject import action, fake_dll

    project = tmp_path / "two"
    project.mkdir()
    for name in ("First", "Second"):
        dll = fake_dll(project / f"{name.lower()}.x64.dll", [action(name)])
        assert main(["wxs", str(dll), "-o", str(project / f"{name.lower()}.wxi")]) == 0
    product = (FIXTURES / "echo" / "product.wxs").read_text(encoding="utf-8")
    (project / "product.wxs").write_text(product.replace(
        "<?include actions.wxi ?>", "<?include first.wxi ?>\n    <?include second.wxi ?>"),
        encoding="utf-8")
    msi = wixl_msi(project / "product.wxs", project / "two.msi")
    capsys.readouterr()
    code, lines, _ = run(capsys, "validate", str(msi))
    assert code == 0  # a warning
    assert lines[0] == (
        f"{msi}: warning ICE82: InstallExecuteSequence runs 'First' and 'Second' both at "
        "1002: the engine may run them in either order; give all of them but one another "
        "number")
