"""Type arithmetic, refused combinations, and the WiX v3/v4 text of `msica wxs`.

The v4 output is checked against the element and attribute names of the WiX v4
schema. The table below holds just the names msica writes, taken from
wixtoolset/wix, src/xsd/wix.xsd (commit 1df5ca3529d40c250dc54032a73a352daccb6647):
the definitions of Wix, Fragment, Binary, CustomAction, SetProperty,
InstallExecuteSequence and Custom, and the enumerations of CustomAction/@Execute,
CustomAction/@Return and SetProperty/@Sequence (SequenceType).
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from msica import custom_action
from msica.actions import Action
from msica.author import wxs
from msica.build import builder, config
from msica.build.discover import discover
from msica.build.runtime import Runtime
from msica.cli import main as msica_main
from msica.errors import AuthorError, BuildError
from tests.helpers import wixl_msi

WIX4 = "http://wixtoolset.org/schemas/v4/wxs"
WIX4_ATTRIBUTES: dict[str, set[str]] = {
    "Wix": {"RequiredVersion"},
    "Fragment": {"Id"},
    "Binary": {"Id", "SourceFile", "SuppressModularization"},
    "CustomAction": {
        "Id", "BinaryRef", "FileRef", "Property", "Directory", "Subdirectory", "DllEntry",
        "ExeCommand", "JScriptCall", "VBScriptCall", "Script", "ScriptSourceFile",
        "SuppressModularization", "Value", "Error", "Return", "Execute", "Impersonate",
        "PatchUninstall", "Bitness", "TerminalServerAware", "HideTarget",
    },
    "SetProperty": {"Action", "After", "Before", "Condition", "Id", "Sequence", "Value"},
    "InstallExecuteSequence": set(),
    "Custom": {"Action", "Condition", "OnExit", "Before", "After", "Overridable", "Sequence"},
}
WIX4_VALUES: dict[tuple[str, str], set[str]] = {
    ("CustomAction", "Execute"): {"commit", "deferred", "firstSequence", "immediate",
                                  "oncePerProcess", "rollback", "secondSequence"},
    ("CustomAction", "Return"): {"asyncNoWait", "asyncWait", "check", "ignore"},
    ("SetProperty", "Sequence"): {"execute", "ui", "first", "both"},
}
YES_NO = {"Impersonate", "PatchUninstall", "TerminalServerAware", "HideTarget"}

# (options of @custom_action, Type, ExtendedType): the documented vectors first.
TYPE_VECTORS: list[tuple[dict[str, Any], int, int]] = [
    ({}, 1, 0),
    ({"check_return": False}, 65, 0),
    ({"asynchronous": True}, 129, 0),
    ({"execute": "deferred"}, 1025, 0),
    ({"execute": "deferred", "impersonate": False}, 3073, 0),
    ({"execute": "rollback", "impersonate": False}, 3329, 0),
    ({"execute": "commit", "impersonate": False}, 3585, 0),
    ({"execute": "deferred", "impersonate": False, "hide_target": True}, 11265, 0),
    ({"execute": "deferred", "ts_aware": True}, 17409, 0),
    ({"execute": "first_sequence"}, 257, 0),
    ({"execute": "once_per_process"}, 513, 0),
    ({"execute": "client_repeat"}, 769, 0),
    ({"execute": "rollback"}, 1281, 0),
    ({"execute": "commit", "check_return": False}, 1601, 0),
    ({"execute": "rollback", "ts_aware": True}, 17665, 0),
    ({"hide_target": True}, 8193, 0),
    ({"execute": "deferred", "patch_uninstall": True, "condition": "MSIPATCHREMOVE"},
     1025, 32768),
]

# (options, what the message must say): each refused combination.
REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"execute": "later"}, r"execute='later' is not one of immediate, deferred"),
    ({"impersonate": False}, r"impersonate=False needs execute='deferred'"),
    ({"execute": "first_sequence", "impersonate": False},
     r"impersonate=False needs execute='deferred'"),
    ({"execute": "rollback", "asynchronous": True},
     r"rollback action cannot run asynchronously.*drop asynchronous=True"),
    ({"execute": "commit", "asynchronous": True}, r"commit actions run from the rollback"),
    ({"asynchronous": True, "check_return": False},
     r"only EXE actions may do: keep check_return=True"),
    ({"ts_aware": True}, r"ts_aware=True applies to in-script actions only"),
    ({"execute": "deferred", "ts_aware": True, "impersonate": False},
     r"ts_aware=True has no effect on an action that does not impersonate"),
    ({"patch_uninstall": True}, r"must be conditioned on MSIPATCHREMOVE.*condition="),
    ({"patch_uninstall": True, "condition": "NOT Installed"},
     r"must be conditioned on MSIPATCHREMOVE"),
    ({"uses": ["INSTALLDIR"]}, r"uses= passes properties to a deferred"),
    ({"data": "A=[B]"}, r"data= sets the CustomActionData of a deferred"),
    ({"execute": "deferred", "data": "A=[B]", "uses": ["B"]}, r"give uses=.*or data=.*not both"),
    ({"execute": "deferred", "data": "A<=>B"}, r"without '<=>'"),
    ({"hide_target": "yes"}, r"hide_target= takes True or False"),
    ({"after": "A", "before": "B"}, r"give after= or before=, not both"),
]


@pytest.mark.parametrize(("options", "number", "extended"), TYPE_VECTORS)
def test_type_vectors(options: dict[str, Any], number: int, extended: int) -> None:
    action = Action(name="A", function_name="a", **options)
    assert (action.type_number, action.extended_type) == (number, extended)


def test_the_docstring_lists_every_documented_vector() -> None:
    doc = Action.__doc__ or ""
    for number in (1, 65, 129, 1025, 3073, 3329, 3585, 11265, 17409):
        assert f"\n    {number} " in doc


@pytest.mark.parametrize(("options", "message"), REFUSALS)
def test_invalid_combinations_are_refused_when_decorating(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        @custom_action(**options)
        def Refused(session: object) -> None:  # pragma: no cover - never registered
            pass


def _source(options: dict[str, Any]) -> str:
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    return textwrap.dedent(f"""\
        from msica import custom_action

        def helper():
            pass

        @custom_action({arguments})
        def Action1(session):
            pass
    """)


@pytest.mark.parametrize(("options", "message"), REFUSALS)
def test_invalid_combinations_are_refused_when_building(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    module = tmp_path / "actions.py"
    module.write_text(_source(options), encoding="utf-8")
    with pytest.raises(BuildError, match=r"actions\.py:6: action Action1: .*" + message):
        discover([("actions", module)])


@pytest.mark.parametrize(("options", "number", "extended"), TYPE_VECTORS)
def test_build_reads_the_same_type_from_source(
    tmp_path: Path, options: dict[str, Any], number: int, extended: int
) -> None:
    module = tmp_path / "actions.py"
    module.write_text(_source(options), encoding="utf-8")
    [found] = discover([("actions", module)])
    assert (found.action.type_number, found.action.extended_type) == (number, extended)


def test_options_read_from_source_must_be_literals(tmp_path: Path) -> None:
    module = tmp_path / "actions.py"
    module.write_text("from msica import custom_action\nTS = True\n"
                      "@custom_action(execute='deferred', ts_aware=TS)\ndef A(s): pass\n")
    with pytest.raises(BuildError, match=r"actions\.py:3: @custom_action option ts_aware "
                                         r"must be a literal"):
        discover([("actions", module)])


def _info(*actions: Action) -> wxs.DllInfo:
    entries = []
    for action in actions:
        entries.append({
            "name": action.name, "type": action.type_number,
            "extended_type": action.extended_type, "execute": action.execute,
            "impersonate": action.impersonate, "check_return": action.check_return,
            "hide_target": action.hide_target, "asynchronous": action.asynchronous,
            "ts_aware": action.ts_aware, "patch_uninstall": action.patch_uninstall,
            "after": action.after, "before": action.before, "condition": action.condition,
            "uses": list(action.uses), "data": action.data,
            "data_setter": action.data_setter if action.uses or action.data else None,
        })
    return wxs.DllInfo(Path("app.x64.dll"), "x64", "3.12", tuple(entries))


EVERY_OPTION = _info(
    Action(name="Check", function_name="f", condition="NOT Installed & X < 2"),
    Action(name="Once", function_name="f", execute="first_sequence", check_return=False),
    Action(name="PerProcess", function_name="f", execute="once_per_process"),
    Action(name="Again", function_name="f", execute="client_repeat", asynchronous=True),
    Action(name="Write", function_name="f", execute="deferred", impersonate=False,
           data="OUT=[OUTDIR];WHO=[GREETING]"),
    Action(name="Secret", function_name="f", execute="deferred", hide_target=True,
           data="PASSWORD=[PASSWORD]"),
    Action(name="Ts", function_name="f", execute="deferred", ts_aware=True,
           uses=["INSTALLDIR"]),
    Action(name="Undo", function_name="f", execute="rollback", impersonate=False,
           before="InstallFinalize"),
    Action(name="Done", function_name="f", execute="commit", before="InstallFinalize"),
    Action(name="Unpatch", function_name="f", execute="deferred", patch_uninstall=True,
           condition="MSIPATCHREMOVE"),
)


def test_v4_fragment_uses_only_names_of_the_v4_schema() -> None:
    text = wxs.render(EVERY_OPTION, source_file="bin/app.x64.dll", wix=4)
    root = ET.fromstring(text.split("\n", 1)[1].encode())  # the XML declaration aside
    assert root.tag == f"{{{WIX4}}}Wix"
    seen = set()
    for element in root.iter():
        namespace, _, name = element.tag[1:].partition("}")
        assert namespace == WIX4
        assert name in WIX4_ATTRIBUTES, name
        for attribute, value in element.attrib.items():
            assert attribute in WIX4_ATTRIBUTES[name], f"{name}/@{attribute}"
            allowed = WIX4_VALUES.get((name, attribute))
            if allowed is not None:
                assert value in allowed, f"{name}/@{attribute}={value}"
            if attribute in YES_NO:
                assert value in ("yes", "no")
            seen.add((name, attribute))
        if name == "Custom":  # v4 takes the condition as an attribute, never as text
            assert not (element.text or "").strip()
    for expected in [("CustomAction", "BinaryRef"), ("CustomAction", "HideTarget"),
                     ("CustomAction", "TerminalServerAware"), ("CustomAction", "PatchUninstall"),
                     ("Custom", "Condition"), ("SetProperty", "Value"),
                     ("CustomAction", "Property")]:
        assert expected in seen


def test_v4_fragment_text() -> None:
    text = wxs.render(EVERY_OPTION, source_file="bin/app.x64.dll", wix=4)
    assert ('<CustomAction Id="Once" BinaryRef="msica_app.x64.dll" DllEntry="Once" '
            'Execute="firstSequence" Impersonate="yes" Return="ignore"/>') in text
    assert 'Id="Again" ' in text and 'Execute="secondSequence" Impersonate="yes" ' \
        'Return="asyncWait"/>' in text
    assert ('<Custom Action="Check" After="CostFinalize" '
            'Condition="NOT Installed &amp; X &lt; 2"/>') in text
    # data= without hide_target: v4's SetProperty, placed where the action was.
    assert ('<SetProperty Id="Write" Action="MsicaData_Write" '
            'Value="OUT=[OUTDIR];WHO=[GREETING]" After="InstallInitialize" '
            'Sequence="execute"/>') in text
    assert '<Custom Action="Write" After="MsicaData_Write"/>' in text
    assert '<Custom Action="MsicaData_Write"' not in text
    # SetProperty has no HideTarget: a hidden setter stays a CustomAction.
    assert ('<CustomAction Id="MsicaData_Secret" Property="Secret" '
            'Value="PASSWORD=[PASSWORD]" Execute="immediate" Impersonate="yes" '
            'Return="check" HideTarget="yes"/>') in text
    assert '<Custom Action="MsicaData_Secret" After="Write"/>' in text
    assert 'DllEntry="Ts" Execute="deferred" Impersonate="yes" Return="check" ' \
        'TerminalServerAware="yes"/>' in text
    assert 'Execute="deferred" Impersonate="yes" Return="check" PatchUninstall="yes"/>' in text
    assert '<Custom Action="Undo" Before="InstallFinalize"/>' in text
    assert "Sequence=\"1" not in text  # v4: After/Before only


def test_v3_include_and_fragment() -> None:
    include = wxs.render(EVERY_OPTION, source_file="app.x64.dll")
    assert '<Include xmlns="http://schemas.microsoft.com/wix/2006/wi">' in include
    assert ('<CustomAction Id="MsicaData_Write" Property="Write" '
            'Value="OUT=[OUTDIR];WHO=[GREETING]" Execute="immediate" Impersonate="yes" '
            'Return="check"/>') in include
    assert '<Custom Action="Check" Sequence="1002">NOT Installed &amp; X &lt; 2</Custom>' \
        in include
    assert '<Custom Action="Once" Sequence="1004"/>' in include
    assert '<Custom Action="MsicaData_Write" Sequence="1502"/>' in include
    assert '<Custom Action="Write" Sequence="1504"/>' in include
    assert '<Custom Action="Undo" Sequence="6599"/>' in include
    assert '<Custom Action="Done" Sequence="6598"/>' in include
    assert '<Custom Action="Unpatch" Sequence="1514">MSIPATCHREMOVE</Custom>' in include
    assert ('BinaryKey="msica_app.x64.dll" DllEntry="Done" Execute="commit" '
            'Impersonate="yes" Return="check"/>') in include
    fragment = wxs.render(EVERY_OPTION, source_file="app.x64.dll", style="fragment")
    assert "<Fragment>" in fragment and "BinaryRef" not in fragment
    assert '<Custom Action="Check" After="CostFinalize">NOT Installed &amp; X &lt; 2' \
        '</Custom>' in fragment
    for element in ET.fromstring(fragment.split("\n", 1)[1].encode()).iter():
        assert element.tag.startswith("{http://schemas.microsoft.com/wix/2006/wi}")


def test_v4_refuses_the_include_style() -> None:
    with pytest.raises(AuthorError, match=r"style 'include' is for WiX v3.*drop --style"):
        wxs.render(EVERY_OPTION, source_file="a.dll", style="include", wix=4)
    with pytest.raises(AuthorError, match=r"--wix 5: write 3 or 4"):
        wxs.render(EVERY_OPTION, source_file="a.dll", wix=5)


@pytest.mark.skipif(shutil.which("wixl") is None or shutil.which("msibuild") is None,
                    reason="needs msitools (wixl, msibuild, msiinfo)")
def test_wixl_compiles_the_include_to_the_type_numbers(tmp_path: Path) -> None:
    """wixl turns the include into CustomAction rows whose Type is msica's number, once
    the msibuild queries the include names (for the options wixl drops) have run."""
    (tmp_path / "app.x64.dll").write_bytes(b"MZ not really")
    (tmp_path / "actions.wxi").write_text(
        wxs.render(EVERY_OPTION, source_file="app.x64.dll"), encoding="utf-8")
    product = (Path(__file__).parents[1] / "fixtures" / "echo" / "product.wxs").read_text()
    msi = wixl_msi(tmp_path, product, "product")
    fixes = wxs.wixl_type_fixes(EVERY_OPTION)
    assert {name for name, _, _ in fixes} == {
        "Once", "PerProcess", "Again", "Secret", "MsicaData_Secret", "Ts", "Undo", "Done",
        "Unpatch"}
    for name, number, extended in fixes:
        subprocess.run(["msibuild", str(msi), "-q", wxs._fix_query(name, number, extended)],
                       check=True)
    rows = subprocess.run(["msiinfo", "export", str(msi), "CustomAction"], check=True,
                          capture_output=True, text=True).stdout.splitlines()[3:]
    table = {row.split("\t")[0]: row.split("\t") for row in rows}
    expected = {entry["name"]: (entry["type"], entry["extended_type"])
                for entry in EVERY_OPTION.actions}
    expected.update({"MsicaData_Write": (51, 0), "MsicaData_Secret": (51 + 0x2000, 0),
                     "MsicaData_Ts": (1, 0)})
    got = {name: (int(row[1]), int(row[4] or 0)) for name, row in table.items()}
    assert got == expected
    assert table["MsicaData_Write"][2:4] == ["Write", "OUT=[OUTDIR];WHO=[GREETING]"]


def test_manifest_carries_the_new_options(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.msica]\nactions = ["actions"]\n')
    (project / "actions.py").write_text(textwrap.dedent("""\
        from msica import custom_action

        @custom_action(execute="deferred", ts_aware=True, data="A=[B]",
                       patch_uninstall=True, condition="MSIPATCHREMOVE")
        def Deferred(session):
            pass
    """))
    found = builder.find_actions(project, config.load(project))
    rt = Runtime(version=(3, 12), arch="x64", files={}, source="s", sha256="h")
    document = __import__("json").loads(builder.manifest(found, rt))
    [entry] = document["actions"]
    assert entry["type"] == 1 + 0x400 + 0x4000
    assert entry["extended_type"] == 0x8000
    assert (entry["ts_aware"], entry["patch_uninstall"]) == (True, True)
    assert (entry["data"], entry["data_setter"]) == ("A=[B]", "MsicaData_Deferred")


def test_cli_writes_a_v4_fragment(tmp_path: Path, echo_dll_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert msica_main(["wxs", str(echo_dll_path), "--wix", "4",
                       "-o", str(tmp_path / "a.wxs")]) == 0
    text = (tmp_path / "a.wxs").read_text(encoding="utf-8")
    assert f'<Wix xmlns="{WIX4}">' in text and 'BinaryRef="msica_echo.x64.dll"' in text
    assert msica_main(["wxs", str(echo_dll_path), "--wix", "4", "--style", "include"]) == 5
    assert "style 'include' is for WiX v3" in capsys.readouterr().err


@pytest.fixture(scope="module")
def echo_dll_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers import FIXTURES

    project = tmp_path_factory.mktemp("echo4") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    [result] = builder.build(project, config.load(project), offline=True)
    return result.dll


def test_include_numbers_a_rollback_action_before_its_deferred_one() -> None:
    info = _info(
        Action(name="Write", function_name="f", execute="deferred", data="A=[B]"),
        Action(name="Undo", function_name="f", execute="rollback", before="Write"),
    )
    include = wxs.render(info, source_file="a.dll")
    assert '<Custom Action="MsicaData_Write" Sequence="1502"/>' in include
    assert '<Custom Action="Write" Sequence="1504"/>' in include
    assert '<Custom Action="Undo" Sequence="1503"/>' in include
    fragment = wxs.render(info, source_file="a.dll", style="fragment")
    assert '<Custom Action="Undo" Before="Write"/>' in fragment


def test_include_refuses_to_number_an_action_across_a_standard_action() -> None:
    actions = [Action(name=f"Step{n}", function_name="f", execute="deferred")
               for n in range(50)]  # 1502, 1504, ... reaches ProcessComponents (1600)
    with pytest.raises(AuthorError, match=r"action Step49: no free sequence number after "
                                          r"Step48 short of the next standard action"):
        wxs.render(_info(*actions), source_file="a.dll")
