"""The guide's samples with the real engine: the quickstart's commands, run as
written, and the testing page's engine test, run by pytest against a package
built from that page's own action."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from msica.cli import main as msica_main
from tests.docs_samples import action_source, page_source, samples
from tests.helpers import REPO, wixl_msi

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.engine

PRODUCT = (REPO / "examples" / "hello" / "product.wxs").read_text(encoding="utf-8")


def _project(root: Path, page: str) -> Path:
    """A project holding the page's actions (and its [tool.msica] sample, if any)."""
    root.mkdir(parents=True)
    (root / "actions.py").write_text(action_source(page), encoding="utf-8")
    tomls = [s.text for s in samples("toml") if s.page == page]
    (root / "pyproject.toml").write_text(
        tomls[0] if tomls else '[project]\nname = "docs"\n\n[tool.msica]\nactions = ["actions"]\n',
        encoding="utf-8",
    )
    (root / "product.wxs").write_text(PRODUCT.replace("hello.wxi", "actions.wxi"),
                                      encoding="utf-8")
    return root


def _msica(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = msica_main(argv)
    out = capsys.readouterr().out
    assert code == 0, f"msica {' '.join(argv)} exited {code}:\n{out}"
    return out


def test_quickstart_commands_work_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "quickstart", "quickstart.md")
    monkeypatch.chdir(project)
    commands = [
        shlex.split(line[len("$ msica "):])
        for sample in samples("console") if sample.page == "quickstart.md"
        for line in sample.text.splitlines() if line.startswith("$ msica ")
    ]
    ran = []
    for argv in commands:
        if argv[0] == "build" or (argv[0] == "wxs" and "--wix" not in argv):
            _msica(argv, capsys)
            ran.append(argv[0])
        elif argv[0] == "run":
            wixl_msi(project / "product.wxs", project / "app.msi")
            out = _msica([*argv, "--log", str(project / "install.log")], capsys)
            ran.append("run")
    assert ran == ["build", "wxs", "run"]
    assert "exit code 0" in out
    assert "property GREETING = 'Hello, Ada!'" in out
    assert "greeted Ada" in out


def test_testing_page_engine_test_passes(tmp_path: Path, pytester: pytest.Pytester,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path / "testing", "testing.md")
    _msica(["build", str(project)], capsys)
    dll = project / "dist" / "docs.x64.dll"
    _msica(["wxs", str(dll), "-o", str(project / "actions.wxi")], capsys)
    msi = wixl_msi(project / "product.wxs", project / "app.msi")
    shutil.copy(msi, pytester.path / "app.msi")
    pytester.makeconftest(
        "import pathlib, pytest\n\n"
        "@pytest.fixture\n"
        "def app_msi():\n"
        "    return pathlib.Path(__file__).parent / 'app.msi'\n"
    )
    pytester.makepyfile(test_testing_page=page_source("testing.md"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("skipped", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) == 2, result.stdout.str()
