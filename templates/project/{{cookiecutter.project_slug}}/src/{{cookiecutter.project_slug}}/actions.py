"""The installer's custom actions, each one an export of dist/{{ cookiecutter.project_slug }}.x64.dll.

The shapes an installer needs, on one small job: greet the user in a file.

``ComposeGreeting`` (immediate) runs while the installer plans the install,
where actions read and set properties but change nothing on the machine: it
reads GREETING_NAME (give it on the msiexec command line) and sets GREETING.

``WriteGreetingFile`` (deferred) changes the machine, so it runs from the
install script, elevated, and reads no property but its CustomActionData:
``uses=`` makes ``msica wxs`` add the immediate action that fills it with
INSTALLDIR and GREETING.

``RemoveGreetingFile`` (rollback) undoes it when the install fails later on.
The engine runs a rollback action only when it was scheduled before the
failure, so it comes before the action it undoes.

``DeleteGreetingFile`` (deferred) removes the file on uninstall, and
``SimulateFailure`` fails the install on request (SIMULATE_FAILURE=1) so that
tests/test_install.py can watch the rollback happen.

This code runs inside the installer under the CPython that msica build
bundles (python = in pyproject.toml): keep it to that version's syntax.
"""

from __future__ import annotations

import os

from msica import ActionResult, Session, custom_action

GREETING_FILE = "greeting.txt"
"""The file WriteGreetingFile writes into the install directory."""


@custom_action
def ComposeGreeting(session: Session) -> ActionResult:
    """Read GREETING_NAME, set GREETING."""
    name = session.get("GREETING_NAME", "").strip() or "world"
    session["GREETING"] = f"Hello, {name}!"
    session.log(f"composed the greeting for {name}")
    return ActionResult.SUCCESS


@custom_action(
    execute="rollback",
    impersonate=False,
    after="InstallFiles",
    condition="NOT Installed",
    uses=["INSTALLDIR"],
)
def RemoveGreetingFile(session: Session) -> ActionResult:
    """Rollback of WriteGreetingFile: remove the file if it got written."""
    _remove_greeting(session, "rollback")
    return ActionResult.SUCCESS


@custom_action(
    execute="deferred",
    impersonate=False,
    after="RemoveGreetingFile",
    condition="NOT Installed",
    uses=["INSTALLDIR", "GREETING"],
)
def WriteGreetingFile(session: Session) -> ActionResult:
    """Write GREETING into INSTALLDIR\\greeting.txt."""
    data = session.custom_action_data
    path = os.path.join(data["INSTALLDIR"], GREETING_FILE)
    os.makedirs(data["INSTALLDIR"], exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(data["GREETING"] + "\n")
    session.log(f"wrote {path}")
    return ActionResult.SUCCESS


@custom_action(
    execute="deferred",
    after="WriteGreetingFile",
    condition='SIMULATE_FAILURE = "1"',
)
def SimulateFailure(session: Session) -> ActionResult:
    """Fail the install after the file is written, so that rollback runs."""
    session.log("SIMULATE_FAILURE=1: failing on purpose; the rollback follows")
    return ActionResult.FAILURE


@custom_action(
    execute="deferred",
    impersonate=False,
    before="RemoveFiles",
    condition='REMOVE ~= "ALL"',
    uses=["INSTALLDIR"],
)
def DeleteGreetingFile(session: Session) -> ActionResult:
    """On uninstall: remove the file, so that RemoveFolders can remove the directory."""
    _remove_greeting(session, "uninstall")
    return ActionResult.SUCCESS


def _remove_greeting(session: Session, why: str) -> None:
    path = os.path.join(session.custom_action_data["INSTALLDIR"], GREETING_FILE)
    try:
        os.remove(path)
    except FileNotFoundError:
        session.log(f"{why}: {path} is not there, nothing to remove")
    else:
        session.log(f"{why}: removed {path}")
