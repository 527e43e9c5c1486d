"""``msica inspect``: Type numbers in words, where actions run, and which DLLs are msica's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from msica.author.inspect import decode_type, describe_type, read_dll
from msica.build import builder, config, payload
from msica.cli import main
from tests.helpers import FIXTURES, msibuild_msi, wixl_msi
from tests.helpers import ice_fixture_msi as build_fixture

needs_msitools = pytest.mark.skipif(
    shutil.which("msibuild") is None or shutil.which("wixl") is None, reason="needs msitools")


@pytest.mark.parametrize(
    ("number", "kind", "source", "target"),
    [
        (1, "DLL stored in the Binary table", "Binary table key", "DLL entry point"),
        (2, "EXE stored in the Binary table", "Binary table key", "command line"),
        (5, "JScript stored in the Binary table", "Binary table key",
         "JScript function to call (optional)"),
        (6, "VBScript stored in the Binary table", "Binary table key",
         "VBScript function to call (optional)"),
        (7, "nested install of a package stored in a substorage", "substorage name",
         "property settings"),
        (17, "DLL installed with the product", "File table key", "DLL entry point"),
        (18, "EXE installed with the product", "File table key", "command line"),
        (19, "displays an error and fails the install", "(none)",
         "formatted error text, or an Error table number"),
        (21, "JScript file installed with the product", "File table key",
         "JScript function to call (optional)"),
        (22, "VBScript file installed with the product", "File table key",
         "VBScript function to call (optional)"),
        (23, "nested install of a package in the source tree",
         "path of the .msi relative to the source root", "property settings"),
        (34, "EXE run in a directory", "Directory table key (working directory)",
         "path of the EXE and command line"),
        (35, "sets a directory", "Directory table key", "formatted path"),
        (37, "JScript text", "(none)", "JScript code"),
        (38, "VBScript text", "(none)", "VBScript code"),
        (39, "nested install of an advertised product", "product code", "property settings"),
        (50, "EXE named by a property", "property holding the EXE's path", "command line"),
        (51, "sets a property", "property name", "formatted value"),
        (53, "JScript text stored in a property", "property holding the code",
         "JScript function to call (optional)"),
        (54, "VBScript text stored in a property", "property holding the code",
         "VBScript function to call (optional)"),
    ],
)
def test_every_basic_type_says_what_source_and_target_hold(
    number: int, kind: str, source: str, target: str
) -> None:
    decoded = decode_type(number)
    assert (decoded.kind, decoded.source_means, decoded.target_means) == (kind, source, target)
    assert decoded.valid and decoded.execution == "immediate"
    assert decoded.scheduling == "always" and decoded.return_handling == "check"


@pytest.mark.parametrize(
    ("number", "execution", "scheduling", "impersonate", "returns", "flags"),
    [
        (1, "immediate", "always", True, "check", ()),
        (1 | 0x100, "immediate", "first-sequence", True, "check", ()),
        (1 | 0x200, "immediate", "once-per-process", True, "check", ()),
        (1 | 0x300, "immediate", "client-repeat", True, "check", ()),
        (1 | 0x400, "deferred", "always", True, "check", ()),
        (1 | 0x500, "rollback", "always", True, "check", ()),
        (1 | 0x600, "commit", "always", True, "check", ()),
        (1 | 0xC00, "deferred", "always", False, "check", ("no-impersonate",)),
        (1 | 0x4400, "deferred", "always", True, "check", ("ts-aware",)),
        (1 | 0x40, "immediate", "always", True, "ignore", ()),
        (2 | 0x80, "immediate", "always", True, "async-wait", ()),
        (2 | 0xC0, "immediate", "always", True, "async-no-wait", ()),
        (38 | 0x1000, "immediate", "always", True, "check", ("64-bit-script",)),
        (51 | 0x2000, "immediate", "always", True, "check", ("hide-target",)),
        # msica's own: deferred, elevated, return ignored, hidden data.
        (1 | 0x400 | 0x800 | 0x40 | 0x2000, "deferred", "always", False, "ignore",
         ("no-impersonate", "hide-target")),
    ],
)
def test_options_in_words(
    number: int, execution: str, scheduling: str, impersonate: bool, returns: str,
    flags: tuple[str, ...],
) -> None:
    decoded = decode_type(number)
    assert decoded.execution == execution
    assert decoded.scheduling == scheduling
    assert decoded.impersonate is impersonate
    assert decoded.return_handling == returns
    assert decoded.flags == flags


def test_patch_uninstall_comes_from_extended_type() -> None:
    assert decode_type(1, 0x8000).flags == ("patch-uninstall",)
    assert decode_type(1, None).flags == ()


def test_invalid_types_say_why() -> None:
    assert decode_type(1027).problems == ("3 is not a basic custom action type",)
    assert decode_type(1 | 0x700).problems == ("rollback (0x100) and commit (0x200) together",)
    assert not decode_type(-1).valid


def test_describe_type() -> None:
    assert describe_type(decode_type(3073)) == (
        "deferred, system context (no impersonation), return checked (failure stops the install)")
    assert describe_type(decode_type(1 | 0x200 | 0x40)) == (
        "immediate, scheduling once-per-process, return ignored")


@needs_msitools
def test_text_report_of_a_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msi = build_fixture("clean", tmp_path)
    assert main(["inspect", str(msi)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{msi}: 7 custom actions\n")
    assert (
        "DoThings: type 3073 (0x0c01)\n"
        "  what:      DLL stored in the Binary table (basic type 1)\n"
        "  source:    ActionsDll  [Binary table key]\n"
        "  target:    DoThings  [DLL entry point]\n"
        "  runs:      deferred, system context (no impersonation), return checked "
        "(failure stops the install)\n"
        "  flags:     no-impersonate\n"
        "  sequenced: InstallExecuteSequence 1530 if NOT Installed\n"
        "  dll:       Binary 'ActionsDll' (43 bytes), not an msica DLL\n"
    ) in out
    assert (
        "SetDoThings: type 51 (0x0033)\n"
        "  what:      sets a property (basic type 51)\n"
        "  source:    DoThings  [property name]\n"
        "  target:    [INSTALLDIR]  [formatted value]\n"
        "  runs:      immediate, return checked (failure stops the install)\n"
        "  sequenced: InstallExecuteSequence 1510 (always)\n"
        "             AdvtExecuteSequence 850 (always)\n"
    ) in out


@needs_msitools
def test_a_package_without_custom_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(FIXTURES / "ice" / "base" / "Property.idt", source)
    msi = msibuild_msi(source, tmp_path / "plain.msi")
    assert main(["inspect", str(msi)]) == 0
    assert capsys.readouterr().out == (
        f"{msi}: no custom actions (the package has no CustomAction table)\n")
    assert main(["inspect", "--json", str(msi)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["custom_action_table"] is False and document["custom_actions"] == []
    assert main(["validate", str(msi)]) == 0


@pytest.fixture(scope="module")
def echo_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/echo built by msica (x64, Python 3.12) into an .msi by wixl."""
    if shutil.which("wixl") is None:
        pytest.skip("needs wixl")
    project = tmp_path_factory.mktemp("echo") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    results = builder.build(project, config.load(project))
    assert main(["wxs", str(results[0].dll), "-o", str(project / "actions.wxi")]) == 0
    return wixl_msi(project / "product.wxs", project / "echo.msi")


def test_an_msica_dll_is_recognised(echo_msi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(echo_msi)]) == 0
    document = json.loads(capsys.readouterr().out)
    [binary] = document["binaries"]
    assert binary["binary"] == "msica_echo.x64.dll"
    assert binary["msica"] is True and binary["problem"] is None
    assert (binary["python"], binary["arch"]) == ("3.12", "x64")
    assert binary["actions"] == ["Echo", "SecondStep"]
    names = [a["name"] for a in document["custom_actions"]]
    assert names == ["Echo", "SecondStep"]
    for action in document["custom_actions"]:
        assert action["binary"] == "msica_echo.x64.dll"
        assert action["entry_in_msica_dll"] is True
        assert action["declared_type"] == action["type"] == 1
        assert action["decoded"]["execution"] == "immediate"
        assert [p["table"] for p in action["sequenced"]] == ["InstallExecuteSequence"]
    assert main(["inspect", str(echo_msi)]) == 0
    assert "msica DLL, Python 3.12 x64, actions: Echo, SecondStep" in capsys.readouterr().out
    # What msica wxs and wixl make passes the checks.
    assert main(["validate", str(echo_msi)]) == 0
    assert capsys.readouterr().out.endswith("no problems found by ICE12, ICE27, ICE63, ICE68, "
                                            "ICE72, ICE77, ICE80, ICE82, ICE93\n")


def test_damaged_and_foreign_dlls(shim_bytes: object) -> None:
    shim = shim_bytes("x64")  # type: ignore[operator]
    assert read_dll("Bare", shim).msica is False
    no_manifest = payload.attach(shim, {"other.txt": b"x"}, (3, 11))
    info = read_dll("NoManifest", no_manifest)
    assert info.msica and info.python == "3.11"
    assert info.problem == "its payload has no msica.json: rebuild it with `msica build`"
    tampered = bytearray(payload.attach(shim, {"msica.json": b"{}"}, (3, 12)))
    tampered[len(shim) + payload.ENTRY_HEADER.size + 2] ^= 1
    assert read_dll("Tampered", bytes(tampered)).problem == (
        "the payload is corrupt: its SHA-256 differs from the recorded one")


@needs_msitools
def test_actions_run_by_dialog_controls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    shutil.copytree(FIXTURES / "ice" / "base", source)
    (source / "template").unlink()
    (source / "ControlEvent.idt").write_text(
        "Dialog_\tControl_\tEvent\tArgument\tCondition\tOrdering\n"
        "s72\ts50\ts50\ts255\tS255\tI2\n"
        "ControlEvent\tDialog_\tControl_\tEvent\tArgument\tCondition\n"
        "LicenseDlg\tCheck\tDoAction\tCheckThings\tLICENSE_KEY\t1\n"
        "LicenseDlg\tNext\tNewDialog\tVerifyReadyDlg\t1\t2\n",
        encoding="ascii",
    )
    with (source / "CustomAction.idt").open("a", encoding="ascii") as table:
        table.write("RunInstalled\t17\tTool.dll\tEntry\t\nMissingDll\t65\tNoBinary\tEntry\t\n")
    msi = msibuild_msi(source, tmp_path / "ui.msi")
    assert main(["inspect", str(msi)]) == 0
    out = capsys.readouterr().out
    assert (
        "  sequenced: InstallExecuteSequence 1020 if NOT Installed\n"
        "             DoAction of control LicenseDlg/Check if LICENSE_KEY\n"
    ) in out
    assert ("  dll:       File row 'Tool.dll', installed with the product (inside the "
            "package's media; not opened)\n") in out
    assert "  runs:      immediate, return ignored\n" in out
    assert "  dll:       Binary row 'NoBinary' is missing or empty\n" in out


def test_json_keys_are_stable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scripts read --json: its keys change only on purpose."""
    if shutil.which("msibuild") is None:
        pytest.skip("needs msitools")
    msi = build_fixture("clean", tmp_path)
    assert main(["inspect", "--json", str(msi)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert sorted(document) == ["binaries", "custom_action_table", "custom_actions", "msi"]
    action = document["custom_actions"][0]
    assert sorted(action) == ["binary", "declared_type", "decoded", "entry_in_msica_dll",
                              "extended_type", "name", "sequenced", "source", "target", "type"]
    assert sorted(action["decoded"]) == [
        "basic", "execution", "flags", "impersonate", "kind", "problems", "return_handling",
        "scheduling", "source_means", "target_means", "valid"]
    assert sorted(action["sequenced"][0]) == ["condition", "control", "sequence", "table"]
    assert sorted(document["binaries"][0]) == [
        "actions", "arch", "binary", "msica", "problem", "python", "size", "warning"]


def test_a_row_that_differs_from_the_dll_manifest_is_flagged(
    echo_msi: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever wrote the CustomAction row (here: an edited include) changed the Type the
    msica DLL declares; inspect says so. (It caught wixl 0.101 dropping Execute="rollback".)"""
    project = echo_msi.parent
    include = project / "actions.wxi"
    text = include.read_text(encoding="utf-8")
    edited = text.replace('DllEntry="Echo" Execute="immediate" Impersonate="yes" Return="check"',
                          'DllEntry="Echo" Execute="immediate" Impersonate="yes" Return="ignore"')
    assert edited != text
    (project / "variant.wxi").write_text(edited, encoding="utf-8")
    product = (project / "product.wxs").read_text(encoding="utf-8")
    assert "actions.wxi" in product
    (project / "variant.wxs").write_text(product.replace("actions.wxi", "variant.wxi"),
                                         encoding="utf-8")
    msi = wixl_msi(project / "variant.wxs", project / "variant.msi")
    assert main(["inspect", str(msi)]) == 0
    out = capsys.readouterr().out
    echo, second = out.split("\n\nEcho: ")[1].split("\n\nSecondStep: ")
    assert ("  MISMATCH:  the DLL declares type 1 (immediate, return checked (failure stops "
            "the install)); whatever wrote this row changed it\n") in echo + "\n"
    assert "MISMATCH" not in second


def test_data_setters_are_entries_of_the_dll(shim_bytes: object) -> None:
    """A deferred action with uses= gets an immediate setter exported by the same DLL."""
    manifest = {"format": 1, "arch": "x64", "python": "3.12", "actions": [
        {"name": "Deploy", "type": 1 | 0x400 | 0x800, "data_setter": "MsicaData_Deploy"},
        {"name": "Check", "type": 1, "data_setter": None},
    ]}
    dll = payload.attach(shim_bytes("x64"),  # type: ignore[operator]
                         {"msica.json": json.dumps(manifest).encode()}, (3, 12))
    info = read_dll("Actions", dll)
    assert info.actions == ("Deploy", "Check")
    assert info.declared_type("Deploy") == 3073
    assert info.declared_type("MsicaData_Deploy") == 1
    assert info.declared_type("Check") == 1
    assert info.declared_type("Other") is None
