"""A project from ``msica new``, for real: its own tests pass, it builds, its .msi
installs with the real engine, and its actions do what the template says.

The generated project is built the way its README says for Linux: msica build,
msica wxs, wixl on product.wixl.wxs, then tools/wixl_types.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import windows_path, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120
SLUG = "engine_demo"
WIX4 = "{http://wixtoolset.org/schemas/v4/wxs}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("new")
    assert msica_main(["new", "Engine Demo", "-o", str(out), "--no-input"]) == 0
    return out / SLUG


@pytest.fixture(scope="module")
def msi(project: Path) -> Path:
    dll = project / "dist" / f"{SLUG}.x64.dll"
    assert msica_main(["build", str(project)]) == 0
    assert msica_main(["wxs", str(dll), "-o", str(project / "actions.wxi")]) == 0
    package = wixl_msi(project / "product.wixl.wxs", project / "dist" / f"{SLUG}.msi")
    subprocess.run([sys.executable, "tools/wixl_types.py", str(dll), str(package)],
                   cwd=project, check=True)
    return package


def _pytest_in(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def test_generated_unit_tests_pass(project: Path) -> None:
    done = _pytest_in(project, "-m", "not engine")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout, done.stdout


def test_install_runs_the_immediate_and_deferred_actions(msi: Path, tmp_path: Path) -> None:
    target = tmp_path / "app"
    where = {"INSTALLDIR": windows_path(target) + "\\"}
    runner.install(msi, uninstall=True, timeout=ENGINE_TIMEOUT)  # a leftover of a stopped run

    result = runner.install(msi, {**where, "GREETING_NAME": "Grace Hopper"},
                            log_path=tmp_path / "install.log", timeout=ENGINE_TIMEOUT)
    assert result.exit_code == 0, result.log_path
    # The immediate action read GREETING_NAME and set GREETING...
    assert result.log.properties["GREETING"] == "Hello, Grace Hopper!"
    assert "msica[ComposeGreeting] composed the greeting for Grace Hopper" in (
        result.log.action("ComposeGreeting").lines
    )
    # ...and the deferred one, given it through uses=, wrote it into the install dir.
    assert (target / "greeting.txt").read_text(encoding="utf-8") == "Hello, Grace Hopper!\n"
    # The rollback action was scheduled, not run: the file is still there.
    assert not any(line.startswith("msica[RemoveGreetingFile]")
                   for line in result.log.msica_lines), result.log.msica_lines

    removed = runner.install(msi, where, uninstall=True, log_path=tmp_path / "uninstall.log",
                             timeout=ENGINE_TIMEOUT)
    assert removed.exit_code == 0, removed.log_path
    assert not (target / "greeting.txt").exists()
    assert any(line.startswith("msica[DeleteGreetingFile] uninstall: removed ")
               for line in removed.log.msica_lines), removed.log.msica_lines


def test_a_failure_after_the_deferred_action_rolls_it_back(msi: Path, tmp_path: Path) -> None:
    target = tmp_path / "app"
    result = runner.install(
        msi, {"INSTALLDIR": windows_path(target) + "\\", "SIMULATE_FAILURE": "1"},
        log_path=tmp_path / "install.log", timeout=ENGINE_TIMEOUT,
    )
    assert result.exit_code == 1603
    # (Not log.failed_action: Wine logs 0 for a skipped MigrateFeatureStates and for a
    # failure alike, and the parser takes that earlier 0 for the failure.)
    assert result.log.action("SimulateFailure").failed
    lines = result.log.msica_lines
    written = [i for i, line in enumerate(lines)
               if line.startswith("msica[WriteGreetingFile] wrote")]
    undone = [i for i, line in enumerate(lines)
              if line.startswith("msica[RemoveGreetingFile] rollback: removed")]
    assert written and undone and written[0] < undone[0], lines
    assert not (target / "greeting.txt").exists()


def test_generated_engine_tests_pass(project: Path, msi: Path) -> None:
    done = _pytest_in(project, "-m", "engine", "-rs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout and "skipped" not in done.stdout, done.stdout


def test_product_wxs_pulls_in_the_wix4_fragment_msica_wxs_writes(project: Path, msi: Path) -> None:
    """What wix build gets on Windows (no WiX v4 here): the reference and the DLL resolve."""
    dll = project / "dist" / f"{SLUG}.x64.dll"
    fragment = project / "actions.wxs"
    assert msica_main(["wxs", "--wix", "4", str(dll), "-o", str(fragment)]) == 0
    defined = ET.parse(fragment).getroot()
    product = ET.parse(project / "product.wxs").getroot()
    refs = [ref.get("Id") for ref in product.iter(f"{WIX4}CustomActionRef")]
    actions = {action.get("Id") for action in defined.iter(f"{WIX4}CustomAction")}
    assert refs and set(refs) <= actions
    assert {"ComposeGreeting", "RemoveGreetingFile", "WriteGreetingFile"} <= actions
    binary = defined.find(f".//{WIX4}Binary")
    assert binary is not None
    # Relative to the project directory, where the README and CI run wix build.
    assert (project / binary.get("SourceFile", "")).resolve() == dll.resolve()
