"""The simulated engine against the real one: the same action (tests/fixtures/parity)
evaluates conditions and formats templates in a real install and in a SimulatedSession
with the same properties; the answers must be the same."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from msica.build import builder, config
from msica.cli import main as msica_main
from msica.testing import SimulatedSession, run_action, runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine

sys.path.insert(0, str(FIXTURES / "parity"))
import parity_actions  # noqa: E402


def _answers(hex_text: str) -> dict[str, Any]:
    return dict(json.loads(bytes.fromhex(hex_text).decode("utf-8")))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("parity") / "parity"
    shutil.copytree(FIXTURES / "parity", project)
    dll = builder.build(project, config.load(project))[0].dll
    assert msica_main(["wxs", str(dll), "-o", str(project / "actions.wxi")]) == 0
    msi = wixl_msi(project / "product.wxs", project / "parity.msi")
    result = runner.install(msi, parity_actions.PROPERTIES, log_path=project / "install.log",
                            timeout=120)
    runner.install(msi, uninstall=True, log_path=project / "uninstall.log", timeout=120)
    assert result.succeeded, result.log.msica_lines
    return _answers(result.log.properties["PARITY"])


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    session = SimulatedSession(parity_actions.PROPERTIES)
    assert run_action(parity_actions.Parity, session) == 0, session.log_lines
    return _answers(session.properties["PARITY"])


def _differences(inputs: Sequence[str], real: Sequence[Any],
                 simulated: Sequence[Any]) -> list[tuple[str, Any, Any]]:
    """``(input, real answer, simulated answer)`` wherever the two answers differ."""
    return [(given, mine, theirs) for given, mine, theirs in zip(inputs, real, simulated)
            if mine != theirs]


def test_conditions_agree(real: dict[str, Any], simulated: dict[str, Any]) -> None:
    assert _differences(parity_actions.CONDITIONS, real["conditions"],
                        simulated["conditions"]) == []
    assert len(real["conditions"]) == len(parity_actions.CONDITIONS)


def test_formatting_agrees(real: dict[str, Any], simulated: dict[str, Any]) -> None:
    assert _differences(parity_actions.TEMPLATES, real["formats"], simulated["formats"]) == []


def test_silent_message_answers_agree(real: dict[str, Any], simulated: dict[str, Any]) -> None:
    assert simulated["messages"] == real["messages"]
