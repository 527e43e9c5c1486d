"""The installer session a custom action is called with.

``Session`` wraps the MSIHANDLE the engine passes to the action: properties
read and written as a mapping (MsiGetPropertyW / MsiSetPropertyW) and lines
written into the installer's log (MsiProcessMessage with INSTALLMESSAGE_INFO).
"""

from __future__ import annotations

from typing import Any, overload

from msica import _native, customactiondata
from msica.database import Database
from msica.enums import Condition, DialogResult, InstallMessage, InstallState, RunMode
from msica.errors import (
    ConditionError,
    DeferredPropertyError,
    InstallUserExitError,
    error_for,
)

ERROR_DISK_FULL = 112
ERROR_FUNCTION_FAILED = 1627

_INSTALL_STATES = frozenset(int(state) for state in InstallState)
_DIALOG_RESULTS = frozenset(int(result) for result in DialogResult)

DEFERRED_PROPERTIES = frozenset({"CustomActionData", "ProductCode", "UserSID"})
"""The properties the engine answers in deferred, rollback and commit actions."""



class Session:
    """An installer session: ``session["NAME"]`` reads and writes properties."""

    def __init__(self, handle: int, *, action: str = "", hide_data: bool = False) -> None:
        self.handle = handle
        """The MSIHANDLE of the install, as the engine passed it."""
        self.action = action
        """The name of the custom action being run."""
        self._in_script: bool | None = None
        self._hide_data = hide_data
        self._secrets: set[str] | None = None
        self._hidden_names: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Session(handle={self.handle}, action={self.action!r})"

    # properties ---------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        """The value of property ``name`` (MsiGetPropertyW); "" when it is not set.

        In a deferred, rollback or commit action only CustomActionData,
        ProductCode and UserSID can be read: anything else raises
        :class:`~msica.errors.DeferredPropertyError` (Windows would answer "").
        """
        if name not in DEFERRED_PROPERTIES and self.in_script:
            raise DeferredPropertyError(
                f"{self.action or 'this action'} runs deferred, where the engine gives only "
                f"CustomActionData, ProductCode and UserSID, not {name}: set the property "
                f"named like the action ({self.action or 'the action'}) to the value in an "
                "immediate step sequenced before it (a type 51 action), and read "
                "session['CustomActionData'], or read the value in an immediate action"
            )
        return self._read(name)

    def _read(self, name: str) -> str:
        _, lib = _native.msi()
        return _native.get_string(
            lambda buffer, size: lib.MsiGetPropertyW(self.handle, name, buffer, size),
            "MsiGetPropertyW", self.handle,
        )

    def __setitem__(self, name: str, value: str | None) -> None:
        """Set property ``name`` (MsiSetPropertyW); None or "" removes it."""
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"property {name} takes a str, not {type(value).__name__}: "
                f"write str(value) to store {value!r}"
            )
        _, lib = _native.msi()
        _native.check(lib.MsiSetPropertyW(self.handle, name, value or ""), "MsiSetPropertyW",
                      self.handle)
        if value and name in self._secret_names():
            self._secret_values().add(value)

    def __delitem__(self, name: str) -> None:
        """Remove property ``name``: the engine treats an empty value as not set."""
        self[name] = None

    def __contains__(self, name: object) -> bool:
        """True when property ``name`` has a non-empty value."""
        return isinstance(name, str) and self[name] != ""

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of property ``name``, or ``default`` when it is empty or not set."""
        value = self[name]
        return value if value != "" else default

    @property
    def custom_action_data(self) -> dict[str, str]:
        """The CustomActionData property as a mapping (see :mod:`msica.customactiondata`).

        The raw text stays readable as ``session["CustomActionData"]``.
        """
        return customactiondata.decode(self["CustomActionData"])

    @property
    def product_code(self) -> str:
        """The ProductCode property (readable in deferred actions too)."""
        return self["ProductCode"]

    @property
    def user_sid(self) -> str:
        """The UserSID property (readable in deferred actions too)."""
        return self["UserSID"]

    # the running install ------------------------------------------------------------

    def mode(self, mode: RunMode) -> bool:
        """Whether the install is in run mode ``mode`` (MsiGetMode)."""
        _, lib = _native.msi()
        return bool(lib.MsiGetMode(self.handle, int(mode)))

    def set_mode(self, mode: RunMode, state: bool) -> None:
        """Set a run mode the engine lets actions set, e.g. REBOOT_AT_END (MsiSetMode)."""
        _, lib = _native.msi()
        _native.check(lib.MsiSetMode(self.handle, int(mode), int(state)), "MsiSetMode", self.handle)

    @property
    def in_script(self) -> bool:
        """True in a deferred, rollback or commit action (MsiGetMode SCHEDULED/ROLLBACK/COMMIT)."""
        if self._in_script is None:
            self._in_script = any(
                self.mode(mode) for mode in (RunMode.SCHEDULED, RunMode.ROLLBACK, RunMode.COMMIT)
            )
        return self._in_script

    @property
    def language(self) -> int:
        """The language of the install, a LANGID such as 1033 (MsiGetLanguage)."""
        _, lib = _native.msi()
        return int(lib.MsiGetLanguage(self.handle))

    def format(self, text: str) -> str:
        """``text`` with [Property], [#File], [$Component], [%ENV] and [\\x] resolved
        (MsiFormatRecordW on a record whose template is ``text``)."""
        _, lib = _native.msi()
        record = lib.MsiCreateRecord(0)
        try:
            _native.check(lib.MsiRecordSetStringW(record, 0, text), "MsiRecordSetStringW",
                   self.handle)
            return _native.get_string(
                lambda buffer, size: lib.MsiFormatRecordW(self.handle, record, buffer, size),
                "MsiFormatRecordW", self.handle,
            )
        finally:
            lib.MsiCloseHandle(record)

    def evaluate_condition(self, condition: str) -> bool:
        """Whether ``condition`` (conditional statement syntax) holds (MsiEvaluateConditionW).

        An empty condition holds; a malformed one raises
        :class:`~msica.errors.ConditionError`.
        """
        _, lib = _native.msi()
        answer = Condition(lib.MsiEvaluateConditionW(self.handle, condition))
        if answer == Condition.ERROR:
            raise ConditionError(f"the condition {condition!r} is not valid MSI syntax")
        return answer != Condition.FALSE

    def do_action(self, action: str) -> None:
        """Run a standard or custom action now (MsiDoActionW); its failure raises."""
        _, lib = _native.msi()
        _native.check(lib.MsiDoActionW(self.handle, action), "MsiDoActionW", self.handle)

    def set_install_level(self, level: int) -> None:
        """Set the install level that selects features (MsiSetInstallLevel)."""
        _, lib = _native.msi()
        _native.check(lib.MsiSetInstallLevel(self.handle, level), "MsiSetInstallLevel", self.handle)

    def target_path(self, directory: str) -> str:
        """Where the Directory table's ``directory`` will be installed (MsiGetTargetPathW)."""
        _, lib = _native.msi()
        return _native.get_string(
            lambda buffer, size: lib.MsiGetTargetPathW(self.handle, directory, buffer, size),
            "MsiGetTargetPathW", self.handle,
        )

    def set_target_path(self, directory: str, path: str) -> None:
        """Install ``directory`` (and the folders under it) at ``path`` (MsiSetTargetPathW)."""
        _, lib = _native.msi()
        _native.check(lib.MsiSetTargetPathW(self.handle, directory, path), "MsiSetTargetPathW",
               self.handle)

    def source_path(self, directory: str) -> str:
        """Where the files of ``directory`` come from (MsiGetSourcePathW)."""
        _, lib = _native.msi()
        return _native.get_string(
            lambda buffer, size: lib.MsiGetSourcePathW(self.handle, directory, buffer, size),
            "MsiGetSourcePathW", self.handle,
        )

    def verify_disk_space(self) -> bool:
        """Whether the install fits on its disks (MsiVerifyDiskSpace): False when it does not.

        Wine 8's msi.dll exports MsiVerifyDiskSpace as a stub that aborts the
        custom-action server (measured), so under Wine this raises
        NotImplementedError instead of calling it.
        """
        if _native.under_wine():
            raise NotImplementedError(
                "MsiVerifyDiskSpace is not implemented by Wine's msi.dll (calling it ends the "
                "custom-action server); check the free space yourself, e.g. shutil.disk_usage"
            )
        _, lib = _native.msi()
        code = lib.MsiVerifyDiskSpace(self.handle)
        if code == ERROR_DISK_FULL:
            return False
        _native.check(code, "MsiVerifyDiskSpace", self.handle)
        return True

    @property
    def progress(self) -> Progress:
        """The installer's progress bar: ``add_ticks`` from an immediate action,
        ``report`` from a deferred one (MsiProcessMessage, INSTALLMESSAGE_PROGRESS)."""
        return Progress(self)

    @property
    def database(self) -> Database:
        """The database of this install (MsiGetActiveDatabase); close it, or use ``with``."""
        return Database.of(self)

    @property
    def features(self) -> _States:
        """``features["Name"]``: a feature's installed and requested state
        (MsiGetFeatureStateW), and ``.request(state)`` (MsiSetFeatureStateW)."""
        return _States(self, "Feature")

    @property
    def components(self) -> _States:
        """``components["Name"]``: a component's installed and requested state
        (MsiGetComponentStateW), and ``.request(state)`` (MsiSetComponentStateW)."""
        return _States(self, "Component")

    # messages -------------------------------------------------------------------

    def message(self, kind: InstallMessage, template: str, *fields: str | int,
                flags: int = 0) -> DialogResult:
        """Send a message to the engine and its UI, and return its answer (MsiProcessMessage).

        ``template`` is the record's field 0 ([1], [2]... refer to ``fields``);
        ``flags`` are ORed into the message type (MB_* buttons and icons). When
        the user cancels (IDCANCEL for a message that offers Cancel), this
        raises :class:`~msica.errors.InstallUserExitError`, and the action
        returns 1602 unless it catches it.
        """
        _, lib = _native.msi()
        record = lib.MsiCreateRecord(len(fields))
        try:
            lib.MsiRecordSetStringW(record, 0, template)
            for index, value in enumerate(fields, start=1):
                if isinstance(value, int):
                    lib.MsiRecordSetInteger(record, index, value)
                else:
                    lib.MsiRecordSetStringW(record, index, value)
            answer = int(lib.MsiProcessMessage(self.handle, int(kind) | flags, record))
        finally:
            lib.MsiCloseHandle(record)
        if answer == -1:
            raise error_for(ERROR_FUNCTION_FAILED, "MsiProcessMessage",
                            _native.last_error_text(self.handle))
        if answer == DialogResult.CANCEL:
            raise InstallUserExitError(1602, "MsiProcessMessage", "the user cancelled")
        return DialogResult(answer) if answer in _DIALOG_RESULTS else DialogResult.NONE


    def log(self, message: Any) -> None:
        """Write one line into the installer's log (MsiProcessMessage, INFO).

        The text is passed in a record field, never as the template, so square
        brackets in it reach the log as they are. Lines start with
        ``msica[<action>]`` so they can be found among the engine's.
        """
        prefix = f"msica[{self.action}] " if self.action else "msica: "
        self._info(prefix + str(message))

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``******``: the values of the
        properties listed in MsiHiddenProperties and, for an action declared with
        ``hide_target=True``, its CustomActionData: the whole text and, when it is
        ``key=value`` data, each value of four characters or more (shorter ones,
        such as a "1" flag, would mask every such character of the log). Everything
        msica logs goes through this."""
        for secret in sorted(self._secret_values(), key=len, reverse=True):
            text = text.replace(secret, "******")
        return text

    def _secret_names(self) -> frozenset[str]:
        self._secret_values()
        return self._hidden_names

    def _secret_values(self) -> set[str]:
        if self._secrets is None:
            self._secrets = set()
            if not self.in_script:  # deferred actions cannot read MsiHiddenProperties
                listed = self._read("MsiHiddenProperties")
                self._hidden_names = frozenset(n.strip() for n in listed.split(";") if n.strip())
                self._secrets.update(self._read(name) for name in self._hidden_names)
            if self._hide_data:
                data = self._read("CustomActionData")
                self._secrets.add(data)
                try:
                    values = customactiondata.decode(data).values()
                except ValueError:  # not key=value data: the whole text is the secret
                    values = {}.values()
                self._secrets.update(value for value in values if len(value) >= 4)
            self._secrets.discard("")
        return self._secrets

    def _info(self, text: str) -> int:
        text = self.redact(text)
        if _native.under_wine():
            text = _escape_brackets(text)
        return int(self.message(InstallMessage.INFO, "[1]", text))


def _escape_brackets(text: str) -> str:
    """Wine formats record fields again when it logs them ("[x]" becomes property x);
    Windows does not. The escapes [\\[] and [\\]] survive that second pass as brackets."""
    return "".join("[\\" + c + "]" if c in "[]" else c for c in text)


class Progress:
    """Progress messages (INSTALLMESSAGE_PROGRESS; field 1 says which kind)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add_ticks(self, ticks: int) -> None:
        """Add ``ticks`` to the total the bar will run through; call it in the immediate
        phase (before InstallFinalize runs the script) for the work a deferred action reports."""
        self._send(3, ticks, 0)

    def report(self, ticks: int) -> None:
        """Move the bar forward by ``ticks`` (from a deferred action)."""
        self._send(2, ticks, 0)

    def ticks_per_action_data(self, ticks: int) -> None:
        """Move the bar by ``ticks`` at each ACTION_DATA message this action sends."""
        self._send(1, ticks, 1)

    def _send(self, kind: int, ticks: int, flag: int) -> None:
        self._session.message(InstallMessage.PROGRESS, "", kind, ticks, flag)


class ItemState:
    """The state of one feature or component, as the engine holds it now."""

    def __init__(self, states: _States, name: str, installed: InstallState,
                 requested: InstallState) -> None:
        self._states = states
        self.name = name
        self.installed = installed
        """Its state before this install (INSTALLSTATE)."""
        self.requested = requested
        """The state this install will leave it in; UNKNOWN when no change is requested."""

    def __repr__(self) -> str:
        return (f"<{self._states.kind} {self.name}: installed={self.installed.name} "
                f"requested={self.requested.name}>")

    def request(self, state: InstallState) -> None:
        """Ask for ``state`` at the end of this install (MsiSet{Feature,Component}StateW)."""
        self._states.request(self.name, state)


class _States:
    """``session.features`` and ``session.components``: lookups by name."""

    def __init__(self, session: Session, kind: str) -> None:
        self._session = session
        self.kind = kind

    def __getitem__(self, name: str) -> ItemState:
        ffi, lib = _native.msi()
        installed = ffi.new("int *")
        action = ffi.new("int *")
        get = lib.MsiGetFeatureStateW if self.kind == "Feature" else lib.MsiGetComponentStateW
        function = f"MsiGet{self.kind}StateW"
        _native.check(get(self._session.handle, name, installed, action), function,
               self._session.handle)
        return ItemState(self, name, _state(installed[0]), _state(action[0]))

    def request(self, name: str, state: InstallState) -> None:
        _, lib = _native.msi()
        set_ = lib.MsiSetFeatureStateW if self.kind == "Feature" else lib.MsiSetComponentStateW
        _native.check(set_(self._session.handle, name, int(state)), f"MsiSet{self.kind}StateW",
               self._session.handle)


def _state(value: int) -> InstallState:
    return InstallState(value) if value in _INSTALL_STATES else InstallState.UNKNOWN
