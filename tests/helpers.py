"""Plain functions the tests share: compile C with zig, write and compile WiX
sources with wixl, run Windows programs under Wine.

They raise :class:`ToolError` when a tool fails, with the tool's output, so a
broken fixture reads as such rather than as a failed assertion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, overload
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    import pytest

REPO = Path(__file__).resolve().parents[1]
BRIDGE = REPO / "bridge_c"
FIXTURES = REPO / "tests" / "fixtures"

ZIG_TARGETS = {
    "x64": "x86_64-windows-gnu",
    "x86": "x86-windows-gnu",
    "arm64": "aarch64-windows-gnu",
}


class ToolError(RuntimeError):
    """A build tool (zig, wixl) failed; the message carries its output."""


def _run_tool(argv: Sequence[str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ToolError(
            f"{what} failed (exit {done.returncode}): {' '.join(map(str, argv))}\n"
            f"{done.stdout}{done.stderr}"
        )


def zig_cc(
    out: Path | None,
    sources: Sequence[Path],
    *args: str,
    output_name: str,
) -> Path:
    """Compile and link ``sources`` with ``zig cc`` into ``out / output_name``.

    ``args`` go to the compiler as given (``-target``, ``-I``, ``-l``...);
    without a ``-target`` the result runs here. ``out=None`` uses a new
    temporary directory.
    """
    directory = Path(tempfile.mkdtemp(prefix="msica-zig-")) if out is None else Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / output_name
    _run_tool(
        [sys.executable, "-m", "ziglang", "cc", "-o", str(output), *map(str, sources), *args],
        "zig cc",
    )
    return output


def payload_probe(out: Path) -> Path:
    """tests/unit/c/payload_probe.exe: the shim's payload and directory code as a program."""
    return zig_cc(
        out,
        [REPO / "tests/unit/c/payload_probe.c", BRIDGE / "msica_payload.c",
         BRIDGE / "msica_inflate.c", BRIDGE / "msica_log.c", BRIDGE / "msica_secure.c"],
        "-target", "x86_64-windows-gnu", "-municode", "-DUNICODE", "-D_UNICODE",
        f"-I{BRIDGE}", "-lmsi", "-lbcrypt", "-ladvapi32",
        output_name="payload_probe.exe",
    )


def build_native_dll(
    tmp: Path,
    source_c: str,
    exports: Sequence[str],
    name: str = "ca",
    *,
    arch: str = "x64",
    libs: Sequence[str] = ("msi",),
) -> Path:
    """A Windows DLL ``tmp/name.dll`` from C text, exporting ``exports`` undecorated.

    The exports are named in a ``.def`` file, so ``UINT __stdcall
    MyAction(MSIHANDLE)`` is exported as ``MyAction`` on every architecture.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    source = tmp / f"{name}.c"
    source.write_text(source_c, encoding="utf-8")
    definition = tmp / f"{name}.def"
    definition.write_text(
        f"LIBRARY {name}\nEXPORTS\n" + "".join(f"{e}\n" for e in exports), encoding="ascii"
    )
    dll = tmp / f"{name}.dll"
    _run_tool(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "-target",
            ZIG_TARGETS[arch],
            "-shared",
            "-O2",
            "-o",
            str(dll),
            str(source),
            str(definition),
            *(f"-l{lib}" for lib in libs),
        ],
        "zig cc (DLL)",
        cwd=tmp,
    )
    return dll


@overload
def wixl_msi(
    wxs: Path, msi: Path, /, *, arch: str = ..., include_dirs: Sequence[Path] = ...
) -> Path: ...
@overload
def wixl_msi(
    tmp: Path, wxs_text: str, name: str, /, *, arch: str = ..., include_dirs: Sequence[Path] = ...
) -> Path: ...
def wixl_msi(
    first: Path,
    second: Path | str,
    name: str | None = None,
    /,
    *,
    arch: str = "x64",
    include_dirs: Sequence[Path] = (),
) -> Path:
    """Compile WiX v3 source with ``wixl -a <arch>``; the .msi's path.

    Either ``wixl_msi(wxs_file, msi_file)``, or ``wixl_msi(tmp, wxs_text,
    name)``, which writes ``tmp/name.wxs`` and builds ``tmp/name.msi``.
    wixl runs in the source's directory and searches it and ``include_dirs``
    for relative ``SourceFile`` and ``<?include?>`` paths.
    """
    if isinstance(second, str):
        if name is None:
            raise TypeError("wixl_msi(tmp, wxs_text, name) needs a name")
        first.mkdir(parents=True, exist_ok=True)
        wxs = first / f"{name}.wxs"
        wxs.write_text(second, encoding="utf-8")
        msi = first / f"{name}.msi"
    else:
        wxs, msi = Path(first), Path(second)
    searched = [wxs.parent, *include_dirs]
    argv = ["wixl", "-a", arch]
    for directory in searched:
        argv += ["-I", str(Path(directory).resolve())]
    argv += ["-o", str(msi.resolve()), str(wxs.resolve())]
    _run_tool(argv, "wixl", cwd=wxs.parent)
    return msi


class Action(NamedTuple):
    """A DLL custom action for :func:`product_wxs`, run only when ``condition`` holds."""

    id: str
    entry: str
    condition: str | None = None


def product_wxs(
    dll: Path,
    actions: Sequence[Action],
    *,
    name: str = "msica test",
    properties: Mapping[str, str] | None = None,
    arch: str = "x64",
) -> str:
    """WiX v3 source of a minimal per-machine product that runs ``actions``.

    One empty folder (a component needs something to install), the DLL as a
    Binary, and each action immediate with ``Return="check"``, sequenced one
    after the other right after CostFinalize (1000). ``Product Id="*"`` gives every build
    its own product code. The Binary names the DLL by file name only (wixl
    0.101 cannot open an absolute ``SourceFile``): build the .msi from the
    DLL's directory, or give :func:`wixl_msi` that directory in ``include_dirs``.
    """
    custom = "".join(
        f'    <CustomAction Id={quoteattr(a.id)} BinaryKey="ActionsDll" '
        f'DllEntry={quoteattr(a.entry)} Execute="immediate" Return="check"/>\n'
        for a in actions
    )
    # Explicit numbers: wixl 0.101 misplaces a chain of After= references.
    sequence = ""
    for number, action in enumerate(actions, start=1001):
        condition = escape(action.condition) if action.condition else ""
        sequence += f'      <Custom Action={quoteattr(action.id)} Sequence="{number}">'
        sequence += f"{condition}</Custom>\n"
    return product_source(
        name,
        f"""    <Binary Id="ActionsDll" SourceFile={quoteattr(dll.name)}/>
{custom}    <InstallExecuteSequence>
{sequence}    </InstallExecuteSequence>
""",
        properties=properties,
        arch=arch,
    )


def wine_command() -> list[str]:
    """The argv prefix that runs a Windows program here: Wine's loader, or nothing."""
    from msica.testing.runner import find_engine

    return find_engine()[:-1]


def windows_path(path: Path) -> str:
    """``path`` as a Windows program under Wine sees it (Wine maps ``/`` to ``Z:``)."""
    if sys.platform == "win32":
        return str(Path(path).resolve())
    return "Z:" + str(Path(path).resolve()).replace("/", "\\")


def run_msiexec(
    msi: Path, log: Path, *arguments: str, verb: str = "/i", timeout: float = 300
) -> int:
    """``msiexec <verb> msi /qn /l*v log arguments...`` straight, without msica's runner.

    Returns the process's exit status (under Wine, the low 8 bits of msiexec's).
    Like msica's runner, it tries again a start that wrote no log (nothing ran).
    """
    from msica.testing.runner import find_engine

    log.unlink(missing_ok=True)
    argv = [*find_engine(), verb, windows_path(msi), "/qn", "/l*v", windows_path(log)]
    for _ in range(3):
        done = subprocess.run(  # no pipes: Wine's services would hold them open
            [*argv, *arguments],
            env={**os.environ, "WINEDEBUG": os.environ.get("WINEDEBUG", "-all")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        if log.is_file():
            break
    return done.returncode


# A custom action DLL for tests of the engine and its log. CopyProps copies
# GREETING and OTHER into RESULT_PROP and RESULT_OTHER and logs two msica
# records, one of them a three-line traceback; FailAction returns 1603;
# SleepAction sleeps ten minutes. The "[\[]" and "[\]]" in a template are
# Windows Installer's escapes for literal brackets.
FIXTURE_ACTIONS_C = r"""
#include <windows.h>
#include <msi.h>
#include <msiquery.h>

static void say(MSIHANDLE install, const wchar_t *template_text, const wchar_t *text)
{
    MSIHANDLE record = MsiCreateRecord(1);
    MsiRecordSetStringW(record, 0, template_text);
    MsiRecordSetStringW(record, 1, text);
    MsiProcessMessage(install, INSTALLMESSAGE_INFO, record);
    MsiCloseHandle(record);
}

static void copy_property(MSIHANDLE install, const wchar_t *from, const wchar_t *to)
{
    static wchar_t value[8192];
    DWORD size = 8192;
    if (MsiGetPropertyW(install, from, value, &size) == ERROR_SUCCESS)
        MsiSetPropertyW(install, to, value);
}

UINT __stdcall CopyProps(MSIHANDLE install)
{
    copy_property(install, L"GREETING", L"RESULT_PROP");
    copy_property(install, L"OTHER", L"RESULT_OTHER");
    say(install, L"[1]", L"msica: CopyProps ran");
    say(install, L"msica[\\[]CopyProps[\\]] [1]",
        L"Traceback (most recent call last):\r\n"
        L"  File \"action.py\", line 3, in CopyProps\r\n"
        L"ValueError: not really");
    return ERROR_SUCCESS;
}

UINT __stdcall FailAction(MSIHANDLE install)
{
    say(install, L"[1]", L"msica: FailAction returns 1603");
    return ERROR_INSTALL_FAILURE;
}

UINT __stdcall SleepAction(MSIHANDLE install)
{
    say(install, L"[1]", L"msica: SleepAction sleeps");
    Sleep(600000);
    return ERROR_SUCCESS;
}
"""
FIXTURE_EXPORTS = ("CopyProps", "FailAction", "SleepAction")
FIXTURE_ACTIONS = (
    Action("CopyProps", "CopyProps"),
    Action("FailAction", "FailAction", "FAIL"),
    Action("SleepAction", "SleepAction", "SLEEP"),
)
FIXTURE_TRACEBACK = (
    "msica[CopyProps] Traceback (most recent call last):\n"
    '  File "action.py", line 3, in CopyProps\n'
    "ValueError: not really"
)


def fixture_msi(tmp: Path, name: str = "msica fixture") -> Path:
    """``tmp/fixture.msi`` running :data:`FIXTURE_ACTIONS` from a freshly built DLL."""
    dll = build_native_dll(tmp, FIXTURE_ACTIONS_C, FIXTURE_EXPORTS, "fixture_actions")
    return wixl_msi(tmp, product_wxs(dll, FIXTURE_ACTIONS, name=name), "fixture")


def msibuild_msi(source: Path, msi: Path, *, template: str | None = None) -> Path:
    """An .msi built by msitools' ``msibuild`` from the ``*.idt`` tables in ``source``.

    ``_ForceCodepage.idt`` goes first; a binary column's files are looked
    up under ``source/<Table>/``, as ``msibuild`` (run in ``source``) expects.
    ``template``: the summary's Template (e.g. ``x64;1033``; msibuild's
    default is ``;1033``).
    """
    tables = sorted(source.glob("*.idt"), key=lambda p: (p.name != "_ForceCodepage.idt", p.name))
    argv: list[str] = ["msibuild", str(Path(msi).resolve())]
    for table in tables:
        argv += ["-i", table.name]
    if template is not None:
        argv += ["-s", Path(msi).stem, "msica", template, "{6D3C5A0E-0B7B-4C35-9E27-1C0F5B1A2D40}"]
    Path(msi).unlink(missing_ok=True)
    _run_tool(argv, "msibuild", cwd=source)
    return Path(msi)


def ice_fixture_msi(name: str, tmp: Path) -> Path:
    """``tmp/<name>.msi`` from tests/fixtures/ice/base plus the changes in ``ice/<name>``.

    See tests/fixtures/ice/README.md; ``clean`` is the base unchanged.
    """
    import shutil

    source = tmp / f"{name}-src"
    shutil.copytree(FIXTURES / "ice" / "base", source)
    changes = FIXTURES / "ice" / name if name != "clean" else None
    if changes is not None:
        for path in changes.iterdir():
            if path.suffix == ".idt" or path.name == "template":
                shutil.copy(path, source / path.name)
            elif path.suffix == ".rows":
                table = source / f"{path.stem}.idt"
                lines = table.read_text(encoding="utf-8").splitlines()
                head, rows = lines[:3], lines[3:]
                for new in path.read_text(encoding="utf-8").splitlines():
                    key = new.split("\t", 1)[0]
                    rows = [r for r in rows if r.split("\t", 1)[0] != key] + [new]
                table.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    template = (source / "template").read_text(encoding="utf-8").strip()
    (source / "template").unlink()
    return msibuild_msi(source, tmp / f"{name}.msi", template=template)

def wixl_fix_types(msi: Path, include: Path) -> list[str]:
    """Run the ``msibuild`` queries an ``msica wxs`` include names on ``msi``.

    wixl 0.101 compiles rollback, commit and the scheduling Execute values as
    immediate and drops HideTarget, TerminalServerAware and PatchUninstall; the
    include carries, as comments, the queries that restore msica's Type numbers.
    Returns the queries run.
    """
    queries = []
    for line in include.read_text(encoding="utf-8").splitlines():
        if "msibuild app.msi -q" in line:
            queries.append(line.split('-q "', 1)[1].rsplit('" -->', 1)[0])
    for query in queries:
        _run_tool(["msibuild", str(msi), "-q", query], "msibuild")
    return queries


def product_source(
    name: str,
    body: str = "",
    *,
    properties: Mapping[str, str] | None = None,
    component: str = "<CreateFolder/>",
    component_id: str = "InstallDir",
    component_guid: str | None = None,
    upgrade: str | None = None,
    version: str = "1.0.0",
    arch: str = "x64",
) -> str:
    """WiX v3 source of a minimal per-machine product named ``name``.

    ``properties`` become Property elements; one folder under Program Files holds
    one component (``component_id``, fresh GUID unless ``component_guid``) whose
    content is the element ``component``; one feature installs it. ``body`` (WiX
    elements, indented four spaces) follows the feature: binaries, actions,
    sequences. ``Product Id="*"`` gives every build its own product code; the
    upgrade code is derived from ``name`` unless given.
    """
    win64 = ' Win64="yes"' if arch != "x86" else ""
    program_files = "ProgramFiles64Folder" if arch != "x86" else "ProgramFilesFolder"
    props = "".join(
        f"    <Property Id={quoteattr(k)} Value={quoteattr(v)}/>\n"
        for k, v in (properties or {}).items()
    )
    upgrade = upgrade or str(uuid.uuid5(uuid.NAMESPACE_URL, "msica-test:" + name))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name={quoteattr(name)} Language="1033" Version="{version}" Manufacturer="msica"
           UpgradeCode="{upgrade}">
    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="product.cab" EmbedCab="yes"/>
{props}    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="{program_files}">
        <Directory Id="INSTALLDIR" Name={quoteattr(name)}>
          <Component Id="{component_id}" Guid="{component_guid or uuid.uuid4()}"{win64}>
            {component}
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="{component_id}"/></Feature>
{body}  </Product>
</Wix>
"""


def unreachable_pip_index(monkeypatch: pytest.MonkeyPatch, retries: int) -> None:
    """Make pip see one index, on a port where nothing listens, and no other source,
    retrying ``retries`` times."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", str(retries))
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
