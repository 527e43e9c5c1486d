"""What an install did, as a document (``--json``) or text: ``msica run`` and ``msica log``.

Both commands describe a verbose log the same way: the exit code (msiexec's,
or the one a Windows log records; a Wine log records none), every action with
its return value and the msica lines it logged (tracebacks included), the
failed action with the traceback that explains it, and every property of the
final ``Property(S)`` dump.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msica.testing.log import ActionRun, LogSummary

__all__ = ["document", "render", "traceback_of"]

_TRACEBACK = "Traceback (most recent call last):"


def msica_lines(run: ActionRun) -> list[str]:
    """The lines msica wrote while ``run`` was the innermost action."""
    return [line for line in run.lines if line.startswith("msica")]


def traceback_of(run: ActionRun) -> str | None:
    """The last Python traceback among ``run``'s msica lines, without the line's prefix."""
    for line in reversed(msica_lines(run)):
        start = line.find(_TRACEBACK)
        if start >= 0:
            return line[start:]
    return None


def _failed_run(summary: LogSummary) -> ActionRun | None:
    if summary.failed_action is None:
        return None
    for run in summary.actions:
        if run.name == summary.failed_action and run.failed:
            return run
    return summary.action(summary.failed_action)


def document(
    summary: LogSummary,
    *,
    log_path: Path | None = None,
    exit_code: int | None = None,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The summary as JSON-ready data.

    ``exit_code`` is msiexec's when the caller ran it; otherwise the code the
    log records (Windows), or None (Wine logs record none). ``succeeded`` says
    whether the install worked: by the exit code when there is one, else by
    whether an action failed.
    """
    code = exit_code if exit_code is not None else summary.exit_status
    failed = _failed_run(summary)
    succeeded = code in (0, 3010) if code is not None else failed is None
    failure = None
    if failed is not None:
        failure = {
            "action": failed.name,
            "return_value": failed.return_value,
            "msica_lines": msica_lines(failed),
            "traceback": traceback_of(failed),
            "lines": list(failed.lines),
        }
    result: dict[str, Any] = {
        "exit_code": code,
        "succeeded": succeeded,
        "log": str(log_path) if log_path is not None else None,
        "engine": summary.engine,
        "failed_action": summary.failed_action,
        "failure": failure,
        "actions": [
            {
                "name": run.name,
                "return_value": run.return_value,
                "outcome": run.outcome,
                "msica_lines": msica_lines(run),
                "traceback": traceback_of(run),
            }
            for run in summary.actions
        ],
        "properties": dict(summary.properties),
    }
    if command is not None:
        result["command"] = list(command)
    return result


def render(data: dict[str, Any], *, title: str, show_properties: Sequence[str] = ()) -> str:
    """``data`` (from :func:`document`) as text for a terminal."""
    code = data["exit_code"]
    status = f"exit code {code}" if code is not None else (
        "succeeded" if data["succeeded"] else "failed")
    where = f" (log: {data['log']})" if data.get("log") else ""
    out = [f"{title}: {status}{where}"]
    for action in data["actions"]:
        if action["msica_lines"]:
            out.append(f"  {action['name']} {action['outcome']}:")
            out.extend(f"    {part}" for line in action["msica_lines"]
                       for part in line.splitlines())
    for name in show_properties:
        out.append(f"  property {name} = {data['properties'].get(name, '')!r}")
    failure = data["failure"]
    if failure is not None:
        out.append(f"  failed action: {failure['action']}")
        if failure["traceback"]:
            out.extend(f"    {part}" for part in failure["traceback"].splitlines())
        elif failure["lines"]:
            out.append("    its last log lines:")
            out.extend(f"    {part}" for line in failure["lines"][-5:]
                       for part in line.splitlines())
    return "\n".join(out)
