"""What the shim calls: :func:`dispatch`, the one entry from C into Python.

Contract with bridge_c/msica_dispatch.c: ``dispatch(entry, handle) -> int``
never raises. ``entry`` is the DLL export the engine called (the action's
name), ``handle`` the MSIHANDLE of the install. An exception escaping the
action is written with its full traceback into the MSI log and becomes 1603.
"""

from __future__ import annotations

import importlib
import io
import sys

from msica.actions import Action, ActionFunction, registered
from msica.enums import ActionResult
from msica.errors import InstallUserExitError
from msica.session import Session

_VALID_RESULTS = frozenset(int(result) for result in ActionResult)

_current: Session | None = None
"""The session of the action running now, for the logging handler."""


def _bridge_logging() -> None:
    """Send the ``logging`` module's records to the running action's MSI log.

    Done once the action's code has imported ``logging`` (checked around every
    call), not at start: importing it costs every cold start its dependencies.
    """
    if "logging" not in sys.modules:
        return
    import logging

    if getattr(logging, "_msica_bridged", False):
        return

    class MsiLogHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            session = _current
            if session is None:
                return
            try:
                session.log(self.format(record))
            except Exception:
                self.handleError(record)

    handler = MsiLogHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    logging._msica_bridged = True  # type: ignore[attr-defined]


def dispatch(entry: str, handle: int) -> int:
    """Run the action exported as ``entry`` with a Session on ``handle``; return its code."""
    session = Session(handle, action=entry)
    try:
        action, function = _resolve(entry)
    except BaseException:  # the engine gets a code and the log the reason
        import traceback

        _log_failure(session, traceback.format_exc())
        return int(ActionResult.FAILURE)
    if action.hide_target:
        session = Session(handle, action=entry, hide_data=True)
    return run(action, function, session)


def run(action: Action, function: ActionFunction, session: Session) -> int:
    """Call ``function`` (the code of ``action``) with ``session`` as the engine's action
    would be; the code the engine gets. Never raises.

    print(), sys.stderr and ``logging`` go to the session's log while it runs;
    ``None`` is SUCCESS; a result that is not an :class:`ActionResult` value,
    or an exception (its traceback logged), is FAILURE; a cancel is USER_EXIT.
    ``msica.testing.run_action`` calls this too, with a simulated session.
    """
    global _current
    try:
        _bridge_logging()
        with _LogStream(session) as out:
            saved = sys.stdout, sys.stderr, _current
            sys.stdout = sys.stderr = out
            _current = session
            try:
                result = function(session)
            finally:
                _bridge_logging()  # the action may have imported logging itself
                sys.stdout, sys.stderr, _current = saved
        return _result_code(session, result)
    except InstallUserExitError:
        _log_failure(session, "cancelled by the user", prefix="")
        return int(ActionResult.USER_EXIT)
    except BaseException:  # whatever happened, the engine gets a code and the log the reason
        import traceback

        _log_failure(session, traceback.format_exc())
        return int(ActionResult.FAILURE)


def _resolve(entry: str) -> tuple[Action, ActionFunction]:
    """The function behind ``entry``, importing the module that defines it."""
    setter = _data_setter(entry)
    if setter is not None:
        return setter
    modules = _payload_modules()
    if entry == "CustomAction" and entry not in modules:
        if len(modules) != 1:
            raise LookupError(
                "the DLL's CustomAction export was called, but the DLL holds "
                f"{len(modules)} actions ({', '.join(sorted(modules))}): set DllEntry to "
                "one of their names"
            )
        entry = next(iter(modules))
    module = modules.get(entry)
    if module is None:
        raise LookupError(
            f"no action named {entry!r} in this DLL; it has: {', '.join(sorted(modules))}"
        )
    importlib.import_module(module)
    found = registered(entry)
    if found is None:
        raise LookupError(
            f"module {module} no longer defines action {entry!r}; rebuild the DLL"
        )
    return found


def _data_setter(entry: str) -> tuple[Action, ActionFunction] | None:
    """The immediate action that encodes the ``uses`` properties of a deferred action
    into its CustomActionData (the property named like it), if ``entry`` is one."""
    target = getattr(_payload(), "DATA_SETTERS", {}).get(entry)
    if target is None:
        return None
    name, uses = target

    def fill(session: Session) -> None:
        from msica import customactiondata

        session[name] = customactiondata.encode({used: session[used] for used in uses})

    return Action(name=entry, function_name="fill"), fill


def _payload_modules() -> dict[str, str]:
    """Action name -> module, as ``msica build`` recorded it in the payload."""
    modules: dict[str, str] = getattr(_payload(), "ACTIONS", {})
    return modules


def _payload() -> object:
    """The ``_msica_payload`` module ``msica build`` wrote, or None outside a payload."""
    try:
        return importlib.import_module("_msica_payload")
    except ImportError:
        return None


def _result_code(session: Session, result: object) -> int:
    if result is None:
        return int(ActionResult.SUCCESS)
    if isinstance(result, int) and not isinstance(result, bool) and result in _VALID_RESULTS:
        return int(result)
    _log_failure(
        session,
        f"the action returned {result!r}; return an ActionResult (or None for SUCCESS)",
    )
    return int(ActionResult.FAILURE)


def _log_failure(session: Session, text: str, prefix: str = "action failed:\n") -> None:
    try:  # noqa: SIM105 - contextlib is kept off the action's import path
        session.log(prefix + text.rstrip("\n"))
    except BaseException:  # the handle may be unusable; there is nowhere else to say it
        pass


class _LogStream(io.TextIOBase):
    """sys.stdout/sys.stderr during an action: each complete line goes to the MSI log."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session
        self._pending = ""

    def __enter__(self) -> _LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._session.log(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._session.log(line)
