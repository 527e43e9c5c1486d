"""``msica new``: a custom-action project made from the cookiecutter template.

The template lives in the repository's top-level ``templates/project``; a
wheel carries the same files as ``msica/_templates/project`` (pyproject.toml
maps one onto the other). cookiecutter renders it through its library API:
no replay file is written and nothing is fetched.

The names are checked before anything is written: the project slug becomes a
Python package and the DLL's file name, the product name the install folder's
name and text that wixl must be able to encode.
"""

from __future__ import annotations

import difflib
import json
import keyword
import logging
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msica.errors import AuthorError, ConfigError

log = logging.getLogger(__name__)

TEMPLATE = "project"
"""The template's directory name, under templates/ (checkout) or msica/_templates/ (wheel)."""

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CANDIDATES = (
    _PACKAGE_DIR / "_templates" / TEMPLATE,  # an installed wheel
    _PACKAGE_DIR.parent.parent / "templates" / TEMPLATE,  # a checkout (sdk/msica)
)

# Device names Windows reserves with any extension: con.x64.dll cannot be opened.
_RESERVED_NAMES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"{kind}{digit}" for kind in ("com", "lpt") for digit in range(1, 10)]
)
_NOT_IN_FILE_NAMES = '\\/:*?"<>|'
_SLUG = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class TemplateError(AuthorError):
    """The project template is missing or could not be rendered."""


def template_dir() -> Path:
    """The directory of the project template (the one holding cookiecutter.json)."""
    for candidate in _CANDIDATES:
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise TemplateError(
        "msica's project template is missing (looked in "
        + " and ".join(str(c) for c in _CANDIDATES)
        + "): reinstall msica"
    )


def template_keys() -> list[str]:
    """The template's settings that ``--set`` may give, in the order they are asked."""
    document = json.loads((template_dir() / "cookiecutter.json").read_text(encoding="utf-8"))
    return [key for key in document if not key.startswith("_")]


def check_slug(slug: str) -> None:
    """Refuse a project slug that is not both a Python package name and a DLL name."""
    advice = "choose another name, or --set project_slug=NAME"
    if not _SLUG.fullmatch(slug):
        raise ConfigError(
            f"project slug {slug!r} is not a usable Python package and DLL name: it must "
            f"start with an ASCII letter and hold only letters, digits and '_'; {advice}"
        )
    if keyword.iskeyword(slug):
        raise ConfigError(f"project slug {slug!r} is a Python keyword; {advice}")
    if slug.lower() in _RESERVED_NAMES:
        raise ConfigError(f"project slug {slug!r} is a device name Windows reserves; {advice}")
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    if slug == "msica" or slug in stdlib:
        raise ConfigError(
            f"project slug {slug!r} would hide the module of the same name inside the "
            f"installer's Python; {advice}"
        )


def check_text(key: str, text: str, *, file_name: bool = False) -> None:
    """Refuse text that wixl cannot write (outside cp1252) or, for ``file_name``, Windows."""
    if not text.strip():
        raise ConfigError(f"{key} is empty: --set {key}=...")
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{key} {text!r} holds characters outside Windows-1252, which the .msi's "
            "code page and wixl cannot carry: use Latin letters"
        ) from None
    if file_name:
        bad = sorted({c for c in text if c in _NOT_IN_FILE_NAMES or ord(c) < 32})
        if bad or text.rstrip(" .") != text:
            raise ConfigError(
                f"{key} {text!r} names the install folder, and Windows refuses "
                + (f"{''.join(bad)!r} in a folder name" if bad else "a trailing space or dot")
            )


def check_version(version: str) -> None:
    """Refuse a ProductVersion Windows Installer would not compare (major.minor.build)."""
    match = _VERSION.fullmatch(version)
    if not match or not (
        int(match[1]) <= 255 and int(match[2]) <= 255 and int(match[3]) <= 65535
    ):
        raise ConfigError(
            f"version {version!r} is not a Windows Installer ProductVersion: write "
            "major.minor.build, at most 255.255.65535 (e.g. --set version=1.0.0)"
        )


def _msica_requirement() -> str:
    import msica

    version = str(msica.__version__)
    return f"msica>={version}" if re.fullmatch(r"\d+(\.\d+)*", version) else "msica"


def create(
    output_dir: Path,
    *,
    name: str | None = None,
    settings: Mapping[str, str] | None = None,
    no_input: bool = True,
) -> Path:
    """Render the template into ``output_dir / <project_slug>``; the new project's path.

    ``name`` is the product name (``project_name``); ``settings`` override other
    template keys (``template_keys()``). With ``no_input=False`` cookiecutter
    asks for each value on the terminal, offering the defaults.
    """
    try:
        from cookiecutter.exceptions import CookiecutterException
        from cookiecutter.generate import generate_context, generate_files
        from cookiecutter.prompt import prompt_for_config
    except ImportError:  # pragma: no cover - a dependency of msica
        raise TemplateError("msica new needs cookiecutter: pip install cookiecutter") from None

    template = template_dir()
    keys = template_keys()
    extra: dict[str, Any] = dict(settings or {})
    for key in extra:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; the keys: {', '.join(keys)}"
            raise ConfigError(f"--set {key}: the template has no such key{hint}")
    if name is not None:
        extra["project_name"] = name
    extra["__msica_requirement"] = _msica_requirement()

    try:
        context = generate_context(
            context_file=str(template / "cookiecutter.json"), extra_context=extra
        )
    except ValueError as error:  # a value outside a choice's list
        raise ConfigError(f"--set: {error}") from None
    try:
        values = prompt_for_config(context, no_input=no_input)
    except CookiecutterException as error:
        raise TemplateError(f"cannot render the template: {error}") from None
    context["cookiecutter"] = values

    check_text("project_name", values["project_name"], file_name=True)
    check_text("manufacturer", values["manufacturer"])
    check_slug(values["project_slug"])
    check_version(values["version"])

    output_dir = Path(output_dir)
    target = output_dir / values["project_slug"]
    if target.exists():
        raise ConfigError(
            f"{target} already exists: choose another name, or another directory with -o"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    log.info("new: rendering %s into %s", template, target)
    try:
        project = generate_files(
            repo_dir=str(template), context=context, output_dir=str(output_dir)
        )
    except CookiecutterException as error:
        raise TemplateError(f"cannot render the template into {target}: {error}") from None
    # pip byte-compiles the template's .py files when it installs msica; the
    # caches are not part of the template.
    for cache in sorted(Path(project).rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    return Path(project)
