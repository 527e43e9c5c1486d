"""Exceptions: one table from MSI return codes to classes, and the toolchain's errors.

Inside a custom action every MSI function's return code goes through
:func:`check`, which raises the class :data:`_BY_CODE` names for it, carrying
the code and the text of the engine's last error record (MsiGetLastErrorRecord),
in the manner of DTF's ``InstallerException.ExceptionFromReturnCode``.

Outside an action (building, authoring, running), errors derive from
:class:`MsicaError`; each carries an ``exit_code`` the CLI uses and a
message that says what to do next. The library never prints.
"""

from __future__ import annotations

from typing import ClassVar


class MsicaError(Exception):
    """Base of every error msica raises; ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[int] = 1


class ConfigError(MsicaError):
    """``[tool.msica]`` or a command line asks for something that cannot be."""

    exit_code = 2


class BuildError(MsicaError):
    """A DLL could not be built from the project."""

    exit_code = 3


class ExportNameError(BuildError):
    """An action name cannot be an export of the shim DLL."""


class RuntimeFetchError(BuildError):
    """The Windows CPython runtime or a dependency could not be obtained."""

    exit_code = 4


class RuntimeSignatureError(RuntimeFetchError):
    """A runtime file's Authenticode signature is missing, foreign or broken."""


class AuthorError(MsicaError):
    """An installer source or database could not be written."""

    exit_code = 5


class EngineError(MsicaError):
    """The Windows Installer engine (msiexec, or wine64 msiexec) could not be run."""

    exit_code = 6


class MsiFileError(MsicaError):
    """A file is not a readable .msi database (wrong kind, truncated, damaged, incomplete)."""

    exit_code = 7


class InstallerError(Exception):
    """An MSI function failed inside a custom action.

    ``code`` is the Win32 error code the function returned; ``text`` is the
    formatted last error record the engine kept, or empty.
    """

    def __init__(self, code: int, function: str, text: str = "") -> None:
        self.code = code
        self.function = function
        self.text = text
        detail = f": {text}" if text else ""
        super().__init__(f"{function} failed with error {code}{detail}")


class InvalidHandleError(InstallerError):
    """ERROR_INVALID_HANDLE (6): the handle was closed or never valid."""


class InvalidParameterError(InstallerError):
    """ERROR_INVALID_PARAMETER (87)."""


class BadQuerySyntaxError(InstallerError):
    """ERROR_BAD_QUERY_SYNTAX (1615): the SQL is not MSI SQL."""


class FunctionFailedError(InstallerError):
    """ERROR_FUNCTION_FAILED (1627)."""


class InvalidHandleStateError(InstallerError):
    """ERROR_INVALID_HANDLE_STATE (1609)."""


class DirectoryNotFoundError(InstallerError):
    """ERROR_DIRECTORY (267): no such directory in the Directory table."""


class ConditionError(ValueError):
    """MsiEvaluateCondition found the condition malformed (MSICONDITION_ERROR)."""


class UnknownPropertyError(InstallerError):
    """ERROR_UNKNOWN_PROPERTY (1608)."""


class DeferredPropertyError(LookupError):
    """A deferred, rollback or commit action read a property the engine does not give it.

    Windows answers such reads with an empty string (Wine with the real value);
    msica refuses them on both, saying how to pass the value.
    """


class InstallUserExitError(InstallerError):
    """ERROR_INSTALL_USEREXIT (1602): the user cancelled."""


_BY_CODE: dict[int, type[InstallerError]] = {
    6: InvalidHandleError,
    87: InvalidParameterError,
    267: DirectoryNotFoundError,
    1602: InstallUserExitError,
    1608: UnknownPropertyError,
    1609: InvalidHandleStateError,
    1615: BadQuerySyntaxError,
    1627: FunctionFailedError,
}


def error_for(code: int, function: str, text: str = "") -> InstallerError:
    """The exception for MSI return ``code`` from ``function``."""
    return _BY_CODE.get(code, InstallerError)(code, function, text)
