"""Only the part of the standard library that a DLL's code can import.

The embeddable runtime ships its standard library as ``pythonXY.zip`` of
``.pyc`` files, plus extension modules (``.pyd``) and the DLLs these need
(``libcrypto-3.dll`` for ``_ssl`` and ``_hashlib``, ``sqlite3.dll`` for
``_sqlite3``, ``libffi-8.dll`` for ``_ctypes``...). :func:`trim` keeps the
modules reachable from what the payload runs, and writes them as a new
``pythonXY.zip``.

Where the imports come from (over-approximated: a module that might be
imported is packed):

- Source files (the project's modules, the msica host, bundled wheels) are
  read with :mod:`ast` on the build host: every ``import`` and ``from``, at
  any depth (a function's lazy import counts), and ``import_module("x")`` /
  ``__import__("x")`` with a literal name; not what sits under
  ``if TYPE_CHECKING:``. A file whose syntax the host cannot parse (a newer
  Python's) is read line by line for ``import`` and ``from`` statements.
- The runtime's ``.pyc`` files come from a CPython that may differ from the
  host's (3.8 to 3.13), so :mod:`marshal` cannot read them reliably. A small
  marshal reader walks them instead (:func:`pyc_imports`): the object codes
  have been the same since 3.4; a code object's fields have two layouts
  (3.8-3.10, 3.11-3.13), both tried. In each code object, at any depth, the
  operands of ``IMPORT_NAME`` and ``IMPORT_FROM`` (per-version opcode
  numbers, :data:`_OPCODES`) name what it imports; a version whose opcodes are
  unknown counts every name its code uses, and a file no layout reads counts
  every identifier-like string. Each imported name is resolved as absolute
  and relative to the module's packages, and each ``from`` name as a
  submodule of those.
- Extension modules of wheels are scanned for NUL-terminated strings that
  name stdlib modules (C code imports by string); what the runtime's own
  extension modules and builtins import is listed in :data:`_C_IMPORTS`.
  DLLs follow from PE import tables, transitively.
- :data:`ALWAYS` is what the interpreter itself imports (start-up, codecs,
  warnings, tracebacks); the whole ``encodings`` package is packed (codecs
  are looked up by name at run time) but for the two codecs that need an
  extension module (:data:`_CODECS_WITH_EXTENSIONS`).

Edges that are never followed, because no action reaches them through a
library call: imports by the stdlib of development tools (pydoc, doctest,
unittest, pdb, argparse..., :data:`_DEVELOPMENT_TOOLS`) and imports inside
functions named ``main``/``_main``/``_test``/``test``/``_demo``
(``python -m module``). The import system's own modules are frozen into
pythonXY.dll and not packed (:data:`_IMPORT_SYSTEM`). The payload's own code
and ``include`` bring any of these like any other module. ``include`` adds
modules (a package: with all its submodules) for imports no scan can see;
``exclude`` removes modules and their submodules whatever imports them.

The result depends only on its inputs: zip entries are sorted, stored (the
payload compresses the zip as a whole) and dated 1980-01-01. The import
graph of a runtime is cached under ``<cache>/stdlib/``, keyed by the SHA-256
of its zip.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import json
import logging
import os
import re
import struct
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from msica.build import exports
from msica.errors import BuildError, ConfigError

log = logging.getLogger("msica.build")

ALWAYS = (
    "encodings",  # the whole package: codecs are looked up by name at run time
    "codecs", "io", "abc", "_collections_abc", "_weakrefset", "_sitebuiltins",
    "os", "stat", "ntpath", "genericpath", "warnings", "linecache", "traceback",
    "copyreg", "types",
)
"""Modules every payload carries: imported by the interpreter itself (start-up,
warnings, tracebacks), before or beside any code of the payload."""

_CODECS_WITH_EXTENSIONS = frozenset({"encodings.bz2_codec", "encodings.idna"})
"""Codecs of ``encodings`` that need an extension module (``_bz2``;
``unicodedata``, 1.1 MB): packed with ``bz2``, and with ``unicodedata`` or
``_socket`` (whose C code encodes host names with idna). Otherwise
``codecs.encode(data, "bz2")`` or ``"idna"`` needs ``include``."""

_C_IMPORTS = {
    "bz2": ("encodings.bz2_codec",),
    "unicodedata": ("encodings.idna",),
    "_socket": ("encodings.idna",),
    "_elementtree": ("xml.etree.ElementPath", "copy"),
    "_decimal": ("collections", "numbers", "contextvars", "decimal"),
    "_sqlite3": ("sqlite3.dump",),
    "_pickle": ("copyreg", "_compat_pickle"),
    "_datetime": ("_strptime", "time"),
    "datetime": ("_strptime",),
    "time": ("_strptime",),
    "_ssl": ("_socket",),  # and "_socket" brings idna
    "_ctypes": ("ctypes",),
}
"""Modules that C code of the runtime imports by name (not visible in .pyc)."""

_DEVELOPMENT_TOOLS = frozenset({
    "pydoc", "pydoc_data", "doctest", "unittest", "pdb", "bdb", "tracemalloc", "profile",
    "cProfile", "pstats", "trace", "timeit", "tkinter", "turtle", "turtledemo", "idlelib",
    "lib2to3", "ensurepip", "venv", "_pyrepl", "webbrowser", "antigravity", "this",
    "__hello__", "__phello__", "test", "argparse", "optparse", "getopt",
})
"""Packages that the standard library imports only to serve people at a prompt
(``help()``, ``_test()``, warnings' allocation traceback) or on a command line
(``if __name__ == "__main__"`` parsing its arguments).
An import of them *by the stdlib* is not followed; the payload's own code,
``include`` and their imports bring them in like any module."""
_IMPORT_SYSTEM = frozenset({"importlib._bootstrap", "importlib._bootstrap_external", "zipimport"})
"""Frozen into pythonXY.dll since 3.8 (importlib imports them as
``_frozen_importlib*``), so never loaded from the zip and not packed; what they
import lazily (importlib.metadata, importlib.readers) serves APIs whose own
modules import it."""
_COMMAND_LINE_FUNCTIONS = frozenset({"main", "_main", "_test", "test", "_demo"})
"""Functions of stdlib modules that serve ``python -m module`` (their argparse
and the like are not followed)."""
_MAX_MARSHAL_DEPTH = 200
_INDEX_FORMAT = "v4"  # bump when what the cached index means changes
_SOURCE_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[\w, \t]+)"
    rb"|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_C_STRING = re.compile(rb"(?<=\x00)[A-Za-z_][A-Za-z0-9_.]{1,80}(?=\x00)")


@dataclass(frozen=True)
class Trimmed:
    """What :func:`trim` keeps of a runtime."""

    files: dict[str, bytes]
    """Runtime files to pack, by name: the new ``pythonXY.zip``, the DLLs, the
    needed ``.pyd`` files, ``LICENSE.txt``."""
    modules: tuple[str, ...]
    """Stdlib modules packed (from the zip and ``.pyd`` files), sorted."""
    dropped: tuple[str, ...]
    """Runtime files left out, sorted."""


@dataclass(frozen=True)
class _Index:
    """The modules of a runtime and what each may import."""

    modules: dict[str, str]
    """Module -> its zip entry (``json/__init__.pyc``), or ``.pyd`` file name."""
    packages: frozenset[str]
    imports: dict[str, tuple[str, ...]]
    """Module -> the modules it may import (already resolved against ``modules``)."""


def trim(
    files: Mapping[str, bytes],
    version: tuple[int, int],
    sources: Mapping[str, bytes],
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    host_only: Mapping[str, Collection[str]] | None = None,
    cache: Path | None = None,
) -> Trimmed:
    """The runtime ``files`` cut down to what ``sources`` can import.

    ``sources``: the payload's ``lib/`` files by relative path (``.py`` read
    for imports, ``.pyd`` scanned for module names and DLLs); ``include`` and
    ``exclude``: module names from ``[tool.msica]``; ``host_only``: path ->
    functions of that file that never run inside an action.
    """
    xy = f"{version[0]}{version[1]}"
    zip_name = f"python{xy}.zip"
    by_lower = {name.lower(): name for name in files}
    if zip_name.lower() not in by_lower:
        raise BuildError(f"the runtime has no {zip_name}: pass a complete embeddable CPython")
    zip_data = files[by_lower[zip_name.lower()]]
    index = _index(zip_data, files, version, cache)
    local = _local_modules(sources)
    include, exclude = tuple(include), tuple(exclude)
    _check_names(include, "include", index, local, version)
    _check_names(exclude, "exclude", index, local, version)
    for name in exclude:
        needed_first = [m for m in ALWAYS if m == name or m.startswith(name + ".")]
        if needed_first:
            raise ConfigError(
                f"[tool.msica] exclude names {name!r}, but the interpreter itself imports "
                f"{needed_first[0]!r} to start or to report errors: remove it from exclude"
            )

    seeds: set[str] = set(ALWAYS)
    for path, data in sorted(sources.items()):
        if path.endswith(".py"):
            seeds.update(source_imports(data, (host_only or {}).get(path, ())))
        elif path.lower().endswith(".pyd"):
            seeds.update(_c_strings(data))
    for name in (*include, "encodings"):  # a package named whole: all its submodules
        seeds.add(name)
        seeds.update(m for m in index.modules if m.startswith(name + ".")
                     and (name != "encodings" or m not in _CODECS_WITH_EXTENSIONS))
    needed = _closure(seeds, index, exclude)

    entries: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(zip_data)) as archive:
        kept_dirs = {index.modules[m].rpartition("/")[0] for m in needed
                     if m in index.packages and index.modules[m].endswith(".pyc")}
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            module = _module_of(name)
            if module is not None:
                if module in needed:
                    entries[name] = archive.read(info)
            elif name.rpartition("/")[0] in kept_dirs:  # data files of a kept package
                entries[name] = archive.read(info)

    kept: dict[str, bytes] = {zip_name: write_zip(entries)}
    dlls = {f"python{xy}.dll", "python3.dll"}
    pyds = [index.modules[m] for m in needed if index.modules[m].lower().endswith(".pyd")]
    for name in pyds:
        kept[name] = files[name]
    for path, data in sources.items():
        if path.lower().endswith(".pyd"):
            dlls.update(_pe_imports(data, path))
    kept.update(_dll_closure(files, dlls | {p.lower() for p in pyds}, by_lower))
    for name in files:
        if name.lower() == "license.txt":
            kept[name] = files[name]
    modules = tuple(sorted(needed))
    dropped = tuple(sorted(set(files) - set(kept)))
    log.info("stdlib: %d modules of %d, %d runtime files left out (%s)", len(modules),
             len(index.modules), len(dropped), ", ".join(dropped))
    return Trimmed(kept, modules, dropped)


def write_zip(entries: Mapping[str, bytes]) -> bytes:
    """A zip of ``entries``, the same bytes for the same entries: sorted, stored, 1980-01-01."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, entries[name])
    return buffer.getvalue()


# --------------------------------------------------------------------------- graph


def _closure(seeds: Iterable[str], index: _Index, exclude: tuple[str, ...]) -> set[str]:
    def excluded(name: str) -> bool:
        return any(name == e or name.startswith(e + ".") for e in exclude)

    def tool(name: str) -> bool:
        return name.split(".")[0] in _DEVELOPMENT_TOOLS

    needed: set[str] = set()
    todo = list(seeds)
    while todo:
        name = todo.pop()
        if not excluded(name):
            todo.extend(_C_IMPORTS.get(name, ()))
        if (name not in index.modules or name in needed or excluded(name)
                or name in _IMPORT_SYSTEM):
            continue
        needed.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parents run first
        imports = index.imports.get(name, ())
        todo.extend(imports if tool(name) else [i for i in imports if not tool(i)])
    return needed


def _resolve(module: str, is_package: bool, imported: Iterable[str], fromlist: Iterable[str],
             known: Mapping[str, str]) -> tuple[str, ...]:
    """The modules of ``known`` that ``module``'s imports may load.

    Each imported name is taken as absolute and as relative to each package
    that contains ``module``; each fromlist name as a submodule of any of those.
    """
    chain = []
    package = module if is_package else module.rpartition(".")[0]
    while package:
        chain.append(package)
        package = package.rpartition(".")[0]
    bases: set[str] = set()
    for name in imported:
        if name:
            bases.add(name)
        bases.update(f"{p}.{name}" if name else p for p in chain)
    found = {base for base in bases if base in known}
    found.update(f"{base}.{name}" for base in bases for name in fromlist
                 if f"{base}.{name}" in known)
    found.discard(module)
    return tuple(sorted(found))


def _index(zip_data: bytes, files: Mapping[str, bytes], version: tuple[int, int],
           cache: Path | None) -> _Index:
    digest = hashlib.sha256(zip_data).hexdigest()
    cached = cache / "stdlib" / f"{digest}-{_INDEX_FORMAT}.json" if cache is not None else None
    if cached is not None:
        try:
            document = json.loads(cached.read_text(encoding="utf-8"))
            return _Index(
                {str(k): str(v) for k, v in document["modules"].items()},
                frozenset(document["packages"]),
                {str(k): tuple(v) for k, v in document["imports"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    index = _build_index(zip_data, files, version)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps({
                "modules": index.modules,
                "packages": sorted(index.packages),
                "imports": index.imports,
            }, sort_keys=True), encoding="utf-8")
            os.replace(partial, cached)
        except OSError as error:
            log.debug("could not cache the stdlib index in %s: %s", cached.parent, error)
    return index


def _build_index(zip_data: bytes, files: Mapping[str, bytes], version: tuple[int, int]) -> _Index:
    modules: dict[str, str] = {}
    packages: set[str] = set()
    found: dict[str, tuple[set[str], set[str]]] = {}
    with zipfile.ZipFile(io.BytesIO(zip_data)) as archive:
        for info in archive.infolist():
            module = _module_of(info.filename)
            if module is None or info.is_dir():
                continue
            if module in modules and modules[module].endswith(".pyc"):
                continue  # a .pyc and its .py: one module
            modules[module] = info.filename
            if info.filename.rpartition("/")[2].startswith("__init__."):
                packages.add(module)
            data = archive.read(info)
            if info.filename.endswith(".py"):
                found[module] = (source_imports(data), set())
            else:
                found[module] = pyc_imports(data, version)
    for name in files:
        if name.lower().endswith(".pyd"):
            module = name.split(".")[0]
            modules.setdefault(module, name)
            found.setdefault(module, (set(), set()))
    frozen = frozenset(packages)
    imports = {
        module: _resolve(module, module in frozen, *found[module], modules)
        for module in sorted(modules)
    }
    return _Index(modules, frozen, imports)


def _module_of(path: str) -> str | None:
    """``json/decoder.pyc`` -> ``json.decoder``; None for a file that is no module."""
    stem, dot, suffix = path.rpartition(".")
    if not dot or suffix not in ("pyc", "py"):
        return None
    parts = stem.split("/")
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _local_modules(sources: Mapping[str, bytes]) -> set[str]:
    local = set()
    for path in sources:
        module = _module_of(path)
        if module is not None:
            local.add(module)
        elif path.lower().endswith(".pyd"):
            local.add(".".join([*path.split("/")[:-1], path.rpartition("/")[2].split(".")[0]]))
    return local


def _check_names(names: tuple[str, ...], key: str, index: _Index, local: set[str],
                 version: tuple[int, int]) -> None:
    for name in names:
        if name in index.modules or name in local:
            continue
        close = difflib.get_close_matches(name, sorted(index.modules), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"[tool.msica] {key} names {name!r}, which is no module of CPython "
            f"{version[0]}.{version[1]}'s standard library nor of the project{hint}: "
            f"fix the name, or remove it from {key}"
        )


# --------------------------------------------------------------------------- sources


def source_imports(source: bytes, host_only: Collection[str] = ()) -> set[str]:
    """Absolute module names that Python source may import.

    ``from a import b`` gives ``a`` and ``a.b`` (b may be a submodule).
    Imports under ``if TYPE_CHECKING:`` and inside the functions named in
    ``host_only`` (which never run inside an action) are left out.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _names_of_source(source)
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in host_only:
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and _is_import_call(node.func):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _is_import_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _names_of_source(source: bytes) -> set[str]:
    """Import statements found line by line: for source the host cannot parse."""
    found: set[bytes] = set()
    for match in _SOURCE_IMPORT.finditer(source):
        base, names, plain = match.groups()
        if plain is not None:
            found.update(_IDENTIFIER.findall(plain.replace(b" as ", b",")))
        else:
            found.add(base)
            for name in _IDENTIFIER.findall(names):
                found.add(name)
                found.add(base + b"." + name)
    return {name.decode("ascii", "replace") for name in found}


def _c_strings(data: bytes) -> set[str]:
    return {match.decode("ascii") for match in _C_STRING.findall(data)}


def _pe_imports(data: bytes, where: str) -> set[str]:
    try:
        return {name.lower() for name in exports.read_pe(data).imports}
    except BuildError as error:
        log.debug("stdlib: %s is not a readable PE file (%s)", where, error)
        return set()


def _dll_closure(files: Mapping[str, bytes], roots: set[str],
                 by_lower: Mapping[str, str]) -> dict[str, bytes]:
    """The runtime files among ``roots`` and the runtime DLLs they import, transitively."""
    kept: dict[str, bytes] = {}
    todo = sorted(roots)
    while todo:
        lower = todo.pop()
        name = by_lower.get(lower)
        if name is None or name in kept:
            continue  # a system DLL (kernel32.dll...), not shipped
        kept[name] = files[name]
        todo.extend(sorted(_pe_imports(files[name], name)))
    return kept


# --------------------------------------------------------------------------- .pyc


_OPCODES = {(3, minor): (108, 109, 144) for minor in range(8, 13)}
_OPCODES[(3, 13)] = (75, 74, 71)
"""IMPORT_NAME, IMPORT_FROM and EXTENDED_ARG of each CPython version. 3.8-3.12
share them (opcode.py); 3.13 renumbered them (opcode_ids.h), read here from
the imports in its embeddable's ``json/__init__.pyc``."""


def pyc_imports(data: bytes, version: tuple[int, int]) -> tuple[set[str], set[str]]:
    """What the code objects of a ``.pyc`` of CPython ``version`` import.

    ``(imported, fromlist)``: the names ``IMPORT_NAME`` loads (``""`` for
    ``from . import x``; relative names as written) and the names
    ``IMPORT_FROM`` takes from them. For a version whose opcodes are not
    known here, both are every name the code uses (an over-approximation).
    Tries the code-object layout of ``version`` first, then the other one;
    when neither reads the whole file, every identifier-like string in it.
    """
    opcodes = _OPCODES.get(version)
    layouts = [_LAYOUT_311, _LAYOUT_38] if version >= (3, 11) else [_LAYOUT_38, _LAYOUT_311]
    for layout in layouts:
        reader = _Marshal(data, 16, layout, opcodes)
        try:
            reader.read()
        except (IndexError, ValueError, struct.error, RecursionError):
            continue
        if reader.pos == len(data):
            return reader.imported, reader.fromlist
    log.debug("stdlib: a .pyc that no code-object layout reads; scanning its strings")
    names = {match.decode("ascii") for match in _IDENTIFIER.findall(data[16:])}
    return names, names


# Fields of a marshalled code object after its type byte: "i" a 32-bit int,
# "b" the bytecode, "n" co_names, "N" co_name, "o" any other object.
_LAYOUT_38 = "iiiiii" + "b" + "o" + "n" + "oooo" + "N" + "i" + "o"
"""3.8-3.10: argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize,
flags; code, consts, names, varnames, freevars, cellvars, filename, name;
firstlineno; lnotab (linetable in 3.10)."""
_LAYOUT_311 = "iiiii" + "b" + "o" + "n" + "ooo" + "N" + "o" + "i" + "oo"
"""3.11-3.13: argcount, posonlyargcount, kwonlyargcount, stacksize, flags;
code, consts, names, localsplusnames, localspluskinds, filename, name,
qualname; firstlineno; linetable, exceptiontable."""


class _Marshal:
    """Just enough of a marshal reader to walk code objects and find their imports."""

    def __init__(self, data: bytes, pos: int, layout: str,
                 opcodes: tuple[int, int, int] | None) -> None:
        self.data = data
        self.pos = pos
        self.layout = layout
        self.opcodes = opcodes
        self.refs: list[object] = []
        self.imported: set[str] = set()
        self.fromlist: set[str] = set()
        self.depth = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("marshal data ends early")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _int(self) -> int:
        (value,) = struct.unpack("<i", self._take(4))
        return int(value)

    def read(self) -> object:
        self.depth += 1
        if self.depth > _MAX_MARSHAL_DEPTH:
            raise ValueError("marshal data nests too deep")
        try:
            code = self._take(1)[0]
            kind, flagged = chr(code & 0x7F), code & 0x80
            slot = len(self.refs)
            if flagged:
                self.refs.append(None)
            value = self._value(kind)
            if flagged:
                self.refs[slot] = value
            return value
        finally:
            self.depth -= 1

    def _value(self, kind: str) -> object:  # one branch per marshal type
        if kind in "0NFTS.":
            return None
        if kind == "i":
            return self._int()
        if kind == "l":
            self._take(2 * abs(self._int()))
            return 0
        fixed = {"I": 8, "g": 8, "y": 16}.get(kind)
        if fixed is not None:
            self._take(fixed)
            return 0
        if kind == "f":
            self._take(self._take(1)[0])
            return 0
        if kind == "x":
            self._take(self._take(1)[0])
            self._take(self._take(1)[0])
            return 0
        if kind == "s":
            return self._take(self._int())
        if kind in "tuaA":
            return self._take(self._int()).decode("utf-8", "surrogatepass")
        if kind in "zZ":
            return self._take(self._take(1)[0]).decode("latin-1")
        if kind in "([<>":
            return tuple(self.read() for _ in range(self._int()))
        if kind == ")":
            return tuple(self.read() for _ in range(self._take(1)[0]))
        if kind == "{":
            while self._take(1) != b"0":
                self.pos -= 1
                self.read()
                self.read()
            return None
        if kind == "r":
            index = self._int()
            if not 0 <= index < len(self.refs):
                raise ValueError("marshal reference out of range")
            return self.refs[index]
        if kind == "c":
            self._code()
            return None
        raise ValueError(f"unknown marshal type {kind!r}")

    def _code(self) -> None:
        code: object = b""
        names: object = ()
        name: object = ""
        outer = self.imported, self.fromlist
        self.imported, self.fromlist = set(), set()  # nested code objects land here
        for field in self.layout:
            if field == "i":
                self._int()
            elif field == "b":
                code = self.read()
            elif field == "n":
                names = self.read()
            elif field == "N":
                name = self.read()
            else:
                self.read()
        if not isinstance(code, bytes) or not isinstance(names, tuple):
            raise ValueError("not a code object of this layout")
        inner = self.imported, self.fromlist
        self.imported, self.fromlist = outer
        if name in _COMMAND_LINE_FUNCTIONS:
            return  # `python -m module` only, never an action's call
        self.imported.update(inner[0])
        self.fromlist.update(inner[1])
        strings = [item if isinstance(item, str) else "" for item in names]
        if self.opcodes is None:
            self.imported.update(strings)
            self.fromlist.update(strings)
            return
        import_name, import_from, extended_arg = self.opcodes
        argument = 0
        for at in range(0, len(code) - 1, 2):
            op = code[at]
            argument = argument << 8 | code[at + 1]
            if op == extended_arg:
                continue
            if op in (import_name, import_from):
                if argument >= len(strings):
                    raise ValueError("an import names no entry of co_names")
                (self.imported if op == import_name else self.fromlist).add(strings[argument])
            argument = 0
