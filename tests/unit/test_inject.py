"""msica inject: rows written into an .msi msica did not build, read back by an
independent reader (msica.author.msifile, pure Python over olefile).

The DLLs here are stand-ins: bytes followed by a real payload whose manifest
lists the actions, which is all ``msica inject`` reads. The engine test
(tests/engine/test_inject.py) installs a real one.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from msica.author import inject
from msica.author.inspect import inspect as inspect_package
from msica.author.inspect import render, to_json
from msica.author.msifile import MsiFile
from msica.author.package import Package
from msica.build import builder, payload
from msica.cli import main as msica_main
from msica.errors import AuthorError, ConfigError, MsiFileError

pytestmark = pytest.mark.skipif(
    not __import__("msica._native.libmsi", fromlist=["available"]).available(),
    reason="libmsi is not installed (apt install libmsi0)",
)

# The standard actions of a small product, at their suggested numbers.
STANDARD = [("CostInitialize", 800), ("FileCost", 900), ("CostFinalize", 1000),
            ("InstallValidate", 1400), ("InstallInitialize", 1500),
            ("ProcessComponents", 1600), ("InstallFiles", 4000), ("InstallFinalize", 6600)]


def action(name: str, *, execute: str = "immediate", kind: int = 1, **more: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name, "module": "m", "function": name, "type": kind, "execute": execute,
        "impersonate": True, "check_return": True, "hide_target": False,
        "asynchronous": False, "after": None, "before": None, "condition": None,
        "uses": [], "data_setter": None,
    }
    entry.update(more)
    if entry["uses"]:
        entry["data_setter"] = "MsicaData_" + name
    return entry


def fake_dll(path: Path, actions: Sequence[dict[str, Any]], filler: bytes = b"", *,
             arch: str = "x64") -> Path:
    """A file ``msica inject`` reads as an msica DLL: an image and a payload with a manifest."""
    manifest = {"format": 1, "arch": arch, "python": "3.12", "actions": list(actions)}
    image = b"MZ" + filler + bytes(range(256)) * 4
    path.write_bytes(payload.attach(image, {builder.MANIFEST: json.dumps(manifest).encode()},
                                    (3, 12)))
    return path


def base_msi(path: Path, *, sequence: Sequence[tuple[str, int]] = STANDARD,
             custom_action_table: bool = False, extra_action: str | None = None,
             template: str = "x64;1033", launch_condition: str | None = None) -> Path:
    """An .msi msica did not build: a Property and an InstallExecuteSequence table, and
    without Binary or CustomAction tables unless asked."""
    with Package.create(path) as package:
        package.set_template(template)
        if launch_condition is not None:
            package.execute("CREATE TABLE `LaunchCondition` (`Condition` CHAR(255) NOT NULL, "
                            "`Description` CHAR(255) NOT NULL LOCALIZABLE "
                            "PRIMARY KEY `Condition`)")
            package.execute("INSERT INTO `LaunchCondition` (`Condition`, `Description`) "
                            "VALUES (?, ?)", launch_condition, "Needs 64-bit Windows.")
        package.execute("CREATE TABLE `Property` (`Property` CHAR(72) NOT NULL, "
                        "`Value` LONGCHAR NOT NULL LOCALIZABLE PRIMARY KEY `Property`)")
        package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                        "ProductName", "base")
        package.execute("CREATE TABLE `InstallExecuteSequence` (`Action` CHAR(72) NOT NULL, "
                        "`Condition` CHAR(255), `Sequence` SHORT PRIMARY KEY `Action`)")
        for name, number in sequence:
            package.execute("INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) "
                            "VALUES (?, ?)", name, number)
        if custom_action_table:  # the old schema, without ExtendedType
            package.execute("CREATE TABLE `CustomAction` (`Action` CHAR(72) NOT NULL, "
                            "`Type` SHORT NOT NULL, `Source` CHAR(72), `Target` CHAR(255) "
                            "PRIMARY KEY `Action`)")
        if extra_action:
            package.execute("INSERT INTO `CustomAction` (`Action`, `Type`, `Source`, `Target`) "
                            "VALUES (?, ?, ?, ?)", extra_action, 51, "SOMEPROP", "value")
            package.execute("INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) "
                            "VALUES (?, ?)", extra_action, 1200)
        package.commit()
    return path


def sequence_of(msi: Path) -> dict[str, tuple[int, str | None]]:
    with MsiFile.open(msi) as reread:
        return {r["Action"]: (r["Sequence"], r["Condition"])
                for r in reread.rows("InstallExecuteSequence")}


def custom_actions_of(msi: Path) -> dict[str, dict[str, Any]]:
    with MsiFile.open(msi) as reread:
        return {str(r["Action"]): r for r in reread.rows("CustomAction")}


ACTIONS = [
    action("Alpha"),
    action("Beta", after="Alpha", condition='NOT Installed AND NAME <> "a;b"'),
    action("Gamma", execute="deferred", kind=3073, uses=["INSTALLDIR", "NAME"],
           condition="NOT REMOVE"),
    action("Delta", execute="deferred", kind=3073, before="InstallFinalize"),
]


def test_rows_land_as_msica_wxs_would_write_them(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", ACTIONS)
    result = inject.inject(msi, [dll])
    assert result.binaries == ("msica_acts.x64.dll",)

    with MsiFile.open(msi) as reread:
        assert reread.stream("Binary", "msica_acts.x64.dll") == dll.read_bytes()
        assert [r["Name"] for r in reread.rows("Binary")] == ["msica_acts.x64.dll"]
        assert reread.rows("Property") == [{"Property": "ProductName", "Value": "base"}]
    rows = custom_actions_of(msi)
    assert {name: (r["Type"], r["Source"], r["Target"]) for name, r in rows.items()} == {
        "Alpha": (1, "msica_acts.x64.dll", "Alpha"),
        "Beta": (1, "msica_acts.x64.dll", "Beta"),
        "MsicaData_Gamma": (1, "msica_acts.x64.dll", "MsicaData_Gamma"),
        "Gamma": (3073, "msica_acts.x64.dll", "Gamma"),
        "Delta": (3073, "msica_acts.x64.dll", "Delta"),
    }
    assert all(r["ExtendedType"] is None for r in rows.values())

    sequence = sequence_of(msi)
    # Chained after CostFinalize (1000); the setter right before its deferred action,
    # the pair after InstallInitialize (1500); Delta just before InstallFinalize.
    assert sequence["Alpha"] == (1001, None)
    assert sequence["Beta"] == (1002, 'NOT Installed AND NAME <> "a;b"')
    assert sequence["MsicaData_Gamma"] == (1501, "NOT REMOVE")
    assert sequence["Gamma"] == (1502, "NOT REMOVE")
    assert sequence["Delta"] == (6599, None)
    assert sequence["CostFinalize"] == (1000, None)  # the package's own rows untouched
    assert len(sequence) == len(STANDARD) + 5


def test_the_changed_package_gets_a_new_package_code(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    with Package.open(msi, write=True) as package:
        package.set_package_code("{11111111-2222-3333-4444-555555555555}")
        package.commit()
    result = inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])])
    with MsiFile.open(msi) as reread:
        code = reread.summary["revision_number"]
    assert code == result.package_code
    assert isinstance(code, str) and len(code) == 38
    assert code != "{11111111-2222-3333-4444-555555555555}"


def test_injecting_again_replaces_and_never_duplicates(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", ACTIONS)
    inject.inject(msi, [dll])
    first = (sequence_of(msi), custom_actions_of(msi))

    again = inject.inject(msi, [dll])
    assert sorted(again.replaced) == sorted(["Alpha", "Beta", "MsicaData_Gamma", "Gamma",
                                             "Delta"])
    assert (sequence_of(msi), custom_actions_of(msi)) == first
    with MsiFile.open(msi) as reread:
        assert len(reread.rows("Binary")) == 1

    # A rebuilt DLL without Beta and with new bytes: Beta's rows go, the stream changes.
    smaller = fake_dll(tmp_path / "acts.x64.dll", [a for a in ACTIONS if a["name"] != "Beta"],
                       filler=b"rebuilt")
    inject.inject(msi, [smaller])
    assert "Beta" not in sequence_of(msi)
    assert "Beta" not in custom_actions_of(msi)
    with MsiFile.open(msi) as reread:
        assert reread.stream("Binary", "msica_acts.x64.dll") == smaller.read_bytes()


def test_sequence_option_places_actions(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", ACTIONS)
    placements = inject.parse_placements(
        ["Alpha=before:InstallValidate", "Beta=3000", "Gamma=after:InstallFiles"])
    inject.inject(msi, [dll], placements=placements)
    sequence = sequence_of(msi)
    assert sequence["Alpha"][0] == 1399
    assert sequence["Beta"][0] == 3000
    assert sequence["MsicaData_Gamma"][0] == 4001
    assert sequence["Gamma"][0] == 4002


def test_a_numbered_deferred_action_gets_its_setter_just_before(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", [ACTIONS[2]])
    inject.inject(msi, [dll], placements=inject.parse_placements(["Gamma=5000"]))
    sequence = sequence_of(msi)
    assert (sequence["MsicaData_Gamma"][0], sequence["Gamma"][0]) == (4999, 5000)


def test_extended_type_adds_the_column_when_the_schema_lacks_it(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi", custom_action_table=True)
    with MsiFile.open(msi) as reread:
        assert [c.name for c in reread.columns("CustomAction")] == [
            "Action", "Type", "Source", "Target"]
    dll = fake_dll(tmp_path / "acts.x64.dll",
                   [action("Alpha"), action("Patchy", extended_type=0x1000)])
    inject.inject(msi, [dll])
    rows = custom_actions_of(msi)
    assert rows["Patchy"]["ExtendedType"] == 0x1000
    assert rows["Alpha"]["ExtendedType"] is None


def test_without_extended_type_an_old_schema_stays_as_it_was(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi", custom_action_table=True)
    inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])])
    with MsiFile.open(msi) as reread:
        assert len(reread.columns("CustomAction")) == 4


def test_two_dlls_each_get_a_binary(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    one = fake_dll(tmp_path / "one.dll", [action("One")])
    two = fake_dll(tmp_path / "two.dll", [action("Two", after="One")], filler=b"2")
    inject.inject(msi, [one, two])
    sequence = sequence_of(msi)
    assert (sequence["One"][0], sequence["Two"][0]) == (1001, 1002)
    with MsiFile.open(msi) as reread:
        assert reread.stream("Binary", "msica_two.dll") == two.read_bytes()
    assert custom_actions_of(msi)["Two"]["Source"] == "msica_two.dll"


def test_unplaced_actions_chain_on_across_dlls(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    one = fake_dll(tmp_path / "one.dll", [action("One"), action("Later", execute="deferred",
                                                              kind=1025)])
    two = fake_dll(tmp_path / "two.dll", [action("Two"), action("Last", execute="rollback",
                                                              kind=1281)], filler=b"2")
    inject.inject(msi, [one, two])
    sequence = sequence_of(msi)
    assert [sequence[n][0] for n in ("One", "Two", "Later", "Last")] == [1001, 1002,
                                                                        1501, 1502]


def test_output_option_leaves_the_input_alone(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    before = msi.read_bytes()
    out = tmp_path / "out" / "injected.msi"
    out.parent.mkdir()
    msi.chmod(0o644)
    inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])], output=out)
    assert msi.read_bytes() == before
    assert out.stat().st_mode & 0o777 == 0o644  # not the work copy's 0600
    assert "Alpha" in sequence_of(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["injected.msi"]  # no leftovers


# -- refusals: one line, an exit code, the file unchanged ---------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = msica_main(["inject", *argv])
    return code, capsys.readouterr().err


def test_cli_reports_rows_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", ACTIONS)
    assert msica_main(["inject", str(msi), "--dll", str(dll)]) == 0
    out = capsys.readouterr().out
    assert "  1501  MsicaData_Gamma if NOT REMOVE" in out
    assert out.rstrip().endswith("5 custom actions from msica_acts.x64.dll")


@pytest.mark.parametrize(
    ("make", "exit_code", "message"),
    [
        (lambda p: p.write_bytes(b"PK\x03\x04 a zip, not an msi" * 40), MsiFileError.exit_code,
         "is not a Windows Installer package"),
        (lambda p: p.write_bytes(base_msi(p.with_name("whole.msi")).read_bytes()[:2000]),
         MsiFileError.exit_code, "damaged or truncated"),
        (lambda p: _without_sequence(p), AuthorError.exit_code,
         "has no InstallExecuteSequence table"),
        (lambda p: base_msi(p, sequence=[("CostFinalize", 1000), ("Next", 1001)]),
         AuthorError.exit_code, "no free sequence number for Alpha after CostFinalize (1000) in "),
        (lambda p: base_msi(p, custom_action_table=True, extra_action="Alpha"),
         AuthorError.exit_code, "already has a custom action Alpha that msica did not add"),
        (lambda p: base_msi(p, sequence=[("InstallFinalize", 6600)]), AuthorError.exit_code,
         "Alpha goes next to CostFinalize, which"),
        (lambda p: base_msi(p), AuthorError.exit_code,
         "Alpha runs in the install script, so it must be between InstallInitialize (1500) "
         "and InstallFinalize (6600), not at 1399"),
    ],
    ids=["not-an-msi", "truncated", "no-sequence-table", "no-free-number",
         "name-taken", "missing-anchor", "deferred-outside-the-script"],
)
def test_bad_packages_get_one_line_and_stay_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, exit_code: int,
    message: str,
) -> None:
    msi = tmp_path / "app.msi"
    make(msi)
    before = msi.read_bytes()
    script = "install script" in message
    alpha = action("Alpha", execute="deferred", kind=1025) if script else action("Alpha")
    dll = fake_dll(tmp_path / "acts.x64.dll", [alpha])
    extra = ["--sequence", "Alpha=before:InstallValidate"] if script else []
    code, err = run_cli(capsys, str(msi), "--dll", str(dll), *extra)
    assert code == exit_code
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert msi.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()
                  if p.name.startswith(".")) == []  # no work copy left behind


def _without_sequence(path: Path) -> None:
    with Package.create(path) as package:
        package.execute("CREATE TABLE `Property` (`Property` CHAR(72) NOT NULL, "
                        "`Value` LONGCHAR NOT NULL LOCALIZABLE PRIMARY KEY `Property`)")
        package.commit()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sequence", "Alpha"], "write NAME=after:ACTION"),
        (["--sequence", "Alpha=later:CostFinalize"], "write NAME=after:ACTION"),
        (["--sequence", "Alpha=0"], "a number from 1 to 32767"),
        (["--sequence", "Nobody=1234"], "--sequence names Nobody, not an action"),
    ],
)
def test_bad_sequence_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    msi = base_msi(tmp_path / "app.msi")
    before = msi.read_bytes()
    dll = fake_dll(tmp_path / "acts.x64.dll", [action("Alpha")])
    code, err = run_cli(capsys, str(msi), "--dll", str(dll), *argv)
    assert code == ConfigError.exit_code
    assert message in err and err.count("\n") == 1
    assert msi.read_bytes() == before


def test_an_output_in_a_missing_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", [action("Alpha")])
    code, err = run_cli(capsys, str(msi), "--dll", str(dll), "-o",
                        str(tmp_path / "nowhere" / "out.msi"))
    assert code == AuthorError.exit_code
    assert "cannot write beside" in err and err.count("\n") == 1


def test_a_dll_without_a_payload_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msi = base_msi(tmp_path / "app.msi")
    before = msi.read_bytes()
    plain = tmp_path / "plain.dll"
    plain.write_bytes(b"MZ" + b"\0" * 4096)
    code, err = run_cli(capsys, str(msi), "--dll", str(plain))
    assert code == AuthorError.exit_code
    assert "plain.dll" in err and err.count("\n") == 1
    assert msi.read_bytes() == before


def test_new_tables_are_described_in_an_existing_validation_table(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    with Package.open(msi, write=True) as package:  # the _Validation schema WiX writes
        package.execute(
            "CREATE TABLE `_Validation` (`Table` CHAR(32) NOT NULL, `Column` CHAR(32) NOT NULL, "
            "`Nullable` CHAR(4) NOT NULL, `MinValue` LONG, `MaxValue` LONG, "
            "`KeyTable` CHAR(255), `KeyColumn` SHORT, `Category` CHAR(32), `Set` CHAR(255), "
            "`Description` CHAR(255) PRIMARY KEY `Table`, `Column`)")
        package.commit()
    inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])])
    inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])])
    with MsiFile.open(msi) as reread:
        described = sorted((r["Table"], r["Column"], r["Nullable"], r["Category"])
                           for r in reread.rows("_Validation"))
    assert described == [
        ("Binary", "Data", "N", "Binary"),
        ("Binary", "Name", "N", "Identifier"),
        ("CustomAction", "Action", "N", "Identifier"),
        ("CustomAction", "ExtendedType", "Y", "DoubleInteger"),
        ("CustomAction", "Source", "Y", "CustomSource"),
        ("CustomAction", "Target", "Y", "Formatted"),
        ("CustomAction", "Type", "N", None),
    ]


def test_a_data_action_gets_a_type_51_setter_that_goes_with_it(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    secret = action("Secret", execute="deferred", kind=3073 | 0x2000, hide_target=True,
                    data="[INSTALLDIR];[PASSWORD]", data_setter="MsicaData_Secret")
    plain = action("Plain", execute="commit", kind=1 | 1024 | 512,
                   data="[ProductCode]", data_setter="MsicaData_Plain")
    dll = fake_dll(tmp_path / "acts.x64.dll", [secret, plain])
    inject.inject(msi, [dll])
    rows = custom_actions_of(msi)
    assert (rows["MsicaData_Secret"]["Type"], rows["MsicaData_Secret"]["Source"],
            rows["MsicaData_Secret"]["Target"]) == (51 | 0x2000, "Secret",
                                                   "[INSTALLDIR];[PASSWORD]")
    assert (rows["MsicaData_Plain"]["Type"], rows["MsicaData_Plain"]["Source"],
            rows["MsicaData_Plain"]["Target"]) == (51, "Plain", "[ProductCode]")
    sequence = sequence_of(msi)
    # A commit action is in the script lane: chained after the deferred one.
    assert [sequence[n][0] for n in ("MsicaData_Secret", "Secret", "MsicaData_Plain",
                                      "Plain")] == [1501, 1502, 1503, 1504]

    # Without Plain: its setter, which has no msica Binary key, leaves with it.
    inject.inject(msi, [fake_dll(tmp_path / "acts.x64.dll", [secret], filler=b"v2")])
    assert sorted(custom_actions_of(msi)) == ["MsicaData_Secret", "Secret"]
    assert "MsicaData_Plain" not in sequence_of(msi)


def test_the_injected_package_passes_msica_validate(tmp_path: Path) -> None:
    from msica.author import validate

    msi = base_msi(tmp_path / "app.msi")
    inject.inject(msi, [fake_dll(tmp_path / "acts.x64.dll", ACTIONS)])
    inject.inject(msi, [fake_dll(tmp_path / "acts.x64.dll", ACTIONS)])
    assert validate.validate(msi).findings == ()


@pytest.mark.parametrize(
    ("template", "arch", "condition", "warned"),
    [
        ("x64;1033", "x64", None, None),
        ("x64;1033", "x86", None, None),  # a 32-bit custom-action server runs it
        (";1033", "x86", None, None),  # no platform: Intel
        ("Intel;1033", "x64", None, "the package is 32-bit (Template Intel)"),
        ("Intel;1033", "x64", "VersionNT64", None),  # kept off 32-bit Windows
        ("Intel;1033", "x64", "Installed OR VersionNT64 >= 601", None),
        ("Intel;1033", "arm64", "VersionNT64", "an arm64 DLL loads only on ARM64 Windows"),
        ("x64;1033", "arm64", None, "the package is x64, so Windows on x86 and x64 machines"),
        ("Arm64;1033", "arm64", None, None),
        ("Arm64;1033", "x86", None, None),
    ],
)
def test_a_dll_that_cannot_load_where_the_package_installs_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
    template: str, arch: str, condition: str | None, warned: str | None,
) -> None:
    msi = base_msi(tmp_path / "app.msi", template=template, launch_condition=condition)
    dll = fake_dll(tmp_path / f"acts.{arch}.dll", [action("Alpha")], arch=arch)
    result = inject.inject(msi, [dll])
    assert custom_actions_of(msi)["Alpha"]["Source"] == f"msica_acts.{arch}.dll"  # still done
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if warned is None:
        assert result.warnings == ()
        assert logged == []
    else:
        (warning,) = result.warnings
        assert warning.startswith(f"acts.{arch}.dll is an {arch} DLL and ")
        assert warned in warning
        assert logged == [f"warning: {warning}"]


def test_the_cli_says_the_warning_once(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi", template="Intel;1033")
    dll = fake_dll(tmp_path / "acts.x64.dll", [action("Alpha")])
    # A process of its own: pytest's log capture would keep the CLI's handler out.
    done = subprocess.run([sys.executable, "-m", "msica", "inject", str(msi), "--dll", str(dll)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert err.count("msica: warning: acts.x64.dll is an x64 DLL and the package is 32-bit") == 1
    assert "build for x86 (archs = [\"x86\"])" in err


def test_inspect_shows_the_same_warning(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi", template="Intel;1033")
    dll = fake_dll(tmp_path / "acts.x64.dll", [action("Alpha")])
    (warning,) = inject.inject(msi, [dll]).warnings
    report = inspect_package(msi)
    (binary,) = report.binaries
    assert binary.warning is not None and warning.endswith(binary.warning)
    assert f"  WARNING:   an x64 DLL: {binary.warning}\n" in render(report)
    assert to_json(report)["binaries"][0]["warning"] == binary.warning
    # The same DLL in an x64 package: nothing to say.
    fine = base_msi(tmp_path / "fine.msi")
    inject.inject(fine, [dll])
    assert "WARNING" not in render(inspect_package(fine))
