"""The pytest plugin (``msica.testing.plugin``, a pytest11 entry point): a test file a user
would write, run by pytest's own pytester, with nothing but the installed package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from msica.errors import EngineError
from msica.testing import runner
from tests.helpers import fixture_msi

pytest_plugins = ["pytester"]

SIMULATED_TESTS = '''
from msica import ActionResult, custom_action
from msica.testing import SimulatedSession, run_action


@custom_action(execute="deferred", uses=["INSTALLDIR"])
def WriteConfig(session):
    session.log("config in " + session.custom_action_data["INSTALLDIR"])
    session.progress.report(10)


def test_deferred_action(msica_session):
    session = msica_session({"INSTALLDIR": "C:\\\\App\\\\"})
    assert isinstance(session, SimulatedSession)
    assert run_action(WriteConfig, session) == ActionResult.SUCCESS
    assert session.log_lines == ["msica[WriteConfig] config in C:\\\\App\\\\"]
    assert session.progress == [(2, 10, 0)]


def test_options_reach_the_session(msica_session):
    session = msica_session(action="Other", execute="commit", hidden=["PW"])
    assert session.in_script and session.action == "Other"


def test_a_failing_action(msica_session):
    session = msica_session(action="Fails")
    assert run_action(lambda s: 1 / 0, session) == 1603
    assert session.log_lines[0].endswith("ZeroDivisionError: division by zero")
'''


def test_msica_session_fixture_comes_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SIMULATED_TESTS)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)


def test_msica_install_skips_with_a_reason_when_there_is_no_engine(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_no_engine='''
from pathlib import Path

from msica.errors import EngineError
from msica.testing import runner


def test_install(msica_install, monkeypatch):
    def no_engine():
        raise EngineError("wine64 not found: install it (apt-get install wine64)")
    monkeypatch.setattr(runner, "find_engine", no_engine)
    msica_install(Path("app.msi"))
    raise AssertionError("not skipped")
''')
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "*no Windows Installer engine to install app.msi: wine64 not found*"
    ])


@pytest.mark.engine
def test_msica_install_runs_the_real_engine(pytester: pytest.Pytester, tmp_path: Path) -> None:
    try:
        runner.find_engine()
    except EngineError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh installs it)")
    if shutil.which("wixl") is None:
        pytest.fail("wixl not found: scripts/setup.sh installs it (apt-get install wixl)")
    msi = fixture_msi(tmp_path / "pkg", name="msica plugin test")
    pytester.makepyfile(test_engine=f'''
from pathlib import Path

MSI = Path({str(msi)!r})


def test_install_then_uninstall(msica_install, tmp_path):
    result = msica_install(MSI, {{"GREETING": "hello from the plugin"}})
    assert result.exit_code == 0
    assert result.log.properties["RESULT_PROP"] == "hello from the plugin"
    assert result.log_path.parent == tmp_path
    removed = msica_install(MSI, uninstall=True)
    assert removed.exit_code == 0
    assert removed.log.properties["REMOVE"] == "ALL"


def test_left_installed(msica_install):
    assert msica_install(MSI).exit_code == 0
''')
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)
    # The fixture uninstalled what the second test left installed: a fresh install
    # is a first install again (no maintenance mode), so Installed is unset.
    fresh = runner.install(msi, log_path=tmp_path / "fresh.log")
    try:
        assert fresh.exit_code == 0
        assert "Installed" not in fresh.log.properties
    finally:
        runner.install(msi, uninstall=True, log_path=tmp_path / "cleanup.log")
