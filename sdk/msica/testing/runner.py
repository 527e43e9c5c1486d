"""Install an .msi with the real Windows Installer engine and read what it logged.

On Windows the engine is ``msiexec``; elsewhere it is Wine's msiexec, run with
``wine64 msiexec``. Both are run silently (``/qn``) with a verbose log
(``/l*v``), which :func:`install` reads back into a
:class:`~msica.testing.log.LogSummary`.

Facts about Wine (8.0) this module is built on, all measured:

* A Unix process's exit status keeps only the low 8 bits of the Windows exit
  code, so ``wine msiexec`` exits 67 where msiexec returned 1603 and 194 for
  3010. :attr:`InstallResult.exit_code` maps the status back to the Windows
  Installer code (:attr:`InstallResult.process_status` keeps what was seen).
* Wine turns each argv element into the Windows command line the way the C
  runtime reads it (quoting an element with spaces, a ``\\"`` for each quote),
  and its msiexec knows no backslash escapes. ``NAME=a b`` as one element
  reaches the package as ``a b``; ``NAME="a b"`` reaches it as ``\\``.
* Wine's msiexec and msi.dll drop every ``"`` of a property value whatever the
  quoting (``""`` included), squeeze a run of spaces to one, and a value with a
  space that ends in ``\\`` arrives with that backslash doubled (Wine's quoting
  of the argv element), so such values cannot be passed; :func:`install`
  refuses them on Wine rather than let the package see a different value.
  Tabs, ``%``, ``=``, ``[...]`` and non-ASCII letters pass unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from msica.errors import EngineError
from msica.testing.log import LogSummary, read_log

__all__ = ["InstallResult", "find_engine", "install", "msi_property_argument"]

_WINE_LOADER = Path("/usr/lib/wine/wine64")
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

# Exit codes msiexec documents (MsiExec.exe and InstMsi.exe error messages).
_MSIEXEC_CODES = (0, 13, 87, 120, 1259, *range(1601, 1617), *range(1618, 1655), 3010, 3011)
_SUCCESS_CODES = (0, 3010)
_NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})
_WINE_STARTS = 3  # tries for a Wine start that ends before msiexec opens its log
_WINE_RETRY_PAUSE = 0.5
_STDERR_KEPT = 400  # characters of the engine's stderr an error quotes


@dataclass(frozen=True)
class InstallResult:
    """What one run of the engine did.

    ``exit_code`` is msiexec's Windows Installer code (0, 1603, 3010, ...);
    ``process_status`` is the status the process reported, which under Wine
    holds only the code's low 8 bits. ``command`` is the argv that ran (on
    Windows, the pieces of the command line, joined with spaces).
    """

    exit_code: int
    log_path: Path
    log: LogSummary
    command: tuple[str, ...]
    process_status: int | None = None

    @property
    def succeeded(self) -> bool:
        """Whether msiexec reported success (0, or 3010: success, reboot required)."""
        return self.exit_code in _SUCCESS_CODES


def find_engine() -> list[str]:
    """The argv prefix that runs msiexec here.

    ``["msiexec"]`` on Windows; elsewhere Wine's loader (``wine64`` on PATH,
    ``/usr/lib/wine/wine64``, then ``wine`` on PATH) followed by ``"msiexec"``.
    """
    if sys.platform == "win32":
        return ["msiexec"]
    loader = shutil.which("wine64")
    if loader is None and _WINE_LOADER.is_file() and os.access(_WINE_LOADER, os.X_OK):
        loader = str(_WINE_LOADER)
    if loader is None:
        loader = shutil.which("wine")
    if loader is None:
        raise EngineError(
            "wine64 not found: install it (apt-get install wine64) or put wine64 on PATH; "
            "msica runs .msi packages with Wine's msiexec off Windows"
        )
    return [loader, "msiexec"]


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."


def msi_property_argument(name: str, value: str, *, wine: bool) -> str:
    """``NAME=value`` as one command-line element msiexec reads back as ``value``.

    For Windows the element is a piece of a command line written as msiexec
    reads it: a value that is empty or holds a space, tab or quote goes in
    double quotes, each ``"`` doubled. For Wine it is an argv element: Wine
    quotes it and its msiexec quotes values with spaces again, so it is passed
    bare; values Wine cannot carry raise :class:`EngineError`.
    """
    if not _PROPERTY_NAME.match(name):
        raise ValueError(f"{name!r} is not a Windows Installer property name")
    if wine:
        if '"' in value:
            raise EngineError(
                f"property {name}: Wine's msiexec drops every double quote of a value, so "
                f"{_shown(value)} cannot be passed on Wine; set it in the package instead"
            )
        if "  " in value:
            raise EngineError(
                f"property {name}: Wine's msiexec squeezes a run of spaces to one, so "
                f"{_shown(value)} cannot be passed on Wine; set it in the package instead"
            )
        if value.endswith("\\") and any(c in value for c in " \t"):
            raise EngineError(
                f"property {name}: Wine doubles the trailing backslashes of a value with "
                f"spaces, so {_shown(value)} cannot be passed on Wine; drop the trailing backslash "
                "(Windows Installer adds one to directory properties)"
            )
        return f"{name}={value}"
    if value and not any(c in value for c in ' \t"'):
        return f"{name}={value}"
    escaped = value.replace('"', '""')
    return f'{name}="{escaped}"'


def _windows_command_line_path(path: str) -> str:
    return f'"{path}"' if any(c in path for c in ' \t"') else path


def _wine_paths(loader: str, paths: Sequence[Path], env: Mapping[str, str]) -> list[str]:
    """Windows paths for Unix ``paths``: ``winepath -w``, else the ``Z:`` drive."""
    absolute = [str(p.resolve()) for p in paths]
    # Output to a file, not a pipe: when winepath is the first Wine process, the
    # services it starts inherit the pipe and hold it open until the wineserver
    # exits, 3 s later (measured: 3.4 s for a cold first install, 0.9 s after).
    with tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run(
                [loader, "winepath", "-w", *absolute],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
            lines = [line for line in text.splitlines() if line.strip()]
            if done.returncode == 0 and len(lines) == len(absolute):
                return lines
        except (OSError, subprocess.TimeoutExpired):
            pass
    return ["Z:" + p.replace("/", "\\") for p in absolute]


def _engine_exit_code(status: int, wine: bool) -> int:
    """msiexec's code from the process status (Wine keeps only its low 8 bits)."""
    if not wine or not 0 < status < 256:
        return status
    candidates = [code for code in _MSIEXEC_CODES if code & 0xFF == status]
    return candidates[0] if len(candidates) == 1 else status


def _kill(process: subprocess.Popen[bytes]) -> None:
    if sys.platform == "win32":
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(process.pid)],
            capture_output=True,
            check=False,
        )
        process.kill()
    else:
        # Wine's msiexec and its custom action server share the group we made.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _run_engine(
    popen_args: str | list[str],
    env: Mapping[str, str],
    wine: bool,
    timeout: float,
    msi: Path,
    log_path: Path,
) -> tuple[int, str]:
    """Run msiexec once; its status and the last lines it wrote to stderr (OSError
    when it cannot be started).

    stderr goes to a file, not a pipe: Wine's services inherit it and outlive
    msiexec, so a pipe would not close when msiexec ends.
    """
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            popen_args,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=wine,
        )
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise EngineError(
                f"msiexec did not finish {msi.name} within {timeout:g} s and was killed; "
                f"its log so far is {log_path}"
            ) from None
        except BaseException:
            _kill(process)
            raise
        errors.seek(max(0, errors.seek(0, os.SEEK_END) - _STDERR_KEPT * 4))
        text = errors.read().decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return status, " / ".join(lines)[-_STDERR_KEPT:]


def install(
    msi: Path,
    properties: Mapping[str, str] = _NO_PROPERTIES,
    *,
    log_path: Path | None = None,
    uninstall: bool = False,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> InstallResult:
    """Install (or with ``uninstall=True`` remove) ``msi`` silently and read its log.

    Runs ``<engine> /i <msi> /qn /l*v <log> NAME=value ...`` (``/x`` to
    uninstall). ``log_path`` defaults to a new file in the temporary directory;
    an existing log there is replaced. ``env`` is added to this process's
    environment; ``WINEDEBUG=-all`` is set unless that environment sets
    WINEDEBUG. A run longer than ``timeout`` seconds is killed, with the
    processes it started, and raises :class:`EngineError`, as does an engine
    that cannot be started or writes no log; the error quotes what the engine
    wrote to stderr. Under Wine a run that ends before msiexec has opened its
    log (so before anything was installed) is tried up to three times.
    """
    msi = Path(msi)
    if not msi.is_file():
        raise EngineError(f"no package at {msi}: build the .msi first")
    engine = find_engine()
    wine = sys.platform != "win32"
    arguments = [msi_property_argument(k, v, wine=wine) for k, v in properties.items()]

    if log_path is None:
        handle, name = tempfile.mkstemp(prefix=f"msica-{msi.stem}-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)

    run_env = dict(os.environ)
    if env:
        run_env.update(env)
    if wine:
        run_env.setdefault("WINEDEBUG", "-all")

    verb = "/x" if uninstall else "/i"
    if wine:
        msi_arg, log_arg = _wine_paths(engine[0], [msi, log_path], run_env)
        command = (*engine, verb, msi_arg, "/qn", "/l*v", log_arg, *arguments)
        popen_args: str | list[str] = list(command)
    else:
        msi_arg = _windows_command_line_path(str(msi.resolve()))
        log_arg = _windows_command_line_path(str(log_path.resolve()))
        command = (*engine, verb, msi_arg, "/qn", "/l*v", log_arg, *arguments)
        popen_args = " ".join(command)  # msiexec parses its command line itself

    # Under Wine a start can fail before msiexec opens its log (seen once in CI:
    # status 1, no log); nothing was installed then, so it is tried again.
    failures: list[str] = []
    while True:
        try:
            status, stderr = _run_engine(popen_args, run_env, wine, timeout, msi, log_path)
        except OSError as exc:
            raise EngineError(f"could not start {command[0]}: {exc}") from exc
        if log_path.is_file():
            break
        failures.append(f"exited with {status}" + (f" ({stderr})" if stderr else ""))
        if len(failures) < (_WINE_STARTS if wine else 1):
            time.sleep(_WINE_RETRY_PAUSE)
            continue
        raise EngineError(
            f"msiexec wrote no log to {log_path} ({len(failures)} "
            f"{'try' if len(failures) == 1 else 'tries'}: {'; '.join(failures)}); "
            f"check that {command[0]} can run (try: {' '.join(engine)} /?)"
        )
    return InstallResult(
        exit_code=_engine_exit_code(status, wine),
        log_path=log_path,
        log=read_log(log_path),
        command=tuple(command),
        process_status=status,
    )
