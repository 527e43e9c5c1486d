"""Every code sample in docs/ runs here, so the guide cannot drift from the code.

- ``python`` blocks of a page run in order in one namespace, in a scratch
  directory; a page that defines ``test_*`` functions is run by pytest itself
  (with msica's plugin, as a user's test file would be).
- ``toml`` blocks with ``[tool.msica]`` are read by the real config reader.
- ``json`` and ``xml`` blocks are parsed.
- ``console`` lines that start with ``$ msica`` parse with the real command
  line (the engine test of the quickstart runs them for real).
- docs/api.md is what scripts/api_docs.py generates from the docstrings.
"""

from __future__ import annotations

import json
import runpy
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from msica.build import config
from msica.cli import _parser
from tests.docs_samples import DOCS, Sample, page_source, pages_with_python, samples, where
from tests.helpers import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest_plugins = ["pytester"]

# A page's tests may take app_msi, the package built from the page's actions:
# tests/engine/test_docs_install.py builds it; here it is skipped.
SKIPPED_APP_MSI = """
import pytest

@pytest.fixture
def app_msi():
    pytest.skip("the engine test of the docs builds the package")
"""
def test_every_sample_has_a_known_language() -> None:
    languages = {sample.language for sample in samples()}
    unknown = languages - {"python", "toml", "console", "json", "xml", "text"}
    assert not unknown, f"add a check for these sample languages: {unknown}"
    assert "" not in languages, [where(s) for s in samples("")]


@pytest.mark.parametrize("page", pages_with_python(tests=False))
def test_python_samples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem.replace('-', '_')}"}
    for sample in samples("python"):
        if sample.page == page:
            # padded so that a failure names the line of the page
            code = compile("\n" * sample.line + sample.text, f"docs/{page}", "exec")
            exec(code, namespace)


@pytest.mark.parametrize("page", pages_with_python(tests=True))
def test_pages_with_tests_pass_under_pytest(page: str, pytester: pytest.Pytester) -> None:
    """Run the page as a user's test module, with msica's pytest plugin loaded."""
    pytester.makeconftest(SKIPPED_APP_MSI)
    pytester.makepyfile(**{f"test_{Path(page).stem.replace('-', '_')}": page_source(page)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 1, result.stdout.str()


@pytest.mark.parametrize("sample", samples("toml"), ids=where)
def test_toml_samples_are_valid_config(sample: Sample) -> None:
    document = tomllib.loads(sample.text)
    table = document.get("tool", {}).get("msica")
    if table is not None:
        config.from_table(table, document.get("project", {}), where=where(sample))


@pytest.mark.parametrize("sample", samples("json") + samples("xml"), ids=where)
def test_json_and_xml_samples_parse(sample: Sample) -> None:
    if sample.language == "json":
        json.loads(sample.text)
    else:
        ET.fromstring(sample.text)


def _msica_commands() -> list[tuple[Sample, list[str]]]:
    commands = []
    for sample in samples("console"):
        for line in sample.text.splitlines():
            if line.startswith("$ msica "):
                commands.append((sample, shlex.split(line[len("$ msica "):])))
    return commands


@pytest.mark.parametrize(("sample", "argv"), _msica_commands(),
                         ids=[f"{where(s)}:{' '.join(a)}" for s, a in _msica_commands()])
def test_console_commands_parse(sample: Sample, argv: list[str]) -> None:
    try:
        _parser().parse_args(argv)
    except SystemExit as stop:
        command = " ".join(argv)
        pytest.fail(f"{where(sample)}: `msica {command}` is not a valid command (exit {stop})")


def test_api_reference_is_generated_from_the_docstrings() -> None:
    module = runpy.run_path(str(REPO / "scripts" / "api_docs.py"))
    expected = module["render"]()
    actual = (DOCS / "api.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/api.md is out of date: run python scripts/api_docs.py"
