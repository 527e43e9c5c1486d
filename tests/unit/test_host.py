"""msica._host.dispatch, the shim's entry into Python, on a simulated install: the same
call the shim makes, dispatch(entry, handle), with the payload's action table faked."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from msica import _host, custom_action
from msica.customactiondata import decode
from msica.session import Session
from msica.testing import SimulatedSession

MODULE = "msica_host_test_actions"


@custom_action(name="HostGreets")
def _greets(session: Session) -> None:
    session["GREETED"] = session.action


@custom_action(name="HostHides", execute="deferred", hide_target=True)
def _hides(session: Session) -> None:
    session.log("data is " + session["CustomActionData"])


@pytest.fixture
def payload() -> Iterator[types.ModuleType]:
    """A ``_msica_payload`` module as msica build writes it, naming this module's actions."""
    module = types.ModuleType("_msica_payload")
    module.ACTIONS = {"HostGreets": __name__, "HostHides": __name__}  # type: ignore[attr-defined]
    module.DATA_SETTERS = {  # type: ignore[attr-defined]
        "MsicaData_HostHides": ("HostHides", ("INSTALLDIR", "TOKEN")),
    }
    sys.modules["_msica_payload"] = module
    yield module
    del sys.modules["_msica_payload"]


def test_dispatch_runs_the_exported_action(payload: types.ModuleType) -> None:
    session = SimulatedSession()
    assert _host.dispatch("HostGreets", session.handle) == 0
    assert session.properties["GREETED"] == "HostGreets"


def test_an_unknown_export_fails_with_the_names_the_dll_has(payload: types.ModuleType) -> None:
    session = SimulatedSession()
    assert _host.dispatch("Nope", session.handle) == 1603
    (line,) = session.log_lines
    assert line.startswith("msica[Nope] action failed:\nTraceback")
    assert line.endswith(
        "LookupError: no action named 'Nope' in this DLL; it has: HostGreets, HostHides")


def test_the_customaction_export_needs_exactly_one_action(payload: types.ModuleType) -> None:
    session = SimulatedSession()
    assert _host.dispatch("CustomAction", session.handle) == 1603
    assert "the DLL holds 2 actions (HostGreets, HostHides)" in session.log_lines[0]
    payload.ACTIONS = {"HostGreets": __name__}  # type: ignore[attr-defined]
    assert _host.dispatch("CustomAction", session.handle) == 0
    # The one action ran; its session is named after the export the engine called.
    assert session.properties["GREETED"] == "CustomAction"


def test_data_setter_then_deferred_action_with_hidden_data(payload: types.ModuleType) -> None:
    immediate = SimulatedSession({"INSTALLDIR": "C:\\App\\", "TOKEN": "s3cr3t;=x"})
    assert _host.dispatch("MsicaData_HostHides", immediate.handle) == 0
    data = immediate.properties["HostHides"]
    assert decode(data) == {"INSTALLDIR": "C:\\App\\", "TOKEN": "s3cr3t;=x"}
    # The engine hands that value to the deferred action as its CustomActionData.
    deferred = SimulatedSession(execute="deferred", custom_action_data=data)
    assert _host.dispatch("HostHides", deferred.handle) == 0
    assert deferred.log_lines == ["msica[HostHides] data is ******"]
