"""msica.testing.runner: install a real package with the real engine.

The package runs a small C custom action DLL (tests.helpers.FIXTURE_ACTIONS_C)
built with zig: CopyProps copies GREETING and OTHER into RESULT_PROP and
RESULT_OTHER, FailAction (when FAIL is set) returns 1603, SleepAction (when
SLEEP is set) sleeps ten minutes. The tests at the end without the engine
marker check the runner's own logic and need no engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from msica.errors import EngineError
from msica.testing import runner
from msica.testing.log import LogSummary, parse_log, read_log
from tests.helpers import fixture_msi, windows_path

WINE = sys.platform != "win32"


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        runner.find_engine()
    except EngineError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh installs it)")
    if shutil.which("wixl") is None and WINE:
        pytest.fail("wixl not found: scripts/setup.sh installs it (apt-get install wixl)")
    # A space in the directory: the package and log paths must survive quoting.
    return fixture_msi(tmp_path_factory.mktemp("runner") / "pkg dir", name="msica runner test")


def _uninstall(msi: Path, log: Path) -> None:
    result = runner.install(msi, uninstall=True, log_path=log)
    assert result.exit_code == 0, result.log_path


@pytest.mark.engine
def test_success_exit_code_and_command_line_properties_reach_the_action(
    msi: Path, tmp_path: Path
) -> None:
    values = {"GREETING": "hello wide world", "OTHER": "tab\there, 100% sûr; x=y"}
    result = runner.install(msi, values, log_path=tmp_path / "install.log")
    try:
        assert result.exit_code == 0
        assert result.process_status == 0
        assert result.succeeded
        assert result.log_path == tmp_path / "install.log"
        # The action copied them, so they reached it, not just the property table.
        assert result.log.properties["RESULT_PROP"] == values["GREETING"]
        assert result.log.properties["RESULT_OTHER"] == values["OTHER"]
        assert result.log.failed_action is None
        assert result.log.action("CopyProps").return_value == 1
        assert result.command[-4:-2] == ("/l*v", windows_path(tmp_path / "install.log"))
        assert result.command[-2:] == ("GREETING=hello wide world", f"OTHER={values['OTHER']}")
    finally:
        _uninstall(msi, tmp_path / "uninstall.log")


@pytest.mark.engine
def test_uninstall_runs_msiexec_x(msi: Path, tmp_path: Path) -> None:
    assert runner.install(msi, log_path=tmp_path / "i.log").exit_code == 0
    result = runner.install(msi, uninstall=True, log_path=tmp_path / "x.log")
    assert "/x" in result.command
    assert result.exit_code == 0
    assert result.log.properties["REMOVE"] == "ALL"


@pytest.mark.engine
def test_failed_action_gives_1603_and_is_named(msi: Path, tmp_path: Path) -> None:
    result = runner.install(msi, {"FAIL": "1"}, log_path=tmp_path / "fail.log")
    assert result.exit_code == 1603
    # Wine's process status keeps the low 8 bits of msiexec's 1603.
    assert result.process_status == (1603 & 0xFF if WINE else 1603)
    assert not result.succeeded
    assert result.log.failed_action == "FailAction"
    run = result.log.action("FailAction")
    assert run.return_value == 3
    assert run.lines == ("msica: FailAction returns 1603",)


@pytest.mark.engine
def test_default_log_path_is_a_fresh_file(msi: Path) -> None:
    result = runner.install(msi, {"FAIL": "1"})
    try:
        assert result.log_path.is_file()
        assert result.log.failed_action == "FailAction"
    finally:
        result.log_path.unlink()


@pytest.mark.engine
def test_an_existing_log_is_replaced(msi: Path, tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text("msica: stale line from another run\n", encoding="ascii")
    result = runner.install(msi, {"FAIL": "1"}, log_path=log)
    assert "msica: stale line from another run" not in result.log.msica_lines
    assert result.log.failed_action == "FailAction"


@pytest.mark.engine
@pytest.mark.skipif(not WINE, reason="Windows' msiexec takes these values")
@pytest.mark.parametrize(
    ("value", "reason"),
    [('say "hi"', "double quote"), ("a  b", "run of spaces"), ("C:\\My Dir\\", "backslash")],
)
def test_wine_cannot_carry_these_values_so_install_refuses_them(
    msi: Path, tmp_path: Path, value: str, reason: str
) -> None:
    # What Wine's msiexec does with the value as an argv element, as install() would pass it...
    log = tmp_path / "raw.log"
    subprocess.run(
        [
            *runner.find_engine(),
            "/i",
            windows_path(msi),
            "/qn",
            "/l*v",
            windows_path(log),
            f"GREETING={value}",
            "FAIL=1",
        ],
        env={**os.environ, "WINEDEBUG": "-all"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    copied = read_log(log).properties.get("RESULT_PROP")
    assert copied is not None and copied != value, f"Wine now passes {value!r}: relax the check"
    # ...so install() refuses it instead of running the package with another value.
    with pytest.raises(EngineError, match=reason):
        runner.install(msi, {"GREETING": value, "FAIL": "1"}, log_path=tmp_path / "no.log")
    assert not (tmp_path / "no.log").exists()


@pytest.mark.engine
@pytest.mark.skipif(WINE, reason="Wine's msiexec drops double quotes from property values")
def test_windows_round_trips_spaces_and_quotes(msi: Path, tmp_path: Path) -> None:
    values = {"GREETING": 'say "hi"  twice', "OTHER": "C:\\My Dir\\"}
    result = runner.install(msi, values, log_path=tmp_path / "q.log")
    try:
        assert result.log.properties["RESULT_PROP"] == values["GREETING"]
        assert result.log.properties["RESULT_OTHER"] == values["OTHER"]
    finally:
        _uninstall(msi, tmp_path / "u.log")


def _live_msiexec_with(token: str) -> dict[int, str]:
    """Live (not zombie) msiexec processes whose environment holds ``token``: pid -> argv."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if token.encode() in environ and state != "Z" and "msiexec" in argv.lower():
            found[int(entry.name)] = argv
    return found


@pytest.mark.engine
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_timeout_kills_the_engine_and_its_action_server(msi: Path, tmp_path: Path) -> None:
    token = f"msica-timeout-{uuid.uuid4()}"
    outcome: list[BaseException | runner.InstallResult] = []

    def run() -> None:
        try:
            outcome.append(
                runner.install(
                    msi,
                    {"SLEEP": "1"},
                    log_path=tmp_path / "sleep.log",
                    timeout=25,  # room for a slow Wine start; the action sleeps ten minutes
                    env={"MSICA_TEST_TOKEN": token},
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    seen: dict[int, str] = {}
    while worker.is_alive():
        seen.update(_live_msiexec_with(token))
        time.sleep(0.2)
    worker.join()
    # While it slept, the engine and the server running the action were there...
    assert any("-Embedding" in argv for argv in seen.values()), seen
    assert len(outcome) == 1 and isinstance(outcome[0], EngineError), outcome
    assert "did not finish" in str(outcome[0])
    # ...and the timeout took all of them down.
    deadline = time.monotonic() + 10
    while _live_msiexec_with(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_msiexec_with(token) == {}
    assert "msica: SleepAction sleeps" in read_log(tmp_path / "sleep.log").msica_lines


@pytest.mark.engine
def test_missing_package_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no package"):
        runner.install(tmp_path / "absent.msi")


def _flaky_loader(tmp_path: Path, failures: int) -> Path:
    """A Wine loader whose first ``failures`` msiexec starts end as a failed
    Wine start does (a line on stderr, status 1, no log); then the real one."""
    real = runner.find_engine()[0]
    script = tmp_path / "flaky-wine"
    script.write_text(
        "#!/bin/sh\n"
        f'count="{tmp_path}/starts"\n'
        'if [ "$1" = msiexec ]; then\n'
        '  echo x >> "$count"\n'
        f'  if [ "$(wc -l < "$count")" -le {failures} ]; then\n'
        '    echo "wine client error:0: read: Connection reset by peer" >&2; exit 1\n'
        "  fi\n"
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.engine
@pytest.mark.skipif(not WINE, reason="a Wine start")
def test_a_wine_start_that_writes_no_log_is_tried_again(
    msi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = _flaky_loader(tmp_path, failures=2)
    monkeypatch.setattr(runner, "find_engine", lambda: [str(loader), "msiexec"])
    result = runner.install(msi, {"GREETING": "again"}, log_path=tmp_path / "install.log")
    try:
        assert (tmp_path / "starts").read_text().count("x") == 3
        assert result.exit_code == 0
        assert result.log.properties["RESULT_PROP"] == "again"
    finally:
        _uninstall(msi, tmp_path / "uninstall.log")


# --- the runner's own logic, no engine needed ------------------------------------


def test_windows_quoting_of_property_arguments() -> None:
    def arg(value: str) -> str:
        return runner.msi_property_argument("P", value, wine=False)

    assert arg("plain") == "P=plain"
    assert arg("a b") == 'P="a b"'
    assert arg('say "hi"') == 'P="say ""hi"""'
    assert arg("") == 'P=""'
    assert arg("C:\\My Dir\\") == 'P="C:\\My Dir\\"'


def test_wine_property_arguments_are_bare() -> None:
    assert runner.msi_property_argument("P", "a b", wine=True) == "P=a b"
    assert runner.msi_property_argument("P", " lead", wine=True) == "P= lead"
    assert runner.msi_property_argument("P", "C:\\NoSpace\\", wine=True) == "P=C:\\NoSpace\\"


def test_property_names_are_checked() -> None:
    with pytest.raises(ValueError, match="property name"):
        runner.msi_property_argument("A B", "x", wine=True)
    with pytest.raises(ValueError, match="property name"):
        runner.msi_property_argument("/qb", "x", wine=False)


def test_find_engine_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    on_path = {"wine64": "/opt/bin/wine64", "wine": "/opt/bin/wine"}
    monkeypatch.setattr(shutil, "which", lambda name: on_path.get(name))
    loader = tmp_path / "wine64"
    loader.write_text("#!/bin/sh\n")
    loader.chmod(0o755)
    monkeypatch.setattr(runner, "_WINE_LOADER", loader)
    assert runner.find_engine() == ["/opt/bin/wine64", "msiexec"]
    del on_path["wine64"]
    assert runner.find_engine() == [str(loader), "msiexec"]
    monkeypatch.setattr(runner, "_WINE_LOADER", tmp_path / "absent")
    assert runner.find_engine() == ["/opt/bin/wine", "msiexec"]
    del on_path["wine"]
    with pytest.raises(EngineError, match=r"wine64 not found: install it \(apt-get install"):
        runner.find_engine()
    monkeypatch.setattr(sys, "platform", "win32")
    assert runner.find_engine() == ["msiexec"]


@pytest.mark.parametrize(
    ("status", "code"), [(0, 0), (67, 1603), (66, 1602), (194, 3010), (87, 87), (1, 1)]
)
def test_wine_status_maps_back_to_the_msiexec_code(status: int, code: int) -> None:
    assert runner._engine_exit_code(status, wine=True) == code
    assert runner._engine_exit_code(status, wine=False) == status


def test_result_succeeded_means_0_or_3010() -> None:
    empty: LogSummary = parse_log("")

    def result(code: int) -> runner.InstallResult:
        return runner.InstallResult(code, Path("x.log"), empty, ("msiexec",))

    assert result(0).succeeded and result(3010).succeeded
    assert not result(1603).succeeded and not result(1602).succeeded


class _FakeProcess:
    """Stands in for the engine: records its environment and writes a log."""

    pid = 0
    seen: ClassVar[list[_FakeProcess]] = []

    def __init__(self, argv: list[str], *, env: Mapping[str, str], **_: object) -> None:
        self.env = env
        _FakeProcess.seen.append(self)
        log = Path(argv[argv.index("/l*v") + 1][2:].replace("\\", "/"))
        log.write_text("Action start 1:00:00: A.\nAction ended 1:00:00: A. Return value 1.\n")

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.mark.skipif(not WINE, reason="Wine's environment")
@pytest.mark.parametrize(("given", "expected"), [(None, "-all"), ("+msi", "+msi")])
def test_winedebug_defaults_to_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str | None, expected: str
) -> None:
    package = tmp_path / "p.msi"
    package.write_bytes(b"")
    monkeypatch.delenv("WINEDEBUG", raising=False)
    monkeypatch.setattr(runner, "find_engine", lambda: ["wine64", "msiexec"])
    monkeypatch.setattr(runner, "_wine_paths", lambda _l, ps, _e: [windows_path(p) for p in ps])
    monkeypatch.setattr(subprocess, "Popen", _FakeProcess)
    _FakeProcess.seen.clear()
    env = {"WINEDEBUG": given} if given else None
    result = runner.install(package, {"A": "1"}, log_path=tmp_path / "l.log", env=env)
    assert _FakeProcess.seen[0].env["WINEDEBUG"] == expected
    assert result.log.action("A").return_value == 1


def test_an_engine_that_never_writes_a_log_is_an_error_that_quotes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = tmp_path / "broken-wine"
    loader.write_text('#!/bin/sh\necho "wine: could not load kernel32.dll, status c0000135" >&2\n'
                      "exit 1\n")
    loader.chmod(0o755)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(runner, "find_engine", lambda: [str(loader), "msiexec"])
    monkeypatch.setattr(runner, "_WINE_RETRY_PAUSE", 0)
    package = tmp_path / "any.msi"
    package.write_bytes(b"not read: the engine never starts")
    with pytest.raises(EngineError) as raised:
        runner.install(package, log_path=tmp_path / "install.log")
    message = str(raised.value)
    assert f"msiexec wrote no log to {tmp_path / 'install.log'} (3 tries: exited with 1 " in message
    assert message.count("(wine: could not load kernel32.dll, status c0000135)") == 3
    assert f"check that {loader} can run" in message


def test_an_engine_that_cannot_start_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-wine64"
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(runner, "find_engine", lambda: [str(missing), "msiexec"])
    package = tmp_path / "any.msi"
    package.write_bytes(b"not read: the engine never starts")
    with pytest.raises(EngineError, match=f"could not start {missing}: .*No such file"):
        runner.install(package, log_path=tmp_path / "install.log")
