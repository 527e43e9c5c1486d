"""[tool.msica]: one list of keys (the Config dataclass) behind the checks, the
JSON schema shipped for editors and `msica build --help`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from msica.build import config
from msica.cli import main as msica_main
from msica.errors import ConfigError


def _load(tmp_path: Path, table: str, project: str = 'name = "demo"') -> config.Config:
    (tmp_path / "pyproject.toml").write_text(
        f"[project]\n{project}\n\n[tool.msica]\n{table}\n", encoding="utf-8"
    )
    return config.load(tmp_path)


def test_shipped_schema_is_the_generated_one() -> None:
    shipped = config.SCHEMA_PATH.read_text(encoding="utf-8")
    assert shipped == config.schema_text(), (
        "the shipped schema is stale: run .venv/bin/python -m msica.build.config"
    )


def test_schema_lists_every_key_with_its_type_and_default() -> None:
    schema = json.loads(config.SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert list(properties) == [field for field in config.key_docs()]
    assert set(properties) == {f.name for f in config.fields(config.Config)}
    assert properties["actions"]["type"] == "array"
    assert properties["actions"]["default"] == ["actions"]
    assert properties["python"]["default"] == "3.12"
    assert properties["archs"]["items"]["enum"] == ["x64", "x86", "arm64"]
    assert properties["allow_unsigned_runtime"] == {
        "description": config.key_docs()["allow_unsigned_runtime"],
        "type": "boolean",
        "default": False,
    }
    assert "default" not in properties["name"]  # it is [project] name
    assert all(entry["description"] for entry in properties.values())


def test_build_help_documents_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        msica_main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key, doc in config.key_docs().items():
        assert re.search(rf"\b{key}\b", text), key
        assert " ".join(doc.replace("``", "").split()) in text, key
    assert "--allow-unsigned-runtime" in text
    assert str(config.SCHEMA_PATH.name) in text


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('pyhton = "3.12"', r"no key 'pyhton'; did you mean 'python'\?"),
        ('actions = "actions"',
         r'actions must be a list of strings \(e\.g\. actions = \["actions"\]\)'),
        ("actions = [1]", r"actions must be a list of strings"),
        ("actions = []", r"actions names no module: list the modules"),
        ('actions = ["src/actions.py"]', r"'src/actions\.py' is not a module name: write dotted"),
        ("python = 3.12", r'python must be a string \(e\.g\. python = "3\.12"\)'),
        ('python = "3.12.1"', r"python = '3\.12\.1' is not a CPython version: write major\.minor"),
        ('archs = ["amd64"]', r"archs: 'amd64' is not one of x64, x86, arm64"),
        ("archs = []", r"archs is empty"),
        ('dependencies = ["attrs >>= 1"]',
         r"dependency 'attrs >>= 1' is not a requirement.*PEP 508"),
        ('allow_unsigned_runtime = "yes"', r"allow_unsigned_runtime must be true or false"),
        ('name = "my dll"', r"DLL name 'my dll' is not a usable file name"),
    ],
)
def test_bad_values_say_what_to_write(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _load(tmp_path, table)
    assert str(caught.value).startswith(str(tmp_path / "pyproject.toml"))
    assert "\n" not in str(caught.value)


def test_values_are_read_and_dependencies_joined(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        'actions = ["pkg.actions"]\npython = "3.8"\narchs = ["x64", "arm64"]\n'
        'dependencies = ["attrs>=23"]\nallow_unsigned_runtime = true',
        project='name = "demo"\ndependencies = ["idna"]',
    )
    assert loaded.actions == ("pkg.actions",)
    assert loaded.python_version == (3, 8)
    assert loaded.archs == ("x64", "arm64")
    assert loaded.dependencies == ("idna", "attrs>=23")
    assert loaded.allow_unsigned_runtime is True
    assert _load(tmp_path, "").allow_unsigned_runtime is False
