"""Write docs/api.md, msica's API reference, from the docstrings.

    python scripts/api_docs.py          # rewrite docs/api.md
    python scripts/api_docs.py --check  # exit 1 when docs/api.md is out of date

The reference is generated, never edited by hand: tests/unit/test_docs.py
fails when a docstring changed and this was not run.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

TARGET = Path(__file__).resolve().parent.parent / "docs" / "api.md"

# The public modules, in reading order, and what each exports.
MODULES = (
    "msica",
    "msica.session",
    "msica.database",
    "msica.record",
    "msica.enums",
    "msica.errors",
    "msica.customactiondata",
    "msica.actions",
    "msica.testing",
    "msica.testing.runner",
    "msica.testing.log",
    "msica.testing.plugin",
)

HEADER = """\
# API reference

Generated from the docstrings by `scripts/api_docs.py`; do not edit by hand.
The user guide starts at [index.md](index.md).
"""


def render() -> str:
    """The whole reference as Markdown."""
    parts = [HEADER]
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        parts.append("\n".join(_module(module)))
    return "\n".join(parts).rstrip() + "\n"


def _module(module: ModuleType) -> Iterator[str]:
    yield f"\n## `{module.__name__}`\n"
    yield from _doc(module)
    elsewhere = [
        f"`{name}`" for name in getattr(module, "__all__", ())
        if getattr(getattr(module, name, None), "__module__", module.__name__) != module.__name__
    ]
    if elsewhere:
        yield f"Exports {', '.join(elsewhere)}, described with their modules below.\n"
    for name, value in _members(module):
        if inspect.isclass(value):
            yield from _class(name, value)
        elif inspect.isfunction(value):
            yield f"### `{module.__name__}.{name}{_signature(value)}`\n"
            yield from _doc(value)


def _members(module: ModuleType) -> list[tuple[str, object]]:
    """What a module exports: ``__all__``, or the public names it defines itself."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__
            and (inspect.isclass(value) or inspect.isfunction(value))
        ]
    members = []
    for name in names:
        value = getattr(module, name, None)
        if inspect.isclass(value) or inspect.isfunction(value):
            # a name re-exported from a module documented on its own is listed, not repeated
            home = getattr(value, "__module__", module.__name__)
            if home != module.__name__ and home in MODULES:
                continue
            members.append((name, value))
    return members


def _class(name: str, cls: type) -> Iterator[str]:
    bases = [base.__name__ for base in cls.__bases__ if base is not object]
    based = f" (subclass of {', '.join(bases)})" if bases else ""
    init = "" if issubclass(cls, BaseException | enum.Enum) else _signature(cls, result=False)
    yield f"### class `{name}{init}`{based}\n"
    yield from _doc(cls)
    if issubclass(cls, enum.Enum):
        for member in cls:
            yield f"- `{member.name}` = `{member.value!r}`"
        yield ""
        return
    for attr, value in vars(cls).items():
        if attr.startswith("_") and attr not in ("__init__", "__getitem__", "__setitem__",
                                                 "__delitem__", "__contains__", "__iter__"):
            continue
        if attr == "__init__":
            continue
        if isinstance(value, property):
            yield f"#### `{name}.{attr}` (property)\n"
            yield from _doc(value)
        elif isinstance(value, (classmethod, staticmethod)):
            function = value.__func__
            yield f"#### `{name}.{attr}{_signature(function, drop_first=True)}`\n"
            yield from _doc(function)
        elif inspect.isfunction(value):
            yield f"#### `{name}.{attr}{_signature(value, drop_first=True)}`\n"
            yield from _doc(value)


def _signature(function: object, *, drop_first: bool = False, result: bool = True) -> str:
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"
    parameters = list(signature.parameters.values())[1 if drop_first else 0:]
    plain = [parameter.replace(annotation=_plain(parameter.annotation))
             for parameter in parameters]
    returns = _plain(signature.return_annotation) if result else inspect.Signature.empty
    text = str(signature.replace(parameters=plain, return_annotation=returns))
    return re.sub(r" at 0x[0-9a-fA-F]+>", ">", text)  # a default's repr: no addresses


class _Text:
    """An annotation shown as written (``from __future__ import annotations`` keeps text)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _plain(annotation: object) -> object:
    return _Text(annotation) if isinstance(annotation, str) else annotation


def _doc(thing: object) -> Iterator[str]:
    text = inspect.getdoc(thing)
    if text:
        yield text.strip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python scripts/api_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
