"""Find the ``@custom_action`` functions of a project by reading its source.

The build host is often not Windows, and action modules may import Windows-only
modules at the top, so the source is parsed, never run. Decorator options must
therefore be literals; anything else is refused with the line it is on.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from msica.actions import Action
from msica.errors import BuildError

_OPTIONS = set(Action.OPTIONS)


@dataclasses.dataclass(frozen=True)
class FoundAction:
    """An action found in the source, and the module that defines it."""

    action: Action
    module: str
    path: Path
    line: int


def discover(modules: Sequence[tuple[str, Path]]) -> list[FoundAction]:
    """Every action defined in ``modules`` ((dotted name, file) pairs), in source order."""
    found: list[FoundAction] = []
    for module, path in modules:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as error:
            raise BuildError(
                f"{path}:{error.lineno}: cannot read the actions module: {error.msg}"
            ) from None
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in node.decorator_list:
                options = _decorator_options(decorator, path)
                if options is None:
                    continue
                if isinstance(node, ast.AsyncFunctionDef):
                    raise BuildError(
                        f"{path}:{node.lineno}: action {node.name} is `async def`; "
                        "custom actions are plain functions"
                    )
                try:
                    action = Action(function_name=node.name,
                                    **{"name": node.name, **options})  # type: ignore[arg-type]
                except ValueError as error:  # an invalid combination: point at the options
                    raise BuildError(f"{path}:{decorator.lineno}: {error}") from None
                found.append(FoundAction(action, module, path, node.lineno))
    return found


def _decorator_options(node: ast.expr, path: Path) -> dict[str, object] | None:
    """The literal keyword options of a custom_action decorator, or None for others."""
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call is not None else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if name != "custom_action":
        return None
    if call is None:
        return {}
    if call.args:
        raise BuildError(
            f"{path}:{node.lineno}: @custom_action takes keyword options only, "
            "e.g. @custom_action(name=\"CheckLicense\")"
        )
    options: dict[str, object] = {}
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg not in _OPTIONS:
            raise BuildError(
                f"{path}:{node.lineno}: @custom_action has no option {keyword.arg!r}; "
                f"options are {', '.join(sorted(_OPTIONS))}"
            )
        try:
            options[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise BuildError(
                f"{path}:{node.lineno}: @custom_action option {keyword.arg} must be a "
                "literal (msica build reads it without running your code)"
            ) from None
    return options
