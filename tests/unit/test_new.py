"""``msica new``: the project it writes, the names it refuses, and the template in the wheel."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tomllib
import yaml

from msica.build import builder, config, discover
from msica.cli import main as msica_main
from tests.helpers import REPO

WIX3 = "{http://schemas.microsoft.com/wix/2006/wi}"
WIX4 = "{http://wixtoolset.org/schemas/v4/wxs}"

EXPECTED_FILES = {
    ".github/workflows/ci.yml",
    ".gitignore",
    "README.md",
    "product.wixl.wxs",
    "product.wxs",
    "pyproject.toml",
    "src/acme_backup/__init__.py",
    "src/acme_backup/actions.py",
    "tests/test_actions.py",
    "tests/test_install.py",
    "tools/wixl_types.py",
}


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code = msica_main(["new", "Acme Backup", "-o", str(tmp_path), "--no-input",
                       "--set", "manufacturer=Acme & Söhne", "--set", "python=3.11"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == str(tmp_path / "acme_backup")
    return tmp_path / "acme_backup"


def _files(project: Path) -> set[str]:
    return {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}


def test_new_writes_the_project_with_the_names_substituted(project: Path) -> None:
    assert _files(project) == EXPECTED_FILES
    for name in EXPECTED_FILES:
        text = (project / name).read_text(encoding="utf-8")
        assert "cookiecutter" not in text, name
        # Left unrendered, a Jinja tag would stay (GitHub's ${{ ... }} belongs there).
        assert "{%" not in text and "{{" not in text.replace("${{", ""), name


def test_new_pyproject_is_a_buildable_msica_project(project: Path) -> None:
    document = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert document["project"]["name"] == "acme_backup"
    assert document["project"]["dependencies"] == []
    dev = document["project"]["optional-dependencies"]["dev"]
    assert any(requirement.startswith("msica") for requirement in dev)
    settings = config.load(project)
    assert settings.actions == ("acme_backup.actions",)
    assert settings.source == "src"
    assert settings.python == "3.11"
    assert settings.archs == ("x64",)


def test_new_actions_are_found_by_msica_build(project: Path) -> None:
    settings = config.load(project)
    module = settings.actions[0]
    found = discover.discover([(module, builder.module_path(project, settings, module))])
    actions = {item.action.name: item.action for item in found}
    assert list(actions) == ["ComposeGreeting", "RemoveGreetingFile", "WriteGreetingFile",
                             "SimulateFailure", "DeleteGreetingFile"]
    assert actions["ComposeGreeting"].execute == "immediate"
    assert actions["WriteGreetingFile"].execute == "deferred"
    assert actions["WriteGreetingFile"].uses == ("INSTALLDIR", "GREETING")
    assert not actions["WriteGreetingFile"].impersonate
    rollback = actions["RemoveGreetingFile"]
    assert (rollback.execute, rollback.uses) == ("rollback", ("INSTALLDIR",))
    # Scheduled before the action it undoes, as the engine requires.
    assert actions["WriteGreetingFile"].after == "RemoveGreetingFile"


def test_new_python_files_parse(project: Path) -> None:
    for name in sorted(n for n in EXPECTED_FILES if n.endswith(".py")):
        tree = ast.parse((project / name).read_text(encoding="utf-8"), filename=name)
        assert tree.body, name
    test_source = (project / "tests/test_actions.py").read_text(encoding="utf-8")
    assert "from acme_backup import actions" in test_source


def test_new_wix_sources_are_wix4_and_wix3_with_the_product_values(project: Path) -> None:
    v4 = ET.parse(project / "product.wxs").getroot()
    assert v4.tag == f"{WIX4}Wix"
    package = v4.find(f"{WIX4}Package")
    assert package is not None
    assert package.get("Name") == "Acme Backup"
    assert package.get("Manufacturer") == "Acme & Söhne"
    assert package.get("Version") == "1.0.0"
    assert v4.find(f".//{WIX4}CustomActionRef").get("Id") == "ComposeGreeting"  # type: ignore[union-attr]

    v3 = ET.parse(project / "product.wixl.wxs").getroot()
    assert v3.tag == f"{WIX3}Wix"
    product = v3.find(f"{WIX3}Product")
    assert product is not None
    assert product.get("Name") == "Acme Backup"
    # One product identity in both sources, a real GUID, different from the component's.
    assert product.get("UpgradeCode") == package.get("UpgradeCode")
    assert len(product.get("UpgradeCode", "")) == 36
    components = {c.get("Guid") for c in v3.iter(f"{WIX3}Component")}
    assert components == {c.get("Guid") for c in v4.iter(f"{WIX4}Component")}
    assert product.get("UpgradeCode") not in components
    text = (project / "product.wixl.wxs").read_text(encoding="utf-8")
    assert "<?include actions.wxi ?>" in text


def test_new_projects_get_their_own_upgrade_code(tmp_path: Path) -> None:
    for name in ("One", "Two"):
        assert msica_main(["new", name, "-o", str(tmp_path), "--no-input"]) == 0
    codes = {ET.parse(tmp_path / slug / "product.wxs").getroot()
             .find(f"{WIX4}Package").get("UpgradeCode")  # type: ignore[union-attr]
             for slug in ("one", "two")}
    assert len(codes) == 2


def test_new_ci_has_a_windows_and_a_linux_job(project: Path) -> None:
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    jobs = workflow["jobs"]
    assert jobs["windows"]["runs-on"] == "windows-latest"
    assert jobs["linux"]["runs-on"] == "ubuntu-latest"
    windows = "\n".join(step.get("run", "") for step in jobs["windows"]["steps"])
    linux = "\n".join(step.get("run", "") for step in jobs["linux"]["steps"])
    assert "dotnet tool install --global wix" in windows
    assert "msica wxs --wix 4 dist/acme_backup.x64.dll -o actions.wxs" in windows
    assert "wix build -arch x64 -o dist/acme_backup.msi product.wxs actions.wxs" in windows
    assert "msiexec" in windows and "python -m pytest" in windows
    assert "wine64 msitools wixl" in linux
    assert "wixl -a x64 -o dist/acme_backup.msi product.wixl.wxs" in linux
    assert "python -m pytest" in linux
    # GitHub's own expressions survive the template's rendering.
    key = jobs["linux"]["steps"][3]["with"]["key"]
    assert key == "msica-linux-${{ hashFiles('pyproject.toml') }}"


def test_new_refuses_an_existing_directory(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "README.md").read_text(encoding="utf-8")
    code = msica_main(["new", "Acme Backup", "-o", str(project.parent), "--no-input"])
    assert code == 2
    assert f"{project} already exists" in capsys.readouterr().err
    assert (project / "README.md").read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["2fast"], "project slug '2fast' is not a usable Python package and DLL name"),
        (["x", "--set", "project_slug=class"], "project slug 'class' is a Python keyword"),
        (["Con"], "project slug 'con' is a device name Windows reserves"),
        (["json"], "project slug 'json' would hide the module"),
        (["東京 Tool"], "outside Windows-1252"),
        (["a:b"], "Windows refuses ':' in a folder name"),
        (["x", "--set", "version=1.0"], "version '1.0' is not a Windows Installer ProductVersion"),
        (["x", "--set", "pyton=3.11"], "--set pyton: the template has no such key (did you mean"),
        (["x", "--set", "python=2.7"], "2.7 provided for choice variable python"),
        (["x", "--set", "manufacturer"], "--set 'manufacturer': write KEY=VALUE"),
    ],
)
def test_new_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code = msica_main(["new", *arguments, "-o", str(tmp_path / "out"), "--no-input"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_new_works_from_an_installed_wheel(tmp_path: Path) -> None:
    """The template ships in the wheel: msica new finds it away from this checkout."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"),
         str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "wheel").glob("msica-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import msica.author.new as n; print(n.template_dir())"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(where) == site / "msica" / "_templates" / "project"
    done = subprocess.run(
        [sys.executable, "-m", "msica", "new", "Wheel Demo", "--no-input"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    generated = {p.relative_to(tmp_path / "wheel_demo").as_posix()
                 for p in (tmp_path / "wheel_demo").rglob("*") if p.is_file()}
    assert generated == {name.replace("acme_backup", "wheel_demo") for name in EXPECTED_FILES}


def test_new_asks_for_each_value_without_no_input(tmp_path: Path) -> None:
    # Product name, slug (default), description (default), manufacturer, version,
    # and the third CPython of the list (3.11).
    answers = "Piped Product\n\n\nPiped Corp\n2.1.0\n3\n"
    done = subprocess.run(
        [sys.executable, "-m", "msica", "new", "-o", str(tmp_path)],
        input=answers, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    project = tmp_path / "piped_product"
    document = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert document["project"]["version"] == "2.1.0"
    assert document["tool"]["msica"]["python"] == "3.11"
    product = ET.parse(project / "product.wixl.wxs").getroot().find(f"{WIX3}Product")
    assert product is not None
    assert (product.get("Manufacturer"), product.get("Version")) == ("Piped Corp", "2.1.0")


def test_template_hook_refuses_a_bad_slug_for_plain_cookiecutter(tmp_path: Path) -> None:
    """Run with cookiecutter itself, the template refuses what msica new refuses."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.generate import generate_context, generate_files
    from cookiecutter.prompt import prompt_for_config

    from msica.author.new import template_dir

    template = template_dir()
    context = generate_context(context_file=str(template / "cookiecutter.json"),
                               extra_context={"project_slug": "2fast"})
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    with pytest.raises(FailedHookException):
        generate_files(repo_dir=str(template), context=context, output_dir=str(tmp_path))
    assert not (tmp_path / "2fast").exists()
