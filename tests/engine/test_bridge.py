"""The bridge under the engine's process model, each claim by an install with wine64 msiexec.

One DLL (tests/fixtures/scenarios) serves every scenario; the MODE property
picks which of its actions the sequence runs. The module runs in a Wine prefix
of its own, so the runtime directories under its LOCALAPPDATA are exactly the
ones these tests caused. (LOCALAPPDATA set for msiexec does not reach Wine's
custom-action server, which takes it from the profile: measured.) Every good
install shares one runtime directory; a test that changes it puts it back.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from msica.author import wxs
from msica.build import builder, config, payload
from msica.testing import runner
from tests.helpers import (
    FIXTURES,
    payload_probe,
    windows_path,
    wine_command,
    wixl_fix_types,
    wixl_msi,
)

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120


@dataclass(frozen=True)
class Package:
    project: Path
    dll: Path
    other_dll: Path
    env: dict[str, str]
    """WINEPREFIX of the module's own Wine prefix."""

    def msi(self, name: str, dll: Path | None = None) -> Path:
        """A freshly compiled .msi (new ProductCode) with ``dll`` as the scenarios DLL.

        The include is written from the good DLL (msica wxs refuses a damaged
        one); a damaged ``dll`` only replaces the file the Binary row holds.
        """
        source = os.path.relpath(dll, self.project) if dll else None
        wxs.write(self.dll, self.project / "actions.wxi", source_file=source)
        wxs.write(self.other_dll, self.project / "other.wxi")
        msi = wixl_msi(self.project / "product.wxs", self.project / f"{name}.msi")
        # wixl 0.101 stores Execute="rollback" as immediate: restore msica's Types
        wixl_fix_types(msi, self.project / "actions.wxi")
        return msi

    def install(self, msi: Path, mode: str) -> runner.InstallResult:
        return runner.install(msi, {"MODE": mode}, log_path=msi.with_suffix(".log"),
                              timeout=ENGINE_TIMEOUT, env=self.env)

    def unix_path(self, windows: str) -> Path:
        out = subprocess.run(["winepath", "-u", windows], capture_output=True, text=True,
                             check=True, env={**os.environ, **self.env, "WINEDEBUG": "-all"})
        return Path(out.stdout.strip())

    def runtime_dirs(self) -> list[Path]:
        user = pwd.getpwuid(os.getuid()).pw_name  # Wine names the profile after it
        root = self.unix_path(f"C:\\users\\{user}\\AppData\\Local\\msica\\runtimes")
        return sorted(root.iterdir()) if root.is_dir() else []


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Package]:
    root = tmp_path_factory.mktemp("bridge")
    env = {"WINEPREFIX": str(root / "wineprefix")}
    subprocess.run(["wineboot", "-i"], env={**os.environ, **env, "WINEDEBUG": "-all"},
                   capture_output=True, check=True, timeout=300)
    built = {}
    for name in ("scenarios", "other"):
        shutil.copytree(FIXTURES / name, root / name)
        built[name] = builder.build(root / name, config.load(root / name))[0].dll
    yield Package(root / "scenarios", built["scenarios"], built["other"], env)
    subprocess.run(["wineserver", "-k"], env={**os.environ, **env}, check=False)
    shutil.rmtree(root / "wineprefix", ignore_errors=True)


def test_ten_actions_share_one_runtime_and_one_interpreter(package: Package) -> None:
    result = package.install(package.msi("many"), "many")
    assert result.exit_code == 0, result.log.msica_lines
    steps = [result.log.properties[f"STEP{n:02d}"].split("|") for n in range(1, 11)]
    pids, starts, calls, runtimes = zip(*steps)
    assert len(set(pids)) == 1, pids  # one custom-action server...
    assert len(set(starts)) == 1, starts  # ...one interpreter, started by the first call
    assert calls == tuple(str(n) for n in range(1, 11))
    assert len(set(runtimes)) == 1
    # Unpacked once, under the identity's LOCALAPPDATA, named by the payload hash.
    digest = payload.read_trailer(package.dll.read_bytes()).digest_hex
    (runtime,) = package.runtime_dirs()
    assert runtime.name == digest[:32]
    assert package.unix_path(runtimes[0]).resolve() == runtime.resolve()

    # A later install reuses the directory as it is: nothing unpacked again.
    dll = runtime / "python312.dll"
    before = (dll.stat().st_ino, dll.stat().st_mtime_ns)
    again = package.install(package.msi("many-again"), "many")
    assert again.exit_code == 0
    assert (dll.stat().st_ino, dll.stat().st_mtime_ns) == before
    assert package.runtime_dirs() == [runtime]
    # ...and nothing was written into it (no bytecode caches, whatever the environment).
    assert not list(runtime.rglob("__pycache__"))


def test_output_and_logging_reach_the_msi_log(package: Package) -> None:
    result = package.install(package.msi("chatty"), "many")
    lines = result.log.action("Chatty").lines
    for expected in (
        "msica[Chatty] printed to stdout",
        "msica[Chatty] written to stderr",
        "msica[Chatty] INFO chatty: logged at info",
        "msica[Chatty] WARNING root: logged at warning",
    ):
        assert expected in lines, lines
    assert any(line.startswith("msica[LateAsync] async action ran on thread")
               for line in result.log.msica_lines), result.log.msica_lines


def test_user_exit_reaches_the_engine_as_1602(package: Package) -> None:
    result = package.install(package.msi("exit"), "exit")
    assert result.exit_code == 1602
    assert "msica[Quit] asking the engine to stop" in result.log.action("Quit").lines


def test_exception_fails_with_traceback_and_rollback_runs(package: Package) -> None:
    result = package.install(package.msi("rollback"), "rollback")
    assert result.exit_code == 1603
    text = "\n".join(result.log.msica_lines)
    assert "Traceback (most recent call last):" in text
    assert re.search(r'scenario_actions\.py", line \d+, in DoWork', text), text
    assert "RuntimeError: the work failed halfway" in text
    # UndoWork is a rollback action: scheduled before DoWork, run only after DoWork failed
    lines = list(result.log.msica_lines)
    assert lines.count("msica[UndoWork] rolling back the work") == 1, lines
    failed = next(i for i, line in enumerate(lines) if "the work failed halfway" in line)
    assert lines.index("msica[UndoWork] rolling back the work") > failed, lines


def test_a_second_runtime_in_the_same_server_is_refused(package: Package) -> None:
    before = package.runtime_dirs()
    result = package.install(package.msi("two"), "two")
    assert result.exit_code == 1603
    assert result.log.action("Step01").return_value == 1
    other = result.log.action("OtherRuntime")
    assert other.failed
    assert any("another Python runtime is already loaded in this custom-action server" in line
               for line in other.lines), other.lines
    assert "OTHER_RAN" not in result.log.properties
    assert package.runtime_dirs() == before  # refused before unpacking anything


def _damaged_copy(package: Package, change: str) -> Path:
    data = bytearray(package.dll.read_bytes())
    trailer = payload.read_trailer(bytes(data))
    if change == "flip":
        data[trailer.archive_offset + trailer.archive_size // 2] ^= 0x20
    else:  # truncate inside the payload, past the PE image
        data = data[: trailer.archive_offset + trailer.archive_size // 2]
    damaged = package.dll.parent / f"damaged-{change}.dll"
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("flip", "the payload is corrupt: its SHA-256 does not match"),
        ("truncate", "carries no msica payload"),
    ],
)
def test_damaged_dll_fails_with_one_clear_line(
    package: Package, change: str, message: str
) -> None:
    before = package.runtime_dirs()
    damaged = _damaged_copy(package, change)
    result = package.install(package.msi(f"damaged-{change}", damaged), "many")
    assert result.exit_code == 1603
    step = result.log.action("Step01")
    assert step.failed
    assert sum(message in line for line in step.lines) == 1, step.lines
    assert package.runtime_dirs() == before  # nothing was unpacked from it


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ("modify", "lib/msica/session.py"),
        ("add", "lib/msica/__pycache__/session.cpython-312.pyc"),
        ("add", "json.py"),  # would shadow the stdlib's json: "." comes early on sys.path
    ],
)
def test_tampered_runtime_directory_is_not_loaded(
    package: Package, change: str, name: str
) -> None:
    assert package.install(package.msi("first"), "many").exit_code == 0
    (runtime,) = package.runtime_dirs()
    target = runtime / name
    original = target.read_bytes() if change == "modify" else None
    made_parent = not target.parent.exists()
    target.parent.mkdir(exist_ok=True)
    target.write_bytes((original or b"") + b"\nimport os; os._exit(0)  # planted\n")
    try:
        result = package.install(package.msi(f"tampered-{change}"), "many")
    finally:
        if original is None:
            target.unlink()
            if made_parent:
                target.parent.rmdir()
        else:
            target.write_bytes(original)
    assert result.exit_code == 1603
    step = result.log.action("Step01")
    assert step.failed
    assert any("the unpacked runtime was changed after unpacking" in line
               and target.name in line for line in step.lines), step.lines


def test_a_runtime_directory_others_may_write_is_not_loaded(
    package: Package, tmp_path: Path
) -> None:
    assert package.install(package.msi("before-grant"), "many").exit_code == 0
    (runtime,) = package.runtime_dirs()
    probe = payload_probe(tmp_path)
    subprocess.run([*wine_command(), str(probe), "grant-everyone", windows_path(runtime)],
                   env={**os.environ, **package.env, "WINEDEBUG": "-all"}, check=True,
                   capture_output=True, timeout=120)
    try:
        result = package.install(package.msi("granted"), "many")
    finally:
        shutil.rmtree(runtime)  # the next install unpacks a private copy again
    assert result.exit_code == 1603
    step = result.log.action("Step01")
    assert step.failed
    assert any("can be written by S-1-1-0" in line and "nothing is loaded from it" in line
               for line in step.lines), step.lines
