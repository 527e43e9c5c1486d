"""Unit tests: each action against msica's simulated session, in milliseconds.

``msica_session`` (msica's pytest plugin) makes a session with the given
properties; ``run_action`` calls an action the way the installer does, so an
exception comes back as 1603, as it would in a real install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from msica.testing import SimulatedSession, run_action

from {{ cookiecutter.project_slug }} import actions

SessionFactory = Callable[..., SimulatedSession]


def _data_for(directory: Path, **more: str) -> dict[str, str]:
    # What the installer gives a deferred action: INSTALLDIR ends in a separator.
    return {"INSTALLDIR": str(directory) + os.sep, **more}


def test_compose_greeting_greets_the_given_name(msica_session: SessionFactory) -> None:
    session = msica_session({"GREETING_NAME": "  Ada Lovelace "}, action="ComposeGreeting")

    assert run_action(actions.ComposeGreeting, session) == 0

    assert session.properties["GREETING"] == "Hello, Ada Lovelace!"
    assert any("Ada Lovelace" in line for line in session.log_lines)


def test_compose_greeting_defaults_to_world(msica_session: SessionFactory) -> None:
    session = msica_session({}, action="ComposeGreeting")

    assert run_action(actions.ComposeGreeting, session) == 0

    assert session.properties["GREETING"] == "Hello, world!"


def test_write_greeting_file_writes_what_uses_carries(tmp_path: Path) -> None:
    # run_action fills CustomActionData from the properties named in uses=, as the
    # data setter msica wxs adds does before the install script runs.
    session = SimulatedSession(
        {"INSTALLDIR": str(tmp_path) + os.sep, "GREETING": "Hello, Grüße 東京!"}
    )

    assert run_action(actions.WriteGreetingFile, session) == 0

    written = (tmp_path / actions.GREETING_FILE).read_text(encoding="utf-8")
    assert written == "Hello, Grüße 東京!\n"
    assert not session.property_writes


def test_write_greeting_file_fails_without_its_data(tmp_path: Path) -> None:
    # A deferred action reads no property but its CustomActionData: INSTALLDIR as a
    # property is not enough when the data lacks it.
    session = SimulatedSession(
        {"INSTALLDIR": str(tmp_path) + os.sep},
        execute="deferred",
        custom_action_data={"GREETING": "Hello!"},
    )

    assert run_action(actions.WriteGreetingFile, session) == 1603
    assert not (tmp_path / actions.GREETING_FILE).exists()


def test_rollback_removes_the_written_file(tmp_path: Path) -> None:
    (tmp_path / actions.GREETING_FILE).write_text("Hello, world!\n", encoding="utf-8")
    session = SimulatedSession(
        {}, action="RemoveGreetingFile", execute="rollback", custom_action_data=_data_for(tmp_path)
    )

    assert run_action(actions.RemoveGreetingFile, session) == 0

    assert not (tmp_path / actions.GREETING_FILE).exists()
    assert any("removed" in line for line in session.log_lines)


def test_rollback_succeeds_when_nothing_was_written(tmp_path: Path) -> None:
    # The install may fail before WriteGreetingFile ran: rollback must not fail then.
    session = SimulatedSession(
        {}, action="RemoveGreetingFile", execute="rollback", custom_action_data=_data_for(tmp_path)
    )

    assert run_action(actions.RemoveGreetingFile, session) == 0
    assert any("nothing to remove" in line for line in session.log_lines)


def test_rollback_is_scheduled_before_the_action_it_undoes() -> None:
    # The engine runs only the rollback actions scheduled before the failure.
    assert actions.RemoveGreetingFile.msica_action.execute == "rollback"
    assert actions.WriteGreetingFile.msica_action.after == "RemoveGreetingFile"


def test_simulated_failure_fails_the_install(msica_session: SessionFactory) -> None:
    session = msica_session({}, action="SimulateFailure", execute="deferred")

    assert run_action(actions.SimulateFailure, session) == 1603
