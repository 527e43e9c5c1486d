"""MSICA_DEBUG's choice of actions and settings, short of the engine (see
tests/engine/test_debug.py for a real debugger attaching)."""

from __future__ import annotations

from typing import Any

import pytest

from msica import _debug


class FakeSession:
    """Properties and log lines; reading a property can fail like a deferred action's."""

    def __init__(self, properties: dict[str, str] | None = None, *, deferred: bool = False):
        self.properties = properties or {}
        self.deferred = deferred
        self.lines: list[str] = []

    def get(self, name: str, default: str = "") -> str:
        if self.deferred:
            raise PermissionError(f"{name} is not readable in a deferred action")
        return self.properties.get(name, default)

    def log(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.parametrize(("value", "entry", "expected"), [
    ("Debugged", "Debugged", True),
    ("Other", "Debugged", False),
    ("*", "Anything", True),
    ("First, Debugged", "Debugged", True),
    ("", "Debugged", False),
])
def test_environment_names_the_actions(monkeypatch: pytest.MonkeyPatch, value: str,
                                       entry: str, expected: bool) -> None:
    monkeypatch.setenv("MSICA_DEBUG", value)
    assert _debug.requested(FakeSession(), entry) is expected  # type: ignore[arg-type]


def test_property_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSICA_DEBUG", raising=False)
    session: Any = FakeSession({"MSICA_DEBUG": "Debugged"})
    assert _debug.requested(session, "Debugged")
    assert not _debug.requested(FakeSession(deferred=True), "Debugged")  # type: ignore[arg-type]


def test_bad_numbers_fall_back_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSICA_DEBUG_TIMEOUT", "soon")
    session = FakeSession()
    assert _debug._setting(session, "MSICA_DEBUG_TIMEOUT", 300) == 300  # type: ignore[arg-type]
    assert session.lines == ["MSICA_DEBUG_TIMEOUT='soon' is not a number; using 300"]


def test_actions_module_stays_cheap_to_import() -> None:
    import subprocess
    import sys

    code = ("import sys; import msica._host; "
            "print(sorted(m for m in ('dataclasses', 'inspect', 'debugpy', 'threading') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
