"""A trimmed runtime, for real: an action that imports json, hashlib and
urllib.parse, and xml.etree.ElementTree by a computed name (listed in
[tool.msica] include), runs from a DLL that carries only the stdlib it needs,
under wine64 msiexec, with the oldest, the default and the newest CPython.
sqlite3, which nothing imports, is not there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from msica.build import builder, config, payload
from msica.cli import main as msica_main
from msica.testing import runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 120


@pytest.fixture(scope="module", params=["3.8", "3.12", "3.13"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, bytes]]:
    project = tmp_path_factory.mktemp("stdlib") / "stdlib"
    shutil.copytree(FIXTURES / "stdlib", project)
    settings = dataclasses.replace(config.load(project), python=request.param)
    (result,) = builder.build(project, settings)
    data = result.dll.read_bytes()
    files = payload.read_entries(data, payload.read_trailer(data))
    assert msica_main(["wxs", str(result.dll), "-o", str(project / "actions.wxi")]) == 0
    return wixl_msi(project / "product.wxs", project / "stdlib.msi"), files


@pytest.fixture(scope="module")
def install(built: tuple[Path, dict[str, bytes]]) -> runner.InstallResult:
    msi, _ = built
    return runner.install(msi, {"STDLIB_INPUT": "2.5e3"},
                          log_path=msi.with_suffix(".log"), timeout=ENGINE_TIMEOUT)


def test_the_payload_holds_what_is_imported_and_included_only(
    built: tuple[Path, dict[str, bytes]],
) -> None:
    _, files = built
    (zip_name,) = [name for name in files if name.endswith(".zip")]
    with zipfile.ZipFile(io.BytesIO(files[zip_name])) as archive:
        names = set(archive.namelist())
    for name in ("json/__init__.pyc", "json/decoder.pyc", "hashlib.pyc", "urllib/parse.pyc",
                 "xml/etree/ElementTree.pyc", "xml/etree/ElementPath.pyc"):
        assert name in names, name
    assert not {name for name in names if name.startswith("sqlite3/")}
    assert {"_hashlib.pyd", "pyexpat.pyd", "_elementtree.pyd"} <= set(files)
    assert [name for name in files if name.startswith("libcrypto-")]  # -1_1 in 3.8, -3 later
    assert not {"_sqlite3.pyd", "sqlite3.dll", "_ssl.pyd"} & set(files)
    assert not [name for name in files if name.startswith("libssl-")]
    document = json.loads(files[builder.MANIFEST])
    assert {"json", "hashlib", "urllib.parse", "xml.etree.ElementTree"} <= set(
        document["stdlib"])
    assert "sqlite3" not in document["stdlib"]


def test_the_action_runs_from_the_trimmed_runtime(install: runner.InstallResult) -> None:
    assert install.exit_code == 0
    assert install.log.action("UseStdlib").return_value == 1
    props = install.log.properties
    assert props["JSON_OUT"] == "2500.0|True"
    assert props["SHA256_OUT"] == hashlib.sha256(b"msica").hexdigest()
    assert props["QUOTE_OUT"] == "a%20b/c|example.org"
    assert props["DYNAMIC_OUT"] == "tree ok"  # listed in include
    assert props["MISSING_OUT"] == "ModuleNotFoundError"  # neither imported nor included
