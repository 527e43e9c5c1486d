"""msica inject: rows written into an .msi msica did not build, read back by an
independent reader (msica.author.msifile, pure Python over olefile).

The DLLs here are stand-ins: bytes followed by a real payload whose manifest
lists the actions, which is all ``msica inject`` reads. The engine test
(tests/engine/test_inject.py) installs a real one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from msica.author import inject
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


def fake_dll(path: Path, actions: Sequence[dict[str, Any]], filler: bytes = b"") -> Path:
    """A file ``msica inject`` reads as an msica DLL: an image and a payload with a manifest."""
    manifest = {"format": 1, "arch": "x64", "python": "3.12", "actions": list(actions)}
    image = b"MZ" + filler + bytes(range(256)) * 4
    path.write_bytes(payload.attach(image, {builder.MANIFEST: json.dumps(manifest).encode()},
                                    (3, 12)))
    return path


def base_msi(path: Path, *, sequence: Sequence[tuple[str, int]] = STANDARD,
             custom_action_table: bool = False, extra_action: str | None = None) -> Path:
    """An .msi msica did not build: a Property and an InstallExecuteSequence table, and
    without Binary or CustomAction tables unless asked."""
    with Package.create(path) as package:
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


def test_output_option_leaves_the_input_alone(tmp_path: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    before = msi.read_bytes()
    out = tmp_path / "out" / "injected.msi"
    out.parent.mkdir()
    inject.inject(msi, [fake_dll(tmp_path / "a.dll", [action("Alpha")])], output=out)
    assert msi.read_bytes() == before
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
         AuthorError.exit_code, "no free sequence number for Alpha after CostFinalize (1000)"),
        (lambda p: base_msi(p, custom_action_table=True, extra_action="Alpha"),
         AuthorError.exit_code, "already has a custom action Alpha that msica did not add"),
        (lambda p: base_msi(p, sequence=[("InstallFinalize", 6600)]), AuthorError.exit_code,
         "Alpha goes next to CostFinalize, which"),
    ],
    ids=["not-an-msi", "truncated", "no-sequence-table", "no-free-number",
         "name-taken", "missing-anchor"],
)
def test_bad_packages_get_one_line_and_stay_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, exit_code: int,
    message: str,
) -> None:
    msi = tmp_path / "app.msi"
    make(msi)
    before = msi.read_bytes()
    dll = fake_dll(tmp_path / "acts.x64.dll", [action("Alpha")])
    code, err = run_cli(capsys, str(msi), "--dll", str(dll))
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
