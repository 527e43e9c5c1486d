"""``msica build``: a project's actions, the msica host and a CPython runtime, in one DLL.

Pure Python: the prebuilt shim for the target arch gets its export slots
renamed to the action names, and the payload (runtime, dependencies, the
msica host, the user's modules) is appended to it. No compiler is needed and
the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msica
from msica import _native
from msica.build import exports, payload, progress, runtime, stdlib
from msica.build.config import Config
from msica.build.discover import FoundAction, discover
from msica.errors import BuildError

log = logging.getLogger("msica.build")

SHIM_DIR = Path(__file__).parent / "shims"
# The runtime's ._pth: isolated mode, exactly these paths on sys.path.
PTH_TEMPLATE = "python{v}.zip\n.\nlib\n"
# Parts of the msica package that never run inside an action.
_HOST_ONLY = ("build", "author", "testing", "_templates", "cli.py", "__main__.py")
# Development tools of the stdlib (never followed from the stdlib's own imports,
# msica.build.stdlib) that debugpy's pydevd needs while it serves a debugger.
DEBUG_STDLIB = ("pydoc", "pdb", "bdb", "argparse", "unittest")
# Modules of packed msica packages that serve only the build machine: the
# offline database binding behind ``msica inject`` and the simulated session.
_HOST_ONLY_FILES = ("_native/libmsi.py", "_native/offline.py")
# Functions of packed msica modules whose imports the payload's stdlib need not
# carry (msica.build.stdlib): they run only where msica builds, or import only
# what the action's own code has imported already.
_HOST_ONLY_FUNCTIONS = {
    "msica/__init__.py": ("__getattr__",),  # __version__: "0+payload" in an action
    "msica/_native/__init__.py": ("emit_module",),  # build time
    "msica/_host.py": ("_bridge_logging",),  # once "logging" is in sys.modules
    "msica/_debug.py": ("_wait",),  # runs once debugpy imported, which brings the same
}


@dataclass(frozen=True)
class BuildResult:
    """One DLL written by :func:`build`."""

    dll: Path
    arch: str
    actions: tuple[FoundAction, ...]
    runtime: runtime.Runtime
    files: int


def shim_path(arch: str) -> Path:
    """The prebuilt shim DLL for ``arch``."""
    path = SHIM_DIR / f"msica-shim.{arch}.dll"
    if not path.is_file():
        raise BuildError(
            f"the prebuilt shim for {arch} is missing ({path}): reinstall msica, or in a "
            "source checkout run scripts/build-shims.sh"
        )
    return path


def find_actions(project: Path, config: Config) -> list[FoundAction]:
    """The actions of the project, refusing duplicates and an empty set."""
    modules = [(module, module_path(project, config, module)) for module in config.actions]
    found = discover(modules)
    if not found:
        names = ", ".join(str(path) for _, path in modules)
        raise BuildError(
            f"no @custom_action functions found in {names}: decorate at least one function "
            "with @msica.custom_action"
        )
    seen: dict[str, FoundAction] = {}
    for item in found:
        other = seen.get(item.action.name)
        if other is not None:
            raise BuildError(
                f"two actions are named {item.action.name!r} ({other.path}:{other.line} and "
                f"{item.path}:{item.line}): give one of them name=\"...\""
            )
        seen[item.action.name] = item
    return found


def module_path(project: Path, config: Config, module: str) -> Path:
    """The source file of dotted ``module`` under the project's source directory."""
    base = project / config.source / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise BuildError(
        f"actions module {module!r} not found (looked for {base}.py and {base}/__init__.py): "
        "fix [tool.msica] actions or source"
    )


def build(
    project: Path,
    config: Config,
    *,
    archs: tuple[str, ...] | None = None,
    runtime_path: Path | None = None,
    offline: bool = False,
    output: Path | None = None,
    debug: bool = False,
    allow_unsigned_runtime: bool = False,
) -> list[BuildResult]:
    """Build ``<name>.<arch>.dll`` for each arch; return what was written.

    ``debug`` bundles debugpy, so that MSICA_DEBUG can make an action wait for a
    debugger (see :mod:`msica._debug`). ``allow_unsigned_runtime`` (or the key of
    that name) bundles a runtime whose DLLs are not signed by the PSF; see
    :mod:`msica.build.authenticode`.
    """
    found = find_actions(project, config)
    names = [item.action.name for item in found]
    names += [item.action.data_setter for item in found if item.action.uses]
    out_dir = output if output is not None else project / config.output
    results = []
    for arch in archs or config.archs:
        image = exports.rename_slots(shim_path(arch).read_bytes(), names)
        given = runtime_path or (project / config.runtime if config.runtime else None)
        rt = runtime.get_runtime(
            config.python_version, arch, path=given, offline=offline,
            allow_unsigned=allow_unsigned_runtime or config.allow_unsigned_runtime,
        )
        files = payload_files(project, config, found, rt, offline=offline, debug=debug)
        with progress.step(f"packing {config.name}.{arch}.dll"):
            dll = payload.attach(image, files, rt.version, cache=runtime.cache_dir() / "deflate")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{config.name}.{arch}.dll"
        temporary = target.with_suffix(".dll.partial")
        temporary.write_bytes(dll)
        temporary.replace(target)
        log.info("wrote %s (%d bytes, %d files)", target, len(dll), len(files))
        results.append(BuildResult(target, arch, tuple(found), rt, len(files)))
    return results


def payload_files(
    project: Path, config: Config, found: list[FoundAction], rt: runtime.Runtime, *,
    offline: bool, debug: bool = False,
) -> dict[str, bytes]:
    """Every file the payload carries, by its path in the unpacked runtime directory.

    The runtime is trimmed to the stdlib modules and DLLs that the files under
    ``lib/`` can import (:mod:`msica.build.stdlib`), plus ``include``.
    """
    lib: dict[str, bytes] = dict(_sdk_files())
    lib["msica/_native/_msi_ffi.py"] = _native.emit_module().encode()
    for path, data in _project_files(project, config):
        _add(lib, path, data)
    bundled = [*config.dependencies, *(["debugpy"] if debug else [])]
    wheels = runtime.get_wheels(bundled, rt.version, rt.arch, offline=offline)
    for wheel in wheels:
        for path, data in _wheel_files(wheel):
            _add(lib, path, data)
    if not any(_is_cffi(wheel) for wheel in wheels):
        # msica itself needs only cffi's compiled backend: the ABI-mode module
        # written at build time (_msi_ffi.py) imports nothing else of cffi.
        own = [wheel for wheel in runtime.get_wheels(["cffi"], rt.version, rt.arch,
                                                      offline=offline) if _is_cffi(wheel)]
        for wheel in own:
            for path, data in _wheel_files(wheel):
                if path.startswith("_cffi_backend."):
                    _add(lib, path, data)
    else:
        own = []
    lib["_msica_payload.py"] = _payload_module(found).encode()
    include = (*config.include, *(DEBUG_STDLIB if debug else ()))
    trimmed = stdlib.trim(rt.files, rt.version, lib, include=include,
                          exclude=config.exclude, host_only=_HOST_ONLY_FUNCTIONS,
                          cache=runtime.cache_dir())
    files: dict[str, bytes] = dict(trimmed.files)
    version = f"{rt.version[0]}{rt.version[1]}"
    files[f"python{version}._pth"] = PTH_TEMPLATE.format(v=version).encode()
    files.update((f"lib/{path}", data) for path, data in lib.items())
    files[MANIFEST] = manifest(found, rt, trimmed=trimmed, wheels=wheels,
                               backend_only=own).encode()
    return files


MANIFEST = "msica.json"


def manifest(
    found: list[FoundAction], rt: runtime.Runtime, *,
    trimmed: stdlib.Trimmed | None = None, wheels: list[Path] | None = None,
    backend_only: list[Path] | None = None,
) -> str:
    """What the DLL holds, for `msica wxs`, `msica inspect` and people: stable JSON."""
    document = {
        "format": 1,
        "arch": rt.arch,
        "python": "{}.{}".format(*rt.version),
        "runtime": {
            "source": rt.source,
            "sha256": rt.sha256,
            "files": {
                name: hashlib.sha256(data).hexdigest()
                for name, data in sorted((trimmed.files if trimmed else rt.files).items())
            },
        },
        "stdlib": list(trimmed.modules) if trimmed else None,
        "dependencies": [
            *(_wheel_record(wheel, "all") for wheel in wheels or ()),
            *(_wheel_record(wheel, "_cffi_backend only") for wheel in backend_only or ()),
        ],
        "compression": payload.compressor_version(),
        "actions": [
            {
                "name": item.action.name,
                "module": item.module,
                "function": item.action.function_name,
                "type": item.action.type_number,
                "extended_type": item.action.extended_type,
                "execute": item.action.execute,
                "impersonate": item.action.impersonate,
                "check_return": item.action.check_return,
                "hide_target": item.action.hide_target,
                "asynchronous": item.action.asynchronous,
                "ts_aware": item.action.ts_aware,
                "patch_uninstall": item.action.patch_uninstall,
                "after": item.action.after,
                "before": item.action.before,
                "condition": item.action.condition,
                "uses": list(item.action.uses),
                "data": item.action.data,
                "data_setter": (item.action.data_setter
                                if item.action.uses or item.action.data is not None else None),
            }
            for item in found
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _is_cffi(wheel: Path) -> bool:
    return wheel.name.lower().startswith("cffi-")


def _wheel_record(wheel: Path, packed: str) -> dict[str, str]:
    """Name, version, file name and SHA-256 of a bundled wheel (PEP 427 file name)."""
    name, version = wheel.name.split("-")[:2]
    return {
        "name": name,
        "version": version,
        "wheel": wheel.name,
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "packed": packed,
    }


def _add(files: dict[str, bytes], path: str, data: bytes) -> None:
    if path in files and files[path] != data:
        raise BuildError(f"two different files would be packed as {path}: rename one")
    files[path] = data


def _sdk_files() -> Iterator[tuple[str, bytes]]:
    """The parts of the msica package that run inside an action."""
    root = Path(msica.__file__).parent
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in _HOST_ONLY or relative.as_posix() in _HOST_ONLY_FILES:
            continue
        yield f"msica/{relative.as_posix()}", path.read_bytes()


def _project_files(project: Path, config: Config) -> Iterator[tuple[str, bytes]]:
    """The action modules, with the whole top-level package of a dotted one."""
    source = project / config.source
    tops = sorted({module.split(".")[0] for module in config.actions})
    for top in tops:
        package = source / top
        if package.is_dir():
            for path in sorted(package.rglob("*.py")):
                yield path.relative_to(source).as_posix(), path.read_bytes()
        else:
            yield f"{top}.py", (source / f"{top}.py").read_bytes()


def _wheel_files(wheel: Path) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(wheel) as archive:
        for info in sorted(archive.infolist(), key=lambda item: item.filename):
            if info.is_dir():
                continue
            yield info.filename, archive.read(info)


def _payload_module(found: list[FoundAction]) -> str:
    out = io.StringIO()
    out.write('"""Written by msica build: which module defines each action."""\n\n')
    out.write("ACTIONS = {\n")
    for item in found:
        out.write(f"    {item.action.name!r}: {item.module!r},\n")
    out.write("}\n\n# Immediate actions that fill a deferred action's CustomActionData.\n")
    out.write("DATA_SETTERS = {\n")
    for item in found:
        if item.action.uses:
            setter = (item.action.name, item.action.uses)
            out.write(f"    {item.action.data_setter!r}: {setter!r},\n")
    out.write("}\n")
    return out.getvalue()
