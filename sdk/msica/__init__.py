"""msica: Windows Installer custom actions in Python.

Write a function, decorate it, and ``msica build`` turns it into a DLL that
the Windows Installer engine calls like any C custom action::

    from msica import ActionResult, Session, custom_action

    @custom_action
    def CheckLicense(session: Session) -> ActionResult:
        key = session["LICENSE_KEY"]
        session["LICENSE_OK"] = "1" if key.startswith("MSICA-") else "0"
        session.log(f"license key has {len(key)} characters")
        return ActionResult.SUCCESS
"""

from __future__ import annotations

from msica.actions import Action, custom_action
from msica.database import Database, View
from msica.enums import ActionResult
from msica.errors import InstallerError, MsicaError
from msica.record import Record
from msica.session import Session

__all__ = [
    "Action",
    "ActionResult",
    "Database",
    "InstallerError",
    "MsicaError",
    "Record",
    "Session",
    "View",
    "__version__",
    "custom_action",
]


def __getattr__(name: str) -> str:
    # Computed on first use: importlib.metadata imports some 40 modules, which
    # cost about 200 ms of every action's cold start when done at import.
    if name != "__version__":
        raise AttributeError(f"module 'msica' has no attribute {name!r}")
    try:
        from importlib import metadata
    except ImportError:  # inside an action: msica build packs no importlib.metadata
        return "0+payload"
    try:
        return metadata.version("msica")
    except metadata.PackageNotFoundError:  # running from an unpacked payload
        return "0+payload"
