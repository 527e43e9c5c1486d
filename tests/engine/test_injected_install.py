"""msica inject, for real: an .msi built by wixl without any custom action gets an
msica DLL injected, is re-read by an independent reader (msica.author.msifile,
pure Python over olefile), and installed by wine64 msiexec. The assertions are
on what the actions did: the properties they set and the lines they logged.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from msica.author import validate
from msica.author.msifile import MsiFile
from msica.build import builder, config
from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import FIXTURES, product_source, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120

DEFERRED_ACTIONS = '''
from msica import Session, custom_action


@custom_action(execute="deferred", uses=["INJECT_NOTE"], condition="NOT REMOVE")
def Noted(session: Session) -> None:
    session.log("noted " + session.custom_action_data["INJECT_NOTE"])
'''


@pytest.fixture(scope="module")
def plain_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plain")
    (folder / "readme.txt").write_text("installed by a plain .msi\n", encoding="utf-8")
    # A product msica had no part in: one component installing one file, no custom action.
    plain = product_source("msica inject test", component_id="Readme",
                           component='<File Id="Readme" Source="readme.txt" KeyPath="yes"/>',
                           upgrade=str(uuid.uuid4()))
    (folder / "plain.wxs").write_text(plain, encoding="utf-8")
    msi = wixl_msi(folder / "plain.wxs", folder / "plain.msi")
    with MsiFile.open(msi) as reread:
        assert reread.rows("CustomAction") == []  # nothing of msica's before injection
    return msi


@pytest.fixture(scope="module")
def echo_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("echo") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    (result,) = builder.build(project, config.load(project))
    return result.dll


def msica_rows(msi: Path) -> tuple[list[dict[str, object]], list[tuple[object, ...]],
                                   list[object]]:
    """The CustomAction rows, the msica sequence rows and the Binary keys, re-read."""
    with MsiFile.open(msi) as reread:
        actions = sorted(reread.rows("CustomAction"), key=lambda r: str(r["Action"]))
        names = {r["Action"] for r in actions}
        sequence = sorted((r["Action"], r["Sequence"], r["Condition"])
                          for r in reread.rows("InstallExecuteSequence")
                          if r["Action"] in names)
        binaries = [r["Name"] for r in reread.rows("Binary")]
    return actions, sequence, binaries


def test_injected_echo_installs_and_injecting_again_replaces(
    tmp_path: Path, plain_msi: Path, echo_dll: Path
) -> None:
    msi = tmp_path / "app.msi"
    shutil.copy(plain_msi, msi)
    assert msica_main(["inject", str(msi), "--dll", str(echo_dll)]) == 0

    actions, sequence, binaries = msica_rows(msi)
    assert binaries == ["msica_echo.x64.dll"]
    with MsiFile.open(msi) as reread:
        assert reread.stream("Binary", "msica_echo.x64.dll") == echo_dll.read_bytes()
    assert [(r["Action"], r["Type"], r["Source"], r["Target"]) for r in actions] == [
        ("Echo", 1, "msica_echo.x64.dll", "Echo"),
        ("SecondStep", 1, "msica_echo.x64.dll", "SecondStep"),
    ]
    assert sequence == [("Echo", 1001, None), ("SecondStep", 1002, None)]
    assert validate.validate(msi).findings == ()

    first = runner.install(msi, {"ECHO_INPUT": "injected text"},
                           log_path=tmp_path / "first.log", timeout=ENGINE_TIMEOUT)
    assert first.exit_code == 0
    assert first.log.properties["ECHO_LENGTH"] == "13"
    assert first.log.properties["SECOND_SAW"] == "length=13"
    echo = first.log.action("Echo")
    assert echo.return_value == 1
    assert "msica[Echo] echo read 13 characters; brackets [stay] as written" in echo.lines
    removed = runner.install(msi, uninstall=True, log_path=tmp_path / "remove.log",
                             timeout=ENGINE_TIMEOUT)
    assert removed.exit_code == 0

    # Again into the injected package: the same rows, once each.
    assert msica_main(["inject", str(msi), "--dll", str(echo_dll)]) == 0
    assert msica_rows(msi) == (actions, sequence, binaries)
    second = runner.install(msi, {"ECHO_INPUT": "again"}, log_path=tmp_path / "second.log",
                            timeout=ENGINE_TIMEOUT)
    assert second.exit_code == 0
    assert second.log.properties["ECHO_LENGTH"] == "5"
    assert [run.name for run in second.log.actions].count("Echo") == 1
    runner.install(msi, uninstall=True, log_path=tmp_path / "remove2.log",
                   timeout=ENGINE_TIMEOUT)


def test_injected_deferred_action_gets_its_data_from_the_setter(
    tmp_path: Path, plain_msi: Path
) -> None:
    project = tmp_path / "deferred"
    project.mkdir()
    (project / "deferred_actions.py").write_text(DEFERRED_ACTIONS, encoding="utf-8")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "deferred"\nversion = "0.1.0"\n\n'
        '[tool.msica]\nactions = ["deferred_actions"]\npython = "3.12"\n', encoding="utf-8")
    (result,) = builder.build(project, config.load(project))
    msi = tmp_path / "app.msi"
    assert msica_main(["inject", str(plain_msi), "--dll", str(result.dll),
                       "--sequence", "Noted=before:InstallFinalize", "-o", str(msi)]) == 0

    _, sequence, _ = msica_rows(msi)
    assert sequence == [("MsicaData_Noted", 6598, "NOT REMOVE"),
                        ("Noted", 6599, "NOT REMOVE")]
    assert validate.validate(msi).findings == ()

    note = "a;b=c <=> [x]"
    installed = runner.install(msi, {"INJECT_NOTE": note}, log_path=tmp_path / "install.log",
                               timeout=ENGINE_TIMEOUT)
    try:
        assert installed.exit_code == 0
        run = installed.log.action("Noted")
        assert run.return_value == 1
        assert f"msica[Noted] noted {note}" in run.lines, run.lines
    finally:
        runner.install(msi, uninstall=True, log_path=tmp_path / "remove.log",
                       timeout=ENGINE_TIMEOUT)
