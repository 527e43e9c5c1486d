"""A simulated session: test an action's code without an installer.

:class:`SimulatedSession` *is* a :class:`msica.Session`: every method is the
real one, calling the same msi.dll functions, which a simulated engine
(:mod:`msica.testing._engine`) answers from a dict of properties. So the
deferred guard, the masking of hidden values, CustomActionData decoding and
the mapping of return codes to exceptions are the ones that run in an
install. :func:`run_action` calls an action the way the host in the DLL does
(``msica._host.run``): print and logging go to the log, ``None`` is
SUCCESS, an exception is 1603 with its traceback in the log, a cancel 1602.

What the simulator records: :attr:`~SimulatedSession.log_lines` (as they
would appear in the verbose log, ``msica[Action] ...``),
:attr:`~SimulatedSession.property_writes`, :attr:`~SimulatedSession.progress`
and other :attr:`~SimulatedSession.messages`. What it cannot do (standard
actions, costing, disk space, source media, ``[#File]`` references) raises
:class:`~msica.testing._engine.SimulatorError`, which names what to use
instead: a real install, through ``msica run`` or the ``msica_install``
fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from msica import customactiondata
from msica.actions import EXECUTE_MODES, Action, ActionFunction, registered
from msica.enums import DialogResult, InstallMessage, InstallState
from msica.session import Progress, Session
from msica.testing import _engine
from msica.testing._engine import SimulatorError

__all__ = ["RecordedProgress", "SimulatedSession", "SimulatorError", "run_action"]

_UNSET: Any = object()
States = Mapping[str, "tuple[InstallState | int, InstallState | int]"]


class SimulatedSession(Session):
    """A Session on a simulated install holding ``properties``.

    ``action`` names the running action (log lines start ``msica[action]``);
    ``execute`` is how it runs: in a deferred, rollback or commit session only
    CustomActionData, ProductCode and UserSID can be read, as on Windows.
    ``custom_action_data`` sets CustomActionData: text as it is, or a mapping
    encoded with :func:`msica.customactiondata.encode`, as ``uses=`` would.
    ``hidden`` names properties for MsiHiddenProperties; ``hide_target``
    hides the action's data as ``@custom_action(hide_target=True)`` does.
    ``features`` and ``components`` give ``(installed, requested)`` states
    by name. ``answer(kind, fields)`` decides what MsiProcessMessage answers
    (default 0, as with no UI); :meth:`cancel` answers Cancel.
    """

    def __init__(
        self,
        properties: Mapping[str, str] | None = None,
        *,
        action: str = "",
        execute: str = _UNSET,
        custom_action_data: str | Mapping[str, str] | None = None,
        hidden: Iterable[str] = (),
        hide_target: bool = False,
        features: States | None = None,
        components: States | None = None,
        answer: Callable[[InstallMessage, tuple[str | int | None, ...]], int] | None = None,
        database: _engine.DatabaseBackend | None = None,
    ) -> None:
        self._execute_given = execute is not _UNSET
        mode = "immediate" if execute is _UNSET else execute
        if mode not in EXECUTE_MODES:
            raise ValueError(f"execute={mode!r} is not one of {', '.join(EXECUTE_MODES)}")
        values = {}
        for name, value in (properties or {}).items():
            if not isinstance(value, str):
                raise TypeError(f"property {name} must be a str, not {type(value).__name__}")
            if value:
                values[name] = value
        names = list(hidden)
        if names:
            listed = [n for n in values.get("MsiHiddenProperties", "").split(";") if n]
            values["MsiHiddenProperties"] = ";".join(dict.fromkeys([*listed, *names]))
        self._data_given = custom_action_data is not None
        if custom_action_data is not None:
            data = (custom_action_data if isinstance(custom_action_data, str)
                    else customactiondata.encode(custom_action_data))
            if data:
                values["CustomActionData"] = data
        self._engine = _engine.engine()
        self._install = _engine.Install(
            properties=values,
            execute=mode,
            features=_engine.initial_states(features),
            components=_engine.initial_states(components),
            database=database,
            answer=answer,
        )
        super().__init__(self._engine.open(self._install), action=action, hide_data=hide_target)

    @classmethod
    def from_msi(
        cls,
        path: str | Path,
        properties: Mapping[str, str] | None = None,
        **options: Any,
    ) -> SimulatedSession:
        """A session on the package at ``path``: its Property table, overridden by
        ``properties``, and its database for queries. ``options`` as for the class."""
        from msica.testing import _database

        backend = _database.open_package(Path(path))
        merged = {**backend.properties(), **(properties or {})}
        options.setdefault("database", backend)
        return cls(merged, **options)

    def __repr__(self) -> str:
        return (f"SimulatedSession(action={self.action!r}, execute={self.execute!r}, "
                f"{len(self.properties)} properties)")

    def close(self) -> None:
        """Forget the simulated install (done when the session is collected, too)."""
        if self.handle:
            self._engine.close_install(self.handle)
            self.handle = 0

    def __enter__(self) -> SimulatedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass

    # what the action did -------------------------------------------------------------

    @property
    def execute(self) -> str:
        """immediate, deferred, rollback or commit."""
        return self._install.execute

    @property
    def properties(self) -> dict[str, str]:
        """The current property values (a property set to "" is removed, as by the engine)."""
        return self._install.properties

    @property
    def log_lines(self) -> list[str]:
        """Every line sent to the log (INSTALLMESSAGE_INFO), as the log would show it:
        ``msica[Action] text`` for session.log, print, logging and tracebacks."""
        return self._install.log_lines

    @property
    def property_writes(self) -> list[tuple[str, str]]:
        """``(name, value)`` for each property the action set, in order ("" removes)."""
        return self._install.property_writes

    @property
    def progress(self) -> RecordedProgress:
        """The progress records sent, ``[(3, 100, 0), (2, 10, 0)]`` (field 1 the kind:
        1 ticks per ACTION_DATA, 2 move, 3 add to the total), which is also the real
        :class:`~msica.session.Progress` the action's code calls."""
        return RecordedProgress(self, self._install.progress)

    @property
    def messages(self) -> list[tuple[InstallMessage, str]]:
        """Messages other than log lines and progress: ``(kind, formatted text)``."""
        return self._install.messages

    @property
    def modes(self) -> set[int]:
        """Run modes that are on (RunMode values); set_mode changes REBOOT_AT_END/REBOOT_NOW."""
        return self._install.modes

    def feature_state(self, name: str) -> tuple[InstallState, InstallState]:
        """``(installed, requested)`` of a feature given in ``features=``."""
        installed, requested = self._install.features[name]
        return InstallState(installed), InstallState(requested)

    def component_state(self, name: str) -> tuple[InstallState, InstallState]:
        """``(installed, requested)`` of a component given in ``components=``."""
        installed, requested = self._install.components[name]
        return InstallState(installed), InstallState(requested)

    def cancel(self, after: int = 0) -> None:
        """Answer Cancel (IDCANCEL), as a user pressing Cancel would, to every message
        but log lines, after ``after`` more of them: the action's next progress
        message raises InstallUserExitError, and run_action returns 1602."""
        remaining = [after]

        def answer(kind: InstallMessage, fields: tuple[str | int | None, ...]) -> int:
            if kind == InstallMessage.INFO:
                return 0
            if remaining[0] > 0:
                remaining[0] -= 1
                return 0
            return int(DialogResult.CANCEL)

        self._install.answer = answer

    # run_action's adjustments ---------------------------------------------------------

    def _adopt(self, action: Action) -> None:
        """Take what ``action`` declares: its name, how it runs, its data, hide_target."""
        if not self.action:
            self.action = action.name
        if action.execute != self.execute:
            if self._execute_given:
                raise ValueError(
                    f"action {action.name} is declared execute={action.execute!r}, but the "
                    f"session was made with execute={self.execute!r}: make the session with "
                    f"execute={action.execute!r}, or leave execute out to take the action's"
                )
            self._install.execute = action.execute
            self._in_script = None
            self._secrets = None
        if action.uses and not self._data_given:
            # What the data setter msica wxs adds would have computed, before the script ran.
            values = {name: self._install.properties.get(name, "") for name in action.uses}
            encoded = customactiondata.encode(values)
            if encoded:
                self._install.properties["CustomActionData"] = encoded
            self._data_given = True
        if action.hide_target and not self._hide_data:
            self._hide_data = True
            self._secrets = None


class RecordedProgress(Progress, list[tuple[int, ...]]):
    """``session.progress`` of a simulated session: the real :class:`~msica.session.Progress`
    (add_ticks, report, ticks_per_action_data), and the list of records sent so far."""

    def __init__(self, session: Session, records: list[tuple[int, ...]]) -> None:
        Progress.__init__(self, session)
        list.__init__(self, records)
        self._records = records

    def _send(self, kind: int, ticks: int, flag: int) -> None:
        super()._send(kind, ticks, flag)
        self[:] = self._records


ActionLike = Union[str, ActionFunction]


def _resolve(target: ActionLike, session: Session) -> tuple[Action, ActionFunction]:
    if isinstance(target, str):
        found = registered(target)
        if found is None:
            raise LookupError(
                f"no action named {target!r} is registered: import the module that defines it "
                "(with @custom_action) first, or pass the function itself"
            )
        return found
    declared = getattr(target, "msica_action", None)
    if isinstance(declared, Action):
        return declared, target
    name = session.action or getattr(target, "__name__", "action")
    return Action(name=name, function_name=getattr(target, "__name__", name)), target


def run_action(action: ActionLike, session: Session) -> int:
    """Run ``action`` (an action's name, or its function) with ``session`` as the host
    in the DLL would, and return the code the engine would get.

    ``None`` or ActionResult.SUCCESS is 0, another ActionResult its value,
    anything else 1603 with a log line; an exception is 1603 with its
    traceback in the log; a cancel (InstallUserExitError) 1602. A
    :class:`SimulatedSession` takes the action's declared ``execute`` when it
    was made without one (a conflict raises ValueError), its name when it has
    none, ``hide_target``, and, for an action with ``uses=`` and no
    ``custom_action_data``, the CustomActionData its data setter would compute
    from the session's properties.
    """
    from msica import _host

    declared, function = _resolve(action, session)
    if isinstance(session, SimulatedSession):
        session._adopt(declared)
    return _host.run(declared, function, session)
