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
import re
import runpy
import shlex
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from msica.build import config
from msica.cli import _parser
from tests.helpers import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = REPO / "docs"
_FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Sample:
    page: str
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"docs/{self.page}:{self.line}"


def samples(language: str | None = None) -> list[Sample]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            indent = len(match.group(1))
            body = "\n".join(line[indent:] for line in match.group(3).splitlines()) + "\n"
            line = text.count("\n", 0, match.start()) + 1
            sample = Sample(page.name, line, match.group(2), body)
            if language is None or sample.language == language:
                found.append(sample)
    return found


def pages_with_python(tests: bool) -> list[str]:
    pages: dict[str, bool] = {}
    for sample in samples("python"):
        defines_tests = bool(re.search(r"^def test_", sample.text, re.MULTILINE))
        pages[sample.page] = pages.get(sample.page, False) or defines_tests
    return [page for page, has_tests in pages.items() if has_tests == tests]


def page_source(page: str) -> str:
    return "\n\n".join(s.text for s in samples("python") if s.page == page)


def test_every_sample_has_a_known_language() -> None:
    languages = {sample.language for sample in samples()}
    unknown = languages - {"python", "toml", "console", "json", "xml", "text"}
    assert not unknown, f"add a check for these sample languages: {unknown}"
    assert "" not in languages, [str(s) for s in samples("")]


@pytest.mark.parametrize("page", pages_with_python(tests=False))
def test_python_samples_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem.replace('-', '_')}"}
    for sample in samples("python"):
        if sample.page == page:
            code = compile(sample.text, str(sample), "exec")
            exec(code, namespace)  # noqa: S102 - running the guide's own samples is the point


@pytest.mark.parametrize("page", pages_with_python(tests=True))
def test_pages_with_tests_pass_under_pytest(page: str, pytester: pytest.Pytester) -> None:
    """Run the page as a user's test module, with msica's pytest plugin loaded."""
    pytester.makepyfile(**{f"test_{Path(page).stem.replace('-', '_')}": page_source(page)})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "not engine")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 1, result.stdout.str()


@pytest.mark.parametrize("sample", samples("toml"), ids=str)
def test_toml_samples_are_valid_config(sample: Sample) -> None:
    document = tomllib.loads(sample.text)
    table = document.get("tool", {}).get("msica")
    if table is not None:
        config.from_table(table, document.get("project", {}), where=str(sample))


@pytest.mark.parametrize("sample", samples("json") + samples("xml"), ids=str)
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
                         ids=[f"{s}:{' '.join(a)}" for s, a in _msica_commands()])
def test_console_commands_parse(sample: Sample, argv: list[str]) -> None:
    try:
        _parser().parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{sample}: `msica {' '.join(argv)}` is not a valid command (exit {stop})")


def test_api_reference_is_generated_from_the_docstrings() -> None:
    module = runpy.run_path(str(REPO / "scripts" / "api_docs.py"))
    expected = module["render"]()
    actual = (DOCS / "api.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/api.md is out of date: run python scripts/api_docs.py"
