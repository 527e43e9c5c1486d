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

EXECUTE_MODES = ("immediate", "deferred", "rollback", "commit")

DATA_SETTER_PREFIX = "MsicaData_"
"""Name prefix of the immediate actions msica adds to fill a deferred action's data."""
SLOT_NAME_LENGTH = 64
"""The longest export name a shim slot holds; keep in step with CMakeLists.txt
MSICA_SLOT_NAME_LENGTH (msica.build.exports renames slots within it)."""

# CustomAction.Type bits (msidbCustomActionType*), see "Custom Action Types".
TYPE_DLL_BINARY = 0x0001
TYPE_CONTINUE = 0x0040
TYPE_ASYNC = 0x0080
TYPE_IN_SCRIPT = 0x0400
TYPE_ROLLBACK = 0x0100
TYPE_COMMIT = 0x0200
TYPE_NO_IMPERSONATE = 0x0800
TYPE_HIDE_TARGET = 0x2000



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

    A plain class with slots rather than a dataclass: this module is imported by
    every action's cold start, and ``dataclasses`` brings ``inspect``, ``ast``
    and ``dis`` with it.
    """

    OPTIONS = (
        "name", "execute", "impersonate", "check_return", "hide_target", "asynchronous",
        "after", "before", "condition", "uses",
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
        after: str | None = None,
        before: str | None = None,
        condition: str | None = None,
        uses: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.function_name = function_name
        self.execute = execute
        self.impersonate = impersonate
        self.check_return = check_return
        self.hide_target = hide_target
        self.asynchronous = asynchronous
        self.after = after
        self.before = before
        self.condition = condition
        self.uses = tuple(uses)
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
        if self.execute not in EXECUTE_MODES:
            raise ValueError(
                f"action {self.name}: execute={self.execute!r} is not one of "
                f"{', '.join(EXECUTE_MODES)}"
            )
        if self.after is not None and self.before is not None:
            raise ValueError(f"action {self.name}: give after= or before=, not both")
        if not self.impersonate and self.execute == "immediate":
            raise ValueError(
                f"action {self.name}: impersonate=False needs execute='deferred', "
                "'rollback' or 'commit' (immediate actions always run as the user)"
            )
        if self.asynchronous and self.execute in ("rollback", "commit"):
            raise ValueError(
                f"action {self.name}: rollback and commit actions cannot run asynchronously"
            )
        if self.uses and self.execute == "immediate":
            raise ValueError(
                f"action {self.name}: uses= passes properties to a deferred, rollback or "
                "commit action; an immediate action reads them itself"
            )
        for used in self.uses:
            if not _is_action_name(used):
                raise ValueError(f"action {self.name}: uses {used!r}, not a property name")
        if self.uses and len(self.data_setter) > SLOT_NAME_LENGTH:
            raise ValueError(
                f"action {self.name}: its data setter {self.data_setter} is longer than "
                f"{SLOT_NAME_LENGTH} characters; give the action a shorter name="
            )
        for anchor in (self.after, self.before):
            if anchor is not None and not _is_action_name(anchor):
                raise ValueError(f"action {self.name}: {anchor!r} is not an action name")

    @property
    def data_setter(self) -> str:
        """The immediate action that fills this action's CustomActionData from ``uses``."""
        return DATA_SETTER_PREFIX + self.name

    @property
    def type_number(self) -> int:
        """The CustomAction table's Type for this action (a type 1 DLL from the Binary table)."""
        number = TYPE_DLL_BINARY
        if self.execute != "immediate":
            number |= TYPE_IN_SCRIPT
        if self.execute == "rollback":
            number |= TYPE_ROLLBACK
        elif self.execute == "commit":
            number |= TYPE_COMMIT
        if not self.impersonate:
            number |= TYPE_NO_IMPERSONATE
        if not self.check_return:
            number |= TYPE_CONTINUE
        if self.asynchronous:
            number |= TYPE_ASYNC
        if self.hide_target:
            number |= TYPE_HIDE_TARGET
        return number


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
    after: str | None = None,
    before: str | None = None,
    condition: str | None = None,
    uses: Sequence[str] = (),
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
    after: str | None = None,
    before: str | None = None,
    condition: str | None = None,
    uses: Sequence[str] = (),
) -> F | Callable[[F], F]:
    """Declare ``function(session)`` a custom action.

    ``name`` is the action's name in the CustomAction table and the DLL
    export the engine calls (default: the function's name). ``execute``,
    ``uses`` lists the properties a deferred, rollback or commit action needs:
    ``msica wxs`` adds an immediate action (``MsicaData_<name>``, in the same
    DLL) sequenced before it that encodes their values into its
    CustomActionData, read back as ``session.custom_action_data``.
    ``impersonate``, ``check_return``, ``hide_target`` and ``asynchronous``
    (the engine goes on while the action runs, and waits for it at the end of
    the sequence, or not at all with ``check_return=False``) set the action's
    Type; ``after``/``before`` and ``condition`` place it in the
    InstallExecuteSequence. The options must be literals: ``msica build``
    reads them from the source without running it.
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
            after=after,
            before=before,
            condition=condition,
            uses=uses,
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
