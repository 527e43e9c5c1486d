"""msica run, msica log and the msica_install fixture on real installs of a package whose
msica actions run on install (Greet), on removal only (RecordRemoval, REMOVE="ALL") and
fail on request (FailWhenAsked, FAIL_WITH): tests/fixtures/lifecycle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from msica.build import builder, config
from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine
pytest_plugins = ["pytester"]

PRODUCT = "msica lifecycle test"


@pytest.fixture(scope="module")
def lifecycle_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("lifecycle") / "lifecycle"
    shutil.copytree(FIXTURES / "lifecycle", project)
    dll = builder.build(project, config.load(project))[0].dll
    assert msica_main(["wxs", str(dll), "-o", str(project / "actions.wxi")]) == 0
    return wixl_msi(project / "product.wxs", project / "lifecycle.msi")


def _action(document: dict[str, Any], name: str) -> dict[str, Any]:
    runs = [a for a in document["actions"] if a["name"] == name]
    assert runs, f"{name} not among {[a['name'] for a in document['actions']]}"
    return runs[-1]


def _ran(document: dict[str, Any], name: str) -> bool:
    return any(a["name"] == name and a["msica_lines"] for a in document["actions"])


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = msica_main(["run", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_run_json_reports_an_install_then_its_removal(
    lifecycle_msi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, installed = _run_json(capsys, str(lifecycle_msi), "--log", str(tmp_path / "i.log"))
    try:
        assert (code, installed["exit_code"], installed["succeeded"]) == (0, 0, True)
        assert installed["failed_action"] is None
        greet = _action(installed, "Greet")
        assert (greet["return_value"], greet["outcome"]) == (1, "succeeded")
        assert greet["msica_lines"] == ["msica[Greet] greeted"]
        assert greet["traceback"] is None
        # Every property of the final dump, not only those asked for.
        properties = installed["properties"]
        assert properties["GREETED"] == f"installing {PRODUCT}"
        assert properties["ProductName"] == PRODUCT
        assert properties["ProductCode"].startswith("{")
        assert "REMOVAL_SEEN" not in properties
        assert not _ran(installed, "RecordRemoval")
        assert _action(installed, "INSTALL")["return_value"] == 1
    finally:
        code, removed = _run_json(capsys, str(lifecycle_msi), "--uninstall",
                                  "--log", str(tmp_path / "x.log"))
    assert (code, removed["exit_code"]) == (0, 0)
    assert "/x" in removed["command"]
    assert removed["properties"]["REMOVE"] == "ALL"
    # The removal-only action ran, and what it did is in the uninstall's result.
    assert removed["properties"]["REMOVAL_SEEN"] == f"removing {PRODUCT} (REMOVE=ALL)"
    record = _action(removed, "RecordRemoval")
    assert record["return_value"] == 1
    assert record["msica_lines"] == ["msica[RecordRemoval] removal recorded"]
    assert not _ran(removed, "Greet")


def test_msica_log_names_the_failed_action_and_shows_its_traceback(
    lifecycle_msi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "failed.log"
    capsys.readouterr()
    code = msica_main(["run", str(lifecycle_msi), "-p", "FAIL_WITH=boom", "--log", str(log)])
    out = capsys.readouterr().out
    assert code == 1
    assert "exit code 1603" in out
    assert "  failed action: FailWhenAsked" in out
    assert "ValueError: asked to fail: boom" in out

    # The same log, read afterwards: the culprit and the traceback that explains it.
    assert msica_main(["log", str(log)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"log {log}: failed (log: {log})"
    failure = lines.index("  failed action: FailWhenAsked")
    assert lines[failure + 1] == "    Traceback (most recent call last):"
    assert any('lifecycle_actions.py", line' in line for line in lines[failure:])
    assert lines[-1] == "    ValueError: asked to fail: boom"

    assert msica_main(["log", str(log), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["failed_action"] == "FailWhenAsked"
    assert document["failure"]["msica_lines"][0] == "msica[FailWhenAsked] about to fail"
    assert document["failure"]["traceback"].endswith("ValueError: asked to fail: boom")
    assert document["properties"]["FAIL_WITH"] == "boom"
    assert _action(document, "Greet")["return_value"] == 1  # it ran before the failure


def test_msica_install_fixture_installs_and_cleans_up(
    lifecycle_msi: Path, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_engine=f'''
import sys
from pathlib import Path

from msica.testing import run_action

MSI = Path({str(lifecycle_msi)!r})
sys.path.insert(0, {str(FIXTURES / "lifecycle")!r})
from lifecycle_actions import RecordRemoval  # noqa: E402


def test_simulated_and_real_removal_agree(msica_session, msica_install, tmp_path):
    installed = msica_install(MSI)
    assert installed.exit_code == 0
    assert installed.log.properties["GREETED"] == "installing {PRODUCT}"
    assert installed.log_path.parent == tmp_path
    removed = msica_install(MSI, uninstall=True)
    assert removed.exit_code == 0
    session = msica_session({{"ProductName": "{PRODUCT}", "REMOVE": "ALL"}})
    assert run_action(RecordRemoval, session) == 0
    assert session.properties["REMOVAL_SEEN"] == removed.log.properties["REMOVAL_SEEN"]
    real_lines = removed.log.action("RecordRemoval").lines
    assert session.log_lines == [line for line in real_lines if line.startswith("msica")]


def test_left_installed(msica_install):
    assert msica_install(MSI).exit_code == 0
''')
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)
    # The fixture removed what the second test left installed: installing again is a
    # first install (RecordRemoval ran at its cleanup, Installed is unset now).
    fresh = runner.install(lifecycle_msi, log_path=tmp_path / "fresh.log")
    try:
        assert fresh.exit_code == 0
        assert "Installed" not in fresh.log.properties
    finally:
        runner.install(lifecycle_msi, uninstall=True, log_path=tmp_path / "cleanup.log")
