"""Engine tests: install dist/{{ cookiecutter.project_slug }}.msi with the real Windows Installer
(msiexec on Windows, wine64 msiexec on Linux) and check what the actions did.

Build the package first (README.md, "Build and install"); then ``pytest``.
Without an engine ``msica_install`` skips these tests; without the package
they skip too, except under CI, where a missing package is an error.

Each test installs into its own temporary directory (INSTALLDIR on the
command line), so nothing lands in Program Files and runs do not collide.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest
from msica.testing.runner import InstallResult

Installer = Callable[..., InstallResult]
GREETING_FILE = "greeting.txt"
MSI = Path(__file__).resolve().parents[1] / "dist" / "{{ cookiecutter.project_slug }}.msi"

pytestmark = pytest.mark.engine


def windows_path(directory: Path) -> str:
    """``directory`` as the installer sees it; Wine maps the Unix root to Z:."""
    if sys.platform == "win32":
        return str(directory) + "\\"
    return "Z:" + str(directory).replace("/", "\\") + "\\"


@pytest.fixture
def msi(msica_install: Installer) -> Path:
    if not MSI.is_file():
        message = f"{MSI} is not built: see README.md, Build and install"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # A run that stopped half-way may have left the product installed, and the
    # actions only run on a first install (NOT Installed).
    msica_install(MSI, uninstall=True)
    return MSI


def test_install_writes_the_greeting_and_uninstall_removes_it(
    msica_install: Installer, msi: Path, tmp_path: Path
) -> None:
    target = tmp_path / "app"
    where = {"INSTALLDIR": windows_path(target)}

    installed = msica_install(msi, {**where, "GREETING_NAME": "Ada"},
                              log_path=tmp_path / "install.log")
    try:
        assert installed.exit_code == 0, f"install failed: see {installed.log_path}"
        assert installed.log.properties["GREETING"] == "Hello, Ada!"
        assert (target / GREETING_FILE).read_text(encoding="utf-8") == "Hello, Ada!\n"
    finally:
        removed = msica_install(msi, where, uninstall=True, log_path=tmp_path / "uninstall.log")

    assert removed.exit_code == 0, f"uninstall failed: see {removed.log_path}"
    assert not (target / GREETING_FILE).exists()


def test_a_failed_install_rolls_the_greeting_back(
    msica_install: Installer, msi: Path, tmp_path: Path
) -> None:
    target = tmp_path / "app"

    result = msica_install(msi, {"INSTALLDIR": windows_path(target), "SIMULATE_FAILURE": "1"},
                           log_path=tmp_path / "install.log")

    assert result.exit_code == 1603
    assert result.log.action("SimulateFailure").failed
    lines = result.log.msica_lines
    # The file was written, then the rollback removed it.
    assert any(line.startswith("msica[WriteGreetingFile] wrote ") for line in lines), lines
    assert any(line.startswith("msica[RemoveGreetingFile] rollback: removed ")
               for line in lines), lines
    assert not (target / GREETING_FILE).exists()
