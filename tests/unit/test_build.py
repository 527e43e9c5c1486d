"""msica build and msica wxs, short of the engine: config, discovery, errors, WiX text."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from msica.author import wxs
from msica.build import builder, config, exports, payload
from msica.cli import main as msica_main
from msica.errors import BuildError, ConfigError
from tests.helpers import FIXTURES


def _project(tmp_path: Path, actions: str, table: str = 'actions = ["actions"]') -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.msica]\n{table}\n', encoding="utf-8"
    )
    (tmp_path / "actions.py").write_text(textwrap.dedent(actions), encoding="utf-8")
    return tmp_path


def test_unknown_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    project = _project(tmp_path, "", table='action = ["actions"]')
    with pytest.raises(ConfigError, match=r"no key 'action'; did you mean 'actions'\?"):
        config.load(project)


def test_defaults_and_project_name(tmp_path: Path) -> None:
    loaded = config.load(_project(tmp_path, ""))
    assert (loaded.name, loaded.python, loaded.archs, loaded.output) == (
        "demo", "3.12", ("x64",), "dist",
    )
    assert loaded.python_version == (3, 12)


def test_actions_are_read_from_source_without_running_it(tmp_path: Path) -> None:
    project = _project(tmp_path, """
        import winreg  # Windows-only: must not be imported at build time
        import msica
        from msica import custom_action

        @custom_action
        def First(session):
            pass

        @msica.custom_action(name="Renamed", execute="deferred", impersonate=False,
                             check_return=False, condition="NOT Installed")
        def second(session):
            pass

        def helper():
            pass
    """)
    found = builder.find_actions(project, config.load(project))
    assert [(f.action.name, f.action.function_name, f.line) for f in found] == [
        ("First", "First", 7), ("Renamed", "second", 12),
    ]
    renamed = found[1].action
    # 1 (DLL in Binary) + 0x400 in-script + 0x800 no-impersonate + 0x40 continue
    assert renamed.type_number == 1 + 0x400 + 0x800 + 0x40 == 3137
    assert renamed.condition == "NOT Installed"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(s):\n    pass\n", r"no @custom_action functions found in .*actions\.py"),
        ("from msica import custom_action\nX = 'a'\n@custom_action(name=X)\ndef f(s): pass\n",
         r"actions\.py:3: @custom_action option name must be a literal"),
        ("from msica import custom_action\n@custom_action(nmae='A')\ndef f(s): pass\n",
         r"has no option 'nmae'"),
        ("from msica import custom_action\n@custom_action\ndef A(s): pass\n"
         "@custom_action(name='A')\ndef b(s): pass\n",
         r"two actions are named 'A' \(.*actions\.py:3 and .*actions\.py:5\)"),
        ("from msica import custom_action\n@custom_action(execute='later')\ndef f(s): pass\n",
         r"execute='later' is not one of immediate"),
        ("def broken(:\n", r"actions\.py:1: cannot read the actions module"),
    ],
)
def test_bad_projects_get_clear_errors(tmp_path: Path, source: str, message: str) -> None:
    project = _project(tmp_path, source)
    with pytest.raises(BuildError, match=message):
        builder.find_actions(project, config.load(project))


def test_invalid_export_name_stops_the_build(tmp_path: Path) -> None:
    project = _project(tmp_path, """
        from msica import custom_action

        @custom_action(name="Has Space")
        def f(session):
            pass
    """)
    with pytest.raises(BuildError, match="Has Space"):
        builder.build(project, config.load(project), offline=True)


def test_cli_reports_errors_with_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert msica_main(["build", str(tmp_path)]) == ConfigError.exit_code
    assert "no pyproject.toml" in capsys.readouterr().err
    project = _project(tmp_path, "x = 1\n")
    assert msica_main(["build", str(project)]) == BuildError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("msica: error: no @custom_action functions found")
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def echo_dll(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    project = tmp_path_factory.mktemp("echo") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    first = builder.build(project, config.load(project), output=project / "a")[0].dll
    second = builder.build(project, config.load(project), output=project / "b")[0].dll
    return first, second


def test_dll_is_the_renamed_shim_plus_payload(echo_dll: tuple[Path, Path]) -> None:
    data = echo_dll[0].read_bytes()
    info = exports.read_pe(data)
    assert info.machine == "x64"
    assert {"CustomAction", "Echo", "SecondStep"} <= set(info.exports)
    trailer = payload.read_trailer(data)
    assert trailer.python == (3, 12)
    assert trailer.archive_offset == info.image_end
    files = payload.read_entries(data, trailer)
    for name in ("python312.dll", "python3.dll", "python312._pth", "lib/echo_actions.py",
                 "lib/msica/_host.py", "lib/msica/_native/_msi_ffi.py", "msica.json"):
        assert name in files, name
    assert not any(name.startswith(("lib/msica/build/", "lib/msica/author/"))
                   for name in files)
    assert files["python312._pth"] == b"python312.zip\n.\nlib\n"
    assert b"'SecondStep': 'echo_actions'" in files["lib/_msica_payload.py"]


def test_building_twice_gives_the_same_bytes(echo_dll: tuple[Path, Path]) -> None:
    assert echo_dll[0].read_bytes() == echo_dll[1].read_bytes()


def test_wxs_include_numbers_the_sequence(echo_dll: tuple[Path, Path], tmp_path: Path) -> None:
    out = wxs.write(echo_dll[0], tmp_path / "actions.wxi")
    text = out.read_text(encoding="utf-8")
    assert '<Include xmlns="http://schemas.microsoft.com/wix/2006/wi">' in text
    assert '<Binary Id="msica_echo.x64.dll" SourceFile="' in text
    assert ('<CustomAction Id="SecondStep" BinaryKey="msica_echo.x64.dll" '
            'DllEntry="SecondStep" Execute="immediate" Impersonate="yes" Return="check"/>'
            ) in text
    assert '<Custom Action="Echo" Sequence="1002"/>' in text
    assert '<Custom Action="SecondStep" Sequence="1004"/>' in text


def test_wxs_fragment_keeps_after_and_conditions(tmp_path: Path) -> None:
    info = wxs.DllInfo(
        path=Path("app.x64.dll"), arch="x64", python="3.12",
        actions=(
            {"name": "A", "execute": "immediate", "impersonate": True, "check_return": True,
             "hide_target": False, "after": None, "before": None, "condition": "X < 2 & Y"},
            {"name": "B", "execute": "deferred", "impersonate": False, "check_return": False,
             "hide_target": True, "after": None, "before": "InstallFinalize",
             "condition": None},
        ),
    )
    text = wxs.render(info, source_file="bin/app.x64.dll", style="fragment")
    assert "<Fragment>" in text and "<Include" not in text
    assert '<Custom Action="A" After="CostFinalize">X &lt; 2 &amp; Y</Custom>' in text
    assert '<Custom Action="B" Before="InstallFinalize"/>' in text
    assert ('Execute="deferred" Impersonate="no" Return="ignore" HideTarget="yes"/>') in text
    numbered = wxs.render(info, source_file="bin/app.x64.dll")
    assert '<Custom Action="B" Sequence="6599"/>' in numbered


def test_wxs_refuses_a_file_without_payload(tmp_path: Path) -> None:
    bare = tmp_path / "bare.dll"
    bare.write_bytes(builder.shim_path("x64").read_bytes())
    with pytest.raises(Exception, match="no msica payload"):
        wxs.read_dll(bare)


def test_version_comes_from_the_installed_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    import msica

    with pytest.raises(SystemExit) as exit_info:
        msica_main(["--version"])
    assert exit_info.value.code == 0
    version = metadata.version("msica")  # written by setuptools-scm from git
    assert version != "0+payload"
    assert msica.__version__ == version
    assert capsys.readouterr().out.strip() == f"msica {version}"


def test_wxs_adds_the_data_setter_before_an_action_with_uses() -> None:
    deferred = {
        "name": "Install", "execute": "deferred", "impersonate": False, "check_return": True,
        "hide_target": False, "after": None, "before": None, "condition": "NOT Installed",
        "uses": ["INSTALLDIR"], "data_setter": "MsicaData_Install",
    }
    info = wxs.DllInfo(path=Path("app.x64.dll"), arch="x64", python="3.12",
                       actions=(deferred,))
    numbered = wxs.render(info, source_file="app.x64.dll")
    assert ('<CustomAction Id="MsicaData_Install" BinaryKey="msica_app.x64.dll" '
            'DllEntry="MsicaData_Install" Execute="immediate" Impersonate="yes" '
            'Return="check"/>') in numbered
    assert ('<Custom Action="MsicaData_Install" Sequence="1502">NOT Installed</Custom>'
            in numbered)
    assert '<Custom Action="Install" Sequence="1504">NOT Installed</Custom>' in numbered
    fragment = wxs.render(info, source_file="app.x64.dll", style="fragment")
    assert ('<Custom Action="MsicaData_Install" After="InstallInitialize">NOT Installed'
            in fragment)
    assert '<Custom Action="Install" After="MsicaData_Install">NOT Installed' in fragment


def test_uses_is_for_deferred_actions_only(tmp_path: Path) -> None:
    project = _project(tmp_path, """
        from msica import custom_action

        @custom_action(uses=["INSTALLDIR"])
        def Now(session):
            pass
    """)
    with pytest.raises(BuildError, match="uses= passes properties to a deferred"):
        builder.find_actions(project, config.load(project))
