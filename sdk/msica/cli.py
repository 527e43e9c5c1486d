"""The ``msica`` command. Only :func:`main` prints or exits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from msica.errors import ConfigError, MsicaError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="msica: %(message)s",
        stream=sys.stderr,
    )
    progress = logging.getLogger("msica.progress")
    line = _ProgressLine(sys.stderr) if args.command == "build" and not args.quiet else None
    if line is not None:
        progress.addHandler(line)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    try:
        return int(args.run(args))
    except MsicaError as error:
        if line is not None:
            line.finish()
        print(f"msica: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        if line is not None:
            line.finish()
        print("msica: interrupted", file=sys.stderr)
        return 130
    finally:
        if line is not None:
            progress.removeHandler(line)
            progress.setLevel(logging.NOTSET)
            progress.propagate = True


class _ProgressLine(logging.Handler):
    """Renders ``msica.progress`` records: one live line on a terminal, else plain lines
    for the start and the end of each step."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.live = stream.isatty()
        self.started: set[str] = set()
        self.open = False

    def finish(self) -> None:
        """End a live line left open by a step that did not finish."""
        if self.live and self.open:
            self.stream.write("\n")
            self.open = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            step = str(getattr(record, "msica_step", record.getMessage()))
            done = getattr(record, "msica_done", 0)
            total = getattr(record, "msica_total", None)
            seconds = getattr(record, "msica_seconds", None)
            if getattr(record, "msica_end", False):
                timing = f" ({seconds:.1f} s)" if seconds is not None else ""
                text, final = f"{step}: done{timing}", True
            else:
                count = f" {done}/{total}" if total else ""
                text, final = f"{step}...{count}", False
            if self.live:
                self.stream.write(f"\r\x1b[Kmsica: {text}" + ("\n" if final else ""))
                self.open = not final
            elif final or step not in self.started:
                self.stream.write(f"msica: {text.removesuffix(f' {done}/{total}')}\n")
            self.started.add(step)
            if final:
                self.started.discard(step)
            self.stream.flush()
        except Exception:  # pragma: no cover - never let display break a build
            self.handleError(record)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msica", description="Windows Installer custom actions in Python."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say what is being done")
    parser.add_argument("--version", action="version", version=f"msica {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from msica.build.config import help_text

    build = commands.add_parser(
        "build",
        help="build the project's actions into <name>.<arch>.dll",
        description="Build the @custom_action functions of a project into a DLL per arch.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("project", nargs="?", default=".", type=Path,
                       help="directory with pyproject.toml (default: .)")
    build.add_argument("--arch", action="append", choices=("x64", "x86", "arm64"),
                       help="build only this arch (repeatable; default: [tool.msica] archs)")
    build.add_argument("--runtime", type=Path, help="embeddable CPython zip or directory")
    build.add_argument("--offline", action="store_true",
                       help="never touch the network: use the runtime and wheels cached before")
    build.add_argument("--allow-unsigned-runtime", action="store_true",
                       help="bundle a runtime whose DLLs the PSF did not sign (as the key)")
    build.add_argument("-o", "--output", type=Path, help="directory for the DLLs")
    build.add_argument("-q", "--quiet", action="store_true",
                       help="no progress on stderr (errors still show)")
    build.set_defaults(run=_build)

    wxs = commands.add_parser(
        "wxs",
        help="write the WiX source that adds a DLL's actions to an installer",
        description="Write the Binary, CustomAction and InstallExecuteSequence elements "
        "for an msica DLL (WiX v3 schema).",
    )
    wxs.add_argument("dll", type=Path, help="a DLL written by msica build")
    wxs.add_argument("-o", "--output", type=Path,
                     help="file to write (default: <dll name>.wxi, or .wxs for a fragment)")
    wxs.add_argument("--style", choices=("include", "fragment"), default="include",
                     help="include: <?include?> it in <Product> (wixl, WiX v3); "
                     "fragment: a WiX v3 <Fragment> (default: include)")
    wxs.add_argument("--source-file",
                     help="SourceFile text for the Binary (default: the DLL's path "
                     "relative to the output file)")
    wxs.set_defaults(run=_wxs)

    run = commands.add_parser(
        "run",
        help="install an .msi with the real engine and report what its actions did",
        description="Install (or uninstall) an .msi with msiexec (wine64 msiexec on Linux), "
        "verbose log on, and report the exit code, each action's result and the msica "
        "actions' log lines.",
    )
    run.add_argument("msi", type=Path)
    run.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                     help="a property for the command line (repeatable)")
    run.add_argument("--uninstall", action="store_true", help="uninstall instead (/x)")
    run.add_argument("--log", type=Path, help="where to keep the verbose log")
    run.add_argument("--show-property", action="append", default=[], metavar="NAME",
                     help="print this property's final value (repeatable)")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.set_defaults(run=_run)
    return parser


def _version() -> str:
    import msica

    return str(msica.__version__)


def _build(args: argparse.Namespace) -> int:
    from msica.build import builder, config

    project = args.project.resolve()
    results = builder.build(
        project,
        config.load(project),
        archs=tuple(args.arch) if args.arch else None,
        runtime_path=args.runtime,
        offline=args.offline,
        output=args.output,
        allow_unsigned_runtime=args.allow_unsigned_runtime,
    )
    for result in results:
        names = ", ".join(item.action.name for item in result.actions)
        size = result.dll.stat().st_size
        print(f"{result.dll} ({result.arch}, Python {result.runtime.version[0]}."
              f"{result.runtime.version[1]}, {size / 1048576:.1f} MiB): {names}")
    return 0


def _wxs(args: argparse.Namespace) -> int:
    from msica.author import wxs

    suffix = ".wxi" if args.style == "include" else ".wxs"
    output = args.output or args.dll.with_suffix(suffix)
    wxs.write(args.dll, output, style=args.style, source_file=args.source_file)
    print(output)
    return 0


def _run(args: argparse.Namespace) -> int:
    from msica.testing import runner

    properties = {}
    for item in args.property:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"-p {item!r}: write NAME=VALUE")
        properties[name] = value
    result = runner.install(args.msi, properties, log_path=args.log, uninstall=args.uninstall)
    summary = result.log
    if args.json:
        document = {
            "exit_code": result.exit_code,
            "log": str(result.log_path),
            "failed_action": summary.failed_action,
            "actions": [
                {"name": run.name, "return_value": run.return_value, "outcome": run.outcome,
                 "msica_lines": [line for line in run.lines if line.startswith("msica")]}
                for run in summary.actions
            ],
            "properties": {name: summary.properties.get(name) for name in args.show_property},
        }
        print(json.dumps(document, indent=2))
    else:
        verb = "uninstall" if args.uninstall else "install"
        print(f"{verb} of {args.msi}: exit code {result.exit_code} (log: {result.log_path})")
        for run in summary.actions:
            lines = [line for line in run.lines if line.startswith("msica")]
            if lines:
                print(f"  {run.name} {run.outcome}:")
                for line in lines:
                    for part in line.splitlines():
                        print(f"    {part}")
        for name in args.show_property:
            print(f"  property {name} = {summary.properties.get(name, '')!r}")
        if summary.failed_action:
            print(f"  failed action: {summary.failed_action}")
    return 0 if result.succeeded else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
