"""The ``@custom_action`` decorator, the registry of actions, and their Type numbers.

A decorated function stays an ordinary function (call it in unit tests); the
decorator records an :class:`Action` that ``msica build`` finds by reading the
source (without importing it) and that the host looks up when the engine
calls the DLL export of the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, TypeVar, Union, overload

from msica.enums import ActionResult

if TYPE_CHECKING:
    from msica.session import Session

ActionFunction = Callable[["Session"], Union[ActionResult, int, None]]
F = TypeVar("F", bound=ActionFunction)

EXECUTE_MODES = (
    "immediate", "deferred", "rollback", "commit",
    "first_sequence", "once_per_process", "client_repeat",
)
"""Values of ``execute=``: the first four say when the action runs (now, or queued in the
install script); the last three are immediate actions with a scheduling option."""
IN_SCRIPT_MODES = ("deferred", "rollback", "commit")
"""The ``execute=`` values that queue the action in the install script."""

DATA_SETTER_PREFIX = "MsicaData_"
"""Name prefix of the immediate actions msica adds to fill a deferred action's data."""
SLOT_NAME_LENGTH = 64
"""The longest export name a shim slot holds; keep in step with CMakeLists.txt
MSICA_SLOT_NAME_LENGTH (msica.build.exports renames slots within it)."""

# CustomAction.Type bits (msidbCustomActionType*), see "Custom Action Types" and the
# "Custom Action ... Options" pages of the Windows Installer documentation.
TYPE_DLL_BINARY = 0x0001
TYPE_TEXT_DATA = 0x0033
"""Type 51: set the property named in Source to the formatted text in Target."""
TYPE_CONTINUE = 0x0040
TYPE_ASYNC = 0x0080
TYPE_FIRST_SEQUENCE = 0x0100
TYPE_ONCE_PER_PROCESS = 0x0200
TYPE_CLIENT_REPEAT = 0x0300
TYPE_IN_SCRIPT = 0x0400
TYPE_ROLLBACK = 0x0100
TYPE_COMMIT = 0x0200
TYPE_NO_IMPERSONATE = 0x0800
TYPE_HIDE_TARGET = 0x2000
TYPE_TS_AWARE = 0x4000
# CustomAction.ExtendedType bits (Windows Installer 4.5 and later).
EXTENDED_PATCH_UNINSTALL = 0x8000

_MODE_BITS = {
    "immediate": 0,
    "deferred": TYPE_IN_SCRIPT,
    "rollback": TYPE_IN_SCRIPT | TYPE_ROLLBACK,
    "commit": TYPE_IN_SCRIPT | TYPE_COMMIT,
    "first_sequence": TYPE_FIRST_SEQUENCE,
    "once_per_process": TYPE_ONCE_PER_PROCESS,
    "client_repeat": TYPE_CLIENT_REPEAT,
}


def _is_action_name(text: str) -> bool:
    """An MSI Identifier: ASCII letters, digits, '_' and '.', not starting with a digit."""
    return (
        text != ""
        and text.isascii()
        and not text[0].isdigit()
        and text.replace("_", "a").replace(".", "a").isalnum()
    )


class Action:
    """One custom action: the function, the name the engine knows it by, and how it runs.

    Its ``type_number`` is the CustomAction table's Type, the sum of the option bits
    (Microsoft's "Custom Action In-Script Execution", "Return Processing",
    "Execution Scheduling", "Hidden Target" and "Patch Uninstall" Options pages);
    ``extended_type`` is the ExtendedType column. Every action is a DLL stored in
    the Binary table (type 1, +1). Worked examples:

    ====== ======================================= ==============================
    Type   options                                 bits
    ====== ======================================= ==============================
    1      (defaults: immediate, check return)     1
    65     ``check_return=False``                  1 + 0x40 (Continue)
    129    ``asynchronous=True``                   1 + 0x80 (Async, wait at end)
    257    ``execute="first_sequence"``            1 + 0x100
    513    ``execute="once_per_process"``          1 + 0x200
    769    ``execute="client_repeat"``             1 + 0x300
    1025   ``execute="deferred"``                  1 + 0x400 (InScript)
    3073   deferred, ``impersonate=False``         1 + 0x400 + 0x800 (NoImpersonate)
    3329   rollback, ``impersonate=False``         1 + 0x400 + 0x100 + 0x800
    3585   commit, ``impersonate=False``           1 + 0x400 + 0x200 + 0x800
    11265  deferred, no impersonation,             1 + 0x400 + 0x800 + 0x2000
           ``hide_target=True``                    (HideTarget)
    17409  deferred, ``ts_aware=True``             1 + 0x400 + 0x4000 (TSAware)
    ====== ======================================= ==============================

    ``patch_uninstall=True`` leaves Type alone and sets ExtendedType 0x8000
    (32768). Combinations the engine does not accept are refused when the
    action is declared (and when ``msica build`` reads it), with what to change:
    a rollback or commit action is always in-script (``execute="rollback"``
    carries InScript itself, so "rollback without deferred" cannot be written);
    rollback actions cannot be asynchronous; asynchronous actions must have
    their return checked (not waiting at all is for EXE actions only);
    impersonation, ``ts_aware`` and ``uses``/``data`` belong to in-script
    actions; ``ts_aware`` has no effect without impersonation; a patch-uninstall
    action must be conditioned on MSIPATCHREMOVE.

    A plain class with slots rather than a dataclass: this module is imported by
    every action's cold start, and ``dataclasses`` brings ``inspect``, ``ast``
    and ``dis`` with it.
    """

    OPTIONS = (
        "name", "execute", "impersonate", "check_return", "hide_target", "asynchronous",
        "ts_aware", "patch_uninstall", "after", "before", "condition", "uses", "data",
    )
    """The keyword options of ``@custom_action`` (and of ``msica build``'s reading of it)."""

    __slots__ = ("function_name", *OPTIONS)

    def __init__(
        self,
        *,
        name: str,
        function_name: str,
        execute: str = "immediate",
        impersonate: bool = True,
        check_return: bool = True,
        hide_target: bool = False,
        asynchronous: bool = False,
        ts_aware: bool = False,
        patch_uninstall: bool = False,
        after: str | None = None,
        before: str | None = None,
        condition: str | None = None,
        uses: Sequence[str] = (),
        data: str | None = None,
    ) -> None:
        self.name = name
        self.function_name = function_name
        self.execute = execute
        self.impersonate = impersonate
        self.check_return = check_return
        self.hide_target = hide_target
        self.asynchronous = asynchronous
        self.ts_aware = ts_aware
        self.patch_uninstall = patch_uninstall
        self.after = after
        self.before = before
        self.condition = condition
        self.uses = tuple(uses)
        self.data = data
        self._validate()

    def __repr__(self) -> str:
        fields = ", ".join(f"{slot}={getattr(self, slot)!r}" for slot in self.__slots__)
        return f"Action({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, slot) for slot in self.__slots__))

    def _validate(self) -> None:
        where = f"action {self.name}"
        if self.execute not in EXECUTE_MODES:
            raise ValueError(
                f"{where}: execute={self.execute!r} is not one of {', '.join(EXECUTE_MODES)}"
            )
        for option in ("impersonate", "check_return", "hide_target", "asynchronous",
                       "ts_aware", "patch_uninstall"):
            if not isinstance(getattr(self, option), bool):
                raise ValueError(f"{where}: {option}= takes True or False")
        in_script = self.execute in IN_SCRIPT_MODES
        if self.after is not None and self.before is not None:
            raise ValueError(f"{where}: give after= or before=, not both")
        if not self.impersonate and not in_script:
            raise ValueError(
                f"{where}: impersonate=False needs execute='deferred', 'rollback' or "
                "'commit' (actions outside the install script always run as the user)"
            )
        if self.asynchronous and self.execute == "rollback":
            raise ValueError(
                f"{where}: a rollback action cannot run asynchronously (the engine runs "
                "rollback actions synchronously): drop asynchronous=True"
            )
        if self.asynchronous and self.execute == "commit":
            raise ValueError(
                f"{where}: commit actions run from the rollback script, which the engine "
                "runs synchronously: drop asynchronous=True"
            )
        if self.asynchronous and not self.check_return:
            raise ValueError(
                f"{where}: asynchronous=True with check_return=False would let the action "
                "outlive the install, which only EXE actions may do: keep check_return=True "
                "(the engine waits for it at the end of the sequence) or drop asynchronous"
            )
        if self.ts_aware and not in_script:
            raise ValueError(
                f"{where}: ts_aware=True applies to in-script actions only: use "
                "execute='deferred', 'rollback' or 'commit', or drop ts_aware"
            )
        if self.ts_aware and not self.impersonate:
            raise ValueError(
                f"{where}: ts_aware=True has no effect on an action that does not "
                "impersonate: drop ts_aware or impersonate=False"
            )
        if self.patch_uninstall and "MSIPATCHREMOVE" not in (self.condition or "").upper():
            raise ValueError(
                f"{where}: a patch_uninstall action must be conditioned on MSIPATCHREMOVE "
                "(older installers ignore the option and would run it on every install): "
                "add condition=\"MSIPATCHREMOVE\""
            )
        if self.uses and not in_script:
            raise ValueError(
                f"{where}: uses= passes properties to a deferred, rollback or "
                "commit action; an immediate action reads them itself"
            )
        if self.data is not None:
            if not in_script:
                raise ValueError(
                    f"{where}: data= sets the CustomActionData of a deferred, rollback or "
                    "commit action; an immediate action reads properties itself"
                )
            if self.uses:
                raise ValueError(
                    f"{where}: give uses= (msica encodes the values) or data= (the engine "
                    "formats the text), not both"
                )
            if not isinstance(self.data, str) or "<=>" in self.data:
                raise ValueError(
                    f"{where}: data= must be text without '<=>' (the engine uses it to "
                    "split CustomActionData from UserSID and ProductCode)"
                )
        for used in self.uses:
            if not _is_action_name(used):
                raise ValueError(f"{where}: uses {used!r}, not a property name")
        if (self.uses or self.data is not None) and len(self.data_setter) > SLOT_NAME_LENGTH:
            raise ValueError(
                f"{where}: its data setter {self.data_setter} is longer than "
                f"{SLOT_NAME_LENGTH} characters; give the action a shorter name="
            )
        for anchor in (self.after, self.before):
            if anchor is not None and not _is_action_name(anchor):
                raise ValueError(f"{where}: {anchor!r} is not an action name")

    @property
    def data_setter(self) -> str:
        """The immediate action that fills this action's CustomActionData (from ``uses``
        or ``data``); only actions with one of them get it."""
        return DATA_SETTER_PREFIX + self.name

    @property
    def type_number(self) -> int:
        """The CustomAction table's Type for this action (a type 1 DLL from the Binary table)."""
        number = TYPE_DLL_BINARY | _MODE_BITS[self.execute]
        if not self.impersonate:
            number |= TYPE_NO_IMPERSONATE
        if not self.check_return:
            number |= TYPE_CONTINUE
        if self.asynchronous:
            number |= TYPE_ASYNC
        if self.hide_target:
            number |= TYPE_HIDE_TARGET
        if self.ts_aware:
            number |= TYPE_TS_AWARE
        return number

    @property
    def extended_type(self) -> int:
        """The CustomAction table's ExtendedType: 0x8000 for ``patch_uninstall``, else 0."""
        return EXTENDED_PATCH_UNINSTALL if self.patch_uninstall else 0


_registry: dict[str, tuple[Action, ActionFunction]] = {}


@overload
def custom_action(function: F) -> F: ...


@overload
def custom_action(
    *,
    name: str | None = None,
    execute: str = "immediate",
    impersonate: bool = True,
    check_return: bool = True,
    hide_target: bool = False,
    asynchronous: bool = False,
    ts_aware: bool = False,
    patch_uninstall: bool = False,
    after: str | None = None,
    before: str | None = None,
    condition: str | None = None,
    uses: Sequence[str] = (),
    data: str | None = None,
) -> Callable[[F], F]: ...


def custom_action(
    function: F | None = None,
    *,
    name: str | None = None,
    execute: str = "immediate",
    impersonate: bool = True,
    check_return: bool = True,
    hide_target: bool = False,
    asynchronous: bool = False,
    ts_aware: bool = False,
    patch_uninstall: bool = False,
    after: str | None = None,
    before: str | None = None,
    condition: str | None = None,
    uses: Sequence[str] = (),
    data: str | None = None,
) -> F | Callable[[F], F]:
    """Declare ``function(session)`` a custom action.

    ``name`` is the action's name in the CustomAction table and the DLL
    export the engine calls (default: the function's name).

    ``execute``: ``"immediate"`` (default), ``"deferred"``, ``"rollback"`` or
    ``"commit"`` (queued in the install script), or an immediate action that
    runs at most once when both sequences hold it: ``"first_sequence"``,
    ``"once_per_process"`` (skipped in the execute sequence when the UI
    sequence ran, anywhere or in the same process) or ``"client_repeat"`` (run
    only when the execute sequence follows the UI sequence on the client).
    ``impersonate=False`` runs an in-script action as LocalSystem;
    ``ts_aware=True`` makes an impersonated in-script action impersonate on
    Terminal Server per-machine installs too. ``check_return=False`` ignores
    the result; ``asynchronous=True`` lets the engine go on while the action
    runs and wait for it at the end of the sequence. ``hide_target=True`` keeps
    the action's data out of the log. ``patch_uninstall=True`` runs it only when
    a patch is removed (ExtendedType; give ``condition="MSIPATCHREMOVE"``).

    ``uses`` lists the properties a deferred, rollback or commit action needs:
    ``msica wxs`` adds an immediate action (``MsicaData_<name>``, in the same
    DLL) sequenced before it that encodes their values into its
    CustomActionData, read back as ``session.custom_action_data``. ``data`` is
    the alternative without Python: formatted text (``"DIR=[INSTALLDIR]"``)
    that a type 51 action, also sequenced before it, sets as its
    CustomActionData (values go in as they are, see
    :mod:`msica.customactiondata`).

    ``after``/``before`` and ``condition`` place it in the
    InstallExecuteSequence. The options must be literals: ``msica build``
    reads them from the source without running it. See :class:`Action` for the
    Type numbers they give and the combinations refused.
    """

    def register(fn: F) -> F:
        action = Action(
            name=name or fn.__name__,
            function_name=fn.__name__,
            execute=execute,
            impersonate=impersonate,
            check_return=check_return,
            hide_target=hide_target,
            asynchronous=asynchronous,
            ts_aware=ts_aware,
            patch_uninstall=patch_uninstall,
            after=after,
            before=before,
            condition=condition,
            uses=uses,
            data=data,
        )
        _registry[action.name] = (action, fn)
        fn.msica_action = action  # type: ignore[attr-defined]
        return fn

    if function is not None:
        return register(function)
    return register


def registered(name: str) -> tuple[Action, ActionFunction] | None:
    """The action registered under ``name`` by an imported module, if any."""
    return _registry.get(name)
