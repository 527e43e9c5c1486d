"""Read a verbose Windows Installer log (``msiexec /l*v``) into a summary.

Two engines write these logs and both are understood:

* Windows Installer: ``=== Verbose logging started: ... ===``, ``MSI (s) (F0:CC)
  [12:00:01:234]: ...`` lines, ``Action start 12:00:01: MyCA.`` / ``Action ended
  12:00:01: MyCA. Return value 3.``, ``Property(S): NAME = value`` and
  ``Property(C): ...`` dumps, ``CustomAction MyCA returned actual error code 1603``
  and, at the end, ``MainEngineThread is returning 1603`` and ``Installation success
  or error status: 1603.``
* Wine's msi.dll: the same ``Action start``/``Action ended``/``Property(S)`` lines
  without any ``MSI (s)`` lines, written in the ANSI code page. Wine formats
  what it logs, values included: a property holding ``[ProductName]`` is logged
  with the product's name, and a message ``msica[MyCA] x`` logged through a
  ``[1]`` template comes out as ``msica x`` (``[\\[]`` in the text, or the prefix
  in the template, keeps a bracket).

The two engines disagree on ``Return value``. Windows writes the documented
numbers: 0 not executed, 1 success, 2 user cancel, 3 failure, 4 suspend. Wine
writes 1 when the action returned success and 0 for anything else: a failure, a
cancel, or an action that was not called (a missing DLL export, for one). An
action failed on Wine when it ended with 0 and so did the action that ran it (a
failure stops the sequence, so the enclosing ``INSTALL`` ends with 0 too; an
action that merely was not called leaves ``INSTALL`` ending with 1).
:attr:`ActionRun.return_value` is in Windows' terms for both engines: a Wine
failure reads 3 (a cancel too: Wine's log cannot tell them apart), a Wine 0
that stopped nothing reads 0. :attr:`ActionRun.logged_return_value` keeps
the number as written.

Actions nest (``INSTALL`` runs the sequence, ``InstallFinalize`` runs the
script); a line logged while several actions are open belongs to the innermost.
A record the engine wrote as one message but over several lines (a Python
traceback) continues on lines that do not look like the start of a log line;
those lines are joined to the record with ``"\\n"``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

__all__ = ["FAILURE", "ActionRun", "LogSummary", "decode_log", "parse_log", "read_log"]

_TIME = r"\d{1,2}:\d{2}:\d{2}(?:\s*[AaPp]\.?[Mm]\.?)?"
_ACTION_START = re.compile(rf"^Action start {_TIME}: (?P<name>.+?)\.\s*$")
_ACTION_ENDED = re.compile(
    rf"^Action ended {_TIME}: (?P<name>.+?)\. Return value (?P<value>-?\d+)\.?\s*$"
)
_PROPERTY = re.compile(
    r"^Property\((?P<side>[A-Za-z])\): (?P<name>[^\s=]+) =(?: (?P<value>.*))?$", re.DOTALL
)
_CA_ERROR = re.compile(r"CustomAction (?P<name>\S+) returned actual error code (?P<code>-?\d+)")
_ENGINE_RETURN = re.compile(r"MainEngineThread is returning (?P<code>-?\d+)")
_FINAL_STATUS = re.compile(r"Installation success or error status: (?P<code>-?\d+)")
_WINDOWS_MARK = re.compile(r"^(?:MSI \([a-z]\) \(|=== Verbose logging started)")

# Lines that begin a new record; anything else continues the record before it.
_RECORD_START = re.compile(
    "|".join(
        (
            rf"^Action(?: start| ended)? {_TIME}: ",  # both engines
            r"^Property\([A-Za-z]\): ",  # both engines
            r"^MSI \([a-z]\) \(",  # Windows: MSI (s) (F0:CC) [12:00:01:234]: ...
            r"^=== ",  # === (Verbose) logging started/stopped ===
            r"^msica(?:[:\[\s]|$)",  # msica: ... / msica[Action] ...
            r"^\d+: ",  # a record's fields dumped as "1: a 2: b"
            r"^Message type: ",  # Wine
            r"^(?:Info|Error|Warning) \d+\.",  # Windows: Error 1722. ...
            r"^DEBUG: ",  # Windows
            r"^CustomAction \S+ returned actual error code ",  # Windows
            r"^(?:Feature|Component|Folder|File|Key): ",  # action data, Wine
        )
    )
)
_LINE_BREAK = re.compile(r"\r\n|\n|\r")

#: ``Return value`` of a failed action, in Windows Installer's numbers.
FAILURE = 3
# Return values in the log ("Action ended ...: X. Return value N.").
_OUTCOMES = {0: "not run", 1: "succeeded", 2: "cancelled", 3: "failed", 4: "suspended"}
_WINE_FAILURE = 0
_SUCCEEDED = 1


@dataclass(frozen=True)
class ActionRun:
    """One run of one action, from ``Action start`` to ``Action ended``.

    ``return_value`` is the result in Windows Installer's numbers (0 not
    executed, 1 success, 2 user cancel, 3 failure, 4 suspend), ``None`` when the
    log ended before the action did; ``logged_return_value`` is the number the
    log wrote, which on Wine is 1 or 0. ``lines`` are the records logged while
    this was the innermost running action, a multi-line record joined with
    ``"\\n"``.
    """

    name: str
    return_value: int | None
    lines: tuple[str, ...]
    logged_return_value: int | None = None

    @property
    def outcome(self) -> str:
        """The return value in words: succeeded, cancelled, failed, not run, suspended."""
        if self.return_value is None:
            return "unfinished"
        return _OUTCOMES.get(self.return_value, f"returned {self.return_value}")

    @property
    def failed(self) -> bool:
        """Whether the action failed (return value 3)."""
        return self.return_value == FAILURE


@dataclass(frozen=True)
class LogSummary:
    """What a verbose log says happened.

    ``properties`` holds the last value of every ``Property(S)`` line (the
    server's properties, the ones deferred and immediate execute-sequence
    actions see); ``client_properties`` the same for ``Property(C)``.
    ``failed_action`` is the first action to end failed, ``None`` if none did.
    ``engine`` is ``"windows"`` or ``"wine"``, from the shape of the log.
    ``custom_action_errors`` maps an action to the code of Windows' ``CustomAction
    X returned actual error code N`` line; ``exit_status`` is the code Windows logs
    as the installation's result, ``None`` when the log has none (always on Wine).
    """

    actions: tuple[ActionRun, ...]
    properties: Mapping[str, str]
    msica_lines: tuple[str, ...]
    failed_action: str | None
    engine: str = "wine"
    client_properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    custom_action_errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    exit_status: int | None = None

    def action(self, name: str) -> ActionRun:
        """The last run of action ``name``; ``KeyError`` names the actions logged."""
        for run in reversed(self.actions):
            if run.name == name:
                return run
        names = ", ".join(dict.fromkeys(run.name for run in self.actions)) or "none"
        raise KeyError(f"no action {name!r} in the log; actions logged: {names}")


class _OpenRun:
    def __init__(self, name: str, index: int, parent: _OpenRun | None) -> None:
        self.name = name
        self.index = index
        self.parent = parent
        self.lines: list[str] = []
        self.return_value: int | None = None
        self.ended = False


# Action lines are one line each: what follows one starts a record of its own
# (a message without a recognizable start, e.g. from MsiProcessMessage INFO).
_SINGLE_LINE = re.compile(rf"^Action(?: start| ended)? {_TIME}: ")


def _records(text: str) -> list[str]:
    """The log's records: each line that starts one, with its continuation lines."""
    records: list[list[str]] = []
    for line in _LINE_BREAK.split(text):
        after_action = bool(records) and _SINGLE_LINE.match(records[-1][0]) is not None
        if _RECORD_START.match(line) or not records or (after_action and line.strip()):
            if line.strip() or records:
                records.append([line])
        else:
            records[-1].append(line)
    out = []
    for parts in records:
        while len(parts) > 1 and not parts[-1].strip():
            parts.pop()
        if parts[0].strip() or len(parts) > 1:
            out.append("\n".join(parts))
    return out


def parse_log(text: str) -> LogSummary:
    """Summarize the text of a verbose MSI log written by Windows or by Wine."""
    engine = (
        "windows" if any(_WINDOWS_MARK.match(line) for line in _LINE_BREAK.split(text)) else "wine"
    )
    runs: list[_OpenRun] = []
    stack: list[_OpenRun] = []
    ended_order: list[_OpenRun] = []
    properties: dict[str, str] = {}
    client_properties: dict[str, str] = {}
    msica_lines: list[str] = []
    ca_errors: dict[str, int] = {}
    exit_status: int | None = None

    for record in _records(text):
        first = record.partition("\n")[0]
        start = _ACTION_START.match(first)
        if start:
            run = _OpenRun(start["name"], len(runs), stack[-1] if stack else None)
            runs.append(run)
            stack.append(run)
            continue
        ended = _ACTION_ENDED.match(first)
        if ended:
            name = ended["name"]
            position = next(
                (i for i in range(len(stack) - 1, -1, -1) if stack[i].name == name), None
            )
            if position is None:  # the log began after the action did
                run = _OpenRun(name, len(runs), stack[-1] if stack else None)
                runs.append(run)
            else:
                run = stack[position]
                del stack[position:]
            run.return_value = int(ended["value"])
            run.ended = True
            ended_order.append(run)
            continue
        prop = _PROPERTY.match(record)
        if prop:
            value = prop["value"] or ""
            side = prop["side"].upper()
            if side == "S":
                properties[prop["name"]] = value
            elif side == "C":
                client_properties[prop["name"]] = value
            continue
        if record.startswith("msica"):
            msica_lines.append(record)
        ca_error = _CA_ERROR.search(first)
        if ca_error:
            ca_errors[ca_error["name"]] = int(ca_error["code"])
        status = _ENGINE_RETURN.search(first) or _FINAL_STATUS.search(first)
        if status:
            exit_status = int(status["code"])
        if stack:
            stack[-1].lines.append(record)

    def normalized(run: _OpenRun) -> int | None:
        if engine == "windows" or run.return_value != _WINE_FAILURE:
            return run.return_value
        if run.parent is not None and any(
            later.parent is run.parent and later.return_value == _SUCCEEDED
            for later in runs[run.index + 1:]
        ):  # the sequence went on after it (e.g. an action Wine does not implement)
            return _WINE_FAILURE
        parent = run.parent
        stopped = parent is None or not parent.ended or parent.return_value == _WINE_FAILURE
        return FAILURE if stopped else _WINE_FAILURE

    actions = tuple(
        ActionRun(run.name, normalized(run), tuple(run.lines), run.return_value) for run in runs
    )
    first_failed = next((run.name for run in ended_order if actions[run.index].failed), None)
    return LogSummary(
        actions=actions,
        properties=MappingProxyType(properties),
        msica_lines=tuple(msica_lines),
        failed_action=first_failed,
        engine=engine,
        client_properties=MappingProxyType(client_properties),
        custom_action_errors=MappingProxyType(ca_errors),
        exit_status=exit_status,
    )


def decode_log(data: bytes) -> str:
    """The text of a log file's bytes.

    UTF-16 with a byte order mark (Windows with ``/l*vx`` and some others),
    UTF-8 with or without one, else the ANSI code page Wine and Windows write
    by default, read as cp1252 with undecodable bytes replaced.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    sample = data[:512]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return data.decode("utf-16-le", errors="replace")  # UTF-16 LE without a BOM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_log(path: Path) -> LogSummary:
    """Read and summarize the verbose log at ``path`` in any encoding engines write."""
    return parse_log(decode_log(Path(path).read_bytes()))
