"""pytest fixtures for custom actions (registered as the ``msica`` pytest11 plugin).

``msica_session`` makes :class:`~msica.testing.SimulatedSession` objects::

    def test_greets(msica_session):
        session = msica_session({"GREET_NAME": "Ada"}, action="SayHello")
        assert run_action(SayHello, session) == 0
        assert session.properties["GREETING"] == "Hello, Ada!"

``msica_install`` installs a real package with the real engine (msiexec, or
``wine64 msiexec`` off Windows) and returns an
:class:`~msica.testing.runner.InstallResult`; the test is skipped, saying
why, where there is no engine. Packages a test installed and did not
uninstall are uninstalled when it ends, so the next test starts clean::

    def test_installs(msica_install, app_msi):
        result = msica_install(app_msi, {"GREET_NAME": "Ada"})
        assert result.succeeded
        assert result.log.properties["GREETING"] == "Hello, Ada!"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from msica.errors import EngineError, MsicaError
from msica.testing import runner
from msica.testing.simulated import SimulatedSession


class SessionFactory(Protocol):
    def __call__(self, properties: Mapping[str, str] | None = None,
                 **options: Any) -> SimulatedSession: ...


class InstallFactory(Protocol):
    def __call__(self, msi: Path, properties: Mapping[str, str] | None = None, *,
                 uninstall: bool = False,
                 log_path: Path | None = None) -> runner.InstallResult: ...


@pytest.fixture
def msica_session() -> Iterator[SessionFactory]:
    """``msica_session(properties=None, **options)``: a SimulatedSession (same options)."""
    made: list[SimulatedSession] = []

    def make(properties: Mapping[str, str] | None = None, **options: Any) -> SimulatedSession:
        session = SimulatedSession(properties, **options)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


@pytest.fixture
def msica_install(tmp_path: Path) -> Iterator[InstallFactory]:
    """``msica_install(msi, properties=None, *, uninstall=False, log_path=None)``: install
    (or uninstall) ``msi`` with the real engine; its InstallResult. The log goes to the
    test's tmp_path unless ``log_path`` says where."""
    installed: dict[Path, bool] = {}
    runs = [0]

    def install(msi: Path, properties: Mapping[str, str] | None = None, *,
                uninstall: bool = False, log_path: Path | None = None) -> runner.InstallResult:
        try:
            runner.find_engine()
        except EngineError as error:
            pytest.skip(f"no Windows Installer engine to install {Path(msi).name}: {error}")
        runs[0] += 1
        verb = "uninstall" if uninstall else "install"
        log = log_path or tmp_path / f"{Path(msi).stem}.{runs[0]}.{verb}.log"
        result = runner.install(Path(msi), properties or {}, log_path=log, uninstall=uninstall)
        key = Path(msi).resolve()
        if uninstall:
            installed[key] = False
        elif result.succeeded:
            installed[key] = True
        return result

    yield install
    for msi, still_installed in installed.items():
        if still_installed and msi.is_file():
            with contextlib.suppress(MsicaError):
                runner.install(msi, uninstall=True, log_path=tmp_path / f"{msi.stem}.cleanup.log")
