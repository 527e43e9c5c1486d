"""Enumerations of the Windows Installer API used inside custom actions."""

from __future__ import annotations

import enum


class ActionResult(enum.IntEnum):
    """What a custom action returns to the engine.

    Return these (or None, meaning SUCCESS) from a ``@custom_action`` function.
    """

    SUCCESS = 0
    """ERROR_SUCCESS: go on with the sequence."""
    SKIP_REMAINING = 259
    """ERROR_NO_MORE_ITEMS: skip the rest of the sequence, the install succeeds."""
    USER_EXIT = 1602
    """ERROR_INSTALL_USEREXIT: the user cancelled; the install rolls back."""
    FAILURE = 1603
    """ERROR_INSTALL_FAILURE: fatal error; the install rolls back."""
    NOT_EXECUTED = 1626
    """ERROR_FUNCTION_NOT_CALLED: the action did not run."""


class InstallMessage(enum.IntEnum):
    """Message kinds for MsiProcessMessage (the high byte of its eMessageType)."""

    FATAL_EXIT = 0x00000000
    ERROR = 0x01000000
    WARNING = 0x02000000
    USER = 0x03000000
    INFO = 0x04000000
    FILES_IN_USE = 0x05000000
    RESOLVE_SOURCE = 0x06000000
    OUT_OF_DISK_SPACE = 0x07000000
    ACTION_START = 0x08000000
    ACTION_DATA = 0x09000000
    PROGRESS = 0x0A000000
    COMMON_DATA = 0x0B000000


class RunMode(enum.IntEnum):
    """Run modes for MsiGetMode / MsiSetMode (MSIRUNMODE)."""

    ADMIN = 0
    ADVERTISE = 1
    MAINTENANCE = 2
    ROLLBACK_ENABLED = 3
    LOG_ENABLED = 4
    OPERATIONS = 5
    REBOOT_AT_END = 6
    REBOOT_NOW = 7
    CABINET = 8
    SOURCE_SHORT_NAMES = 9
    TARGET_SHORT_NAMES = 10
    WINDOWS9X = 12
    ZAW_ENABLED = 13
    SCHEDULED = 16
    """A deferred action is running (in the installation script)."""
    ROLLBACK = 17
    """A rollback action is running."""
    COMMIT = 18
    """A commit action is running."""


class Condition(enum.IntEnum):
    """What MsiEvaluateCondition answers (MSICONDITION)."""

    FALSE = 0
    TRUE = 1
    NONE = 2
    ERROR = 3


class InstallState(enum.IntEnum):
    """Installed and requested states of features and components (INSTALLSTATE)."""

    UNKNOWN = -1
    """No action requested (as a request), or not known (as an installed state)."""
    BROKEN = 0
    ADVERTISED = 1
    ABSENT = 2
    LOCAL = 3
    SOURCE = 4
    DEFAULT = 5


class DialogResult(enum.IntEnum):
    """What MsiProcessMessage answers (IDOK and friends); 0 means the message was not handled."""

    NONE = 0
    OK = 1
    CANCEL = 2
    ABORT = 3
    RETRY = 4
    IGNORE = 5
    YES = 6
    NO = 7


class ViewModify(enum.IntEnum):
    """What MsiViewModify does with a record (MSIMODIFY)."""

    SEEK = -1
    REFRESH = 0
    INSERT = 1
    UPDATE = 2
    ASSIGN = 3
    REPLACE = 4
    MERGE = 5
    DELETE = 6
    INSERT_TEMPORARY = 7
    VALIDATE = 8
    VALIDATE_NEW = 9
    VALIDATE_FIELD = 10
    VALIDATE_DELETE = 11
