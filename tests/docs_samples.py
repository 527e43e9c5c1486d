"""The code samples of docs/: what tests/unit/test_docs.py and
tests/engine/test_docs_install.py run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.helpers import REPO

DOCS = REPO / "docs"
_FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Sample:
    page: str
    line: int
    language: str
    text: str


def where(sample: Sample) -> str:
    """``docs/<page>:<line>``, to name a sample in a test id or a failure."""
    return f"docs/{sample.page}:{sample.line}"


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


def action_source(page: str) -> str:
    """The page's samples that define actions and nothing else: its actions module."""
    return "\n\n".join(
        s.text for s in samples("python")
        if s.page == page and "@custom_action" in s.text and "msica.testing" not in s.text
        and "def test_" not in s.text
    )
