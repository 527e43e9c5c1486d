"""The ``msica`` command. Only :func:`main` prints or exits."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

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

    build = _command(
        commands, "build", _build,
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
    build.add_argument("--debug", action="store_true",
                       help="bundle debugpy, so that MSICA_DEBUG=<action> makes that action "
                       "wait for a debugger (see README, Debugging)")
    build.add_argument("-q", "--quiet", action="store_true",
                       help="no progress on stderr (errors still show)")

    wxs = _command(
        commands, "wxs", _wxs,
        help="write the WiX source that adds a DLL's actions to an installer",
        description="Write the Binary, CustomAction and InstallExecuteSequence elements "
        "for an msica DLL (WiX v3 include or fragment, or a WiX v4 fragment).",
    )
    wxs.add_argument("dll", type=Path, help="a DLL written by msica build")
    wxs.add_argument("-o", "--output", type=Path,
                     help="file to write (default: <dll name>.wxi, or .wxs for a fragment)")
    wxs.add_argument("--wix", type=int, choices=(3, 4), default=3,
                     help="WiX schema version: 3 (wixl, WiX v3) or 4 (WiX v4 and later); "
                     "default: 3")
    wxs.add_argument("--style", choices=("include", "fragment"),
                     help="WiX v3 only: include (<?include?> it in <Product>; wixl) or "
                     "fragment (a <Fragment> for candle/light); default: include")
    wxs.add_argument("--source-file",
                     help="SourceFile text for the Binary (default: the DLL's path "
                     "relative to the output file)")

    inject = _command(
        commands, "inject", _inject,
        help="add a DLL's actions to an existing .msi",
        description="Add the Binary, CustomAction and InstallExecuteSequence rows for msica "
        "DLLs to an .msi, through the platform's MSI library. Injecting the same DLL again "
        "replaces its rows; on any error the .msi is left unchanged.",
    )
    inject.add_argument("msi", type=Path, help="the .msi to change")
    inject.add_argument("--dll", action="append", required=True, type=Path,
                        help="a DLL written by msica build (repeatable)")
    inject.add_argument("--sequence", action="append", default=[],
                        metavar="NAME=after:ACTION|before:ACTION|NUMBER",
                        help="where to sequence an action, overriding its after=/before= "
                        "(repeatable)")
    inject.add_argument("-o", "--output", type=Path,
                        help="write the result here and leave the .msi as it is")

    run = _command(
        commands, "run", _run,
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
    _add_report_options(run, "print the result as JSON: exit code, every action with its "
                        "return value, msica lines and traceback, the failed action, all "
                        "final properties")

    new = _command(
        commands, "new", _new,
        help="create a custom-action project from msica's template",
        description="Create a project: actions (immediate, deferred with its data, rollback), "
        "unit and engine tests, WiX v4 and wixl sources, and a CI workflow for Windows and "
        "Linux. Asks for each value unless --no-input.",
    )
    new.add_argument("name", nargs="?",
                     help="the product's name; its slug names the package, the DLL and the "
                     "project directory (default: asked, or 'My Installer')")
    new.add_argument("-o", "--output", type=Path, default=Path("."),
                     help="directory to create the project in (default: .)")
    new.add_argument("--no-input", action="store_true",
                     help="ask nothing: NAME, --set values and the template's defaults")
    new.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                     help="a template value (repeatable): project_slug, description, "
                     "manufacturer, version, python")

    log = _command(
        commands, "log", _log,
        help="summarize a verbose MSI log and point at the action that failed",
        description="Read a verbose log (msiexec /l*v, Windows or Wine, any encoding) and "
        "report what msica run reports: each action's result, the msica actions' lines, the "
        "failed action with its traceback, and the final properties (with --json).",
    )
    log.add_argument("file", type=Path, help="the log file")
    _add_report_options(log, "print the summary as JSON")

    inspect = _command(
        commands, "inspect", _inspect,
        help="list an .msi's custom actions: type in words, sequencing, msica DLLs",
        description="Read an .msi (no Windows needed) and describe every custom action: "
        "its Type decoded (what Source and Target hold, immediate or deferred, "
        "impersonation, return handling, flags), each sequence that runs it with its "
        "number and condition, and whether its DLL is an msica DLL (Python version, actions).",
    )
    inspect.add_argument("msi", type=Path)
    _add_json(inspect, "print the report as JSON")

    validate = _command(
        commands, "validate", _validate,
        help="check an .msi's custom actions as ICE12/27/63/68/72/77/80/82/93 do",
        description="Check the custom actions of an .msi the way the ICE12, ICE27, ICE63, "
        "ICE68, ICE72, ICE77, ICE80, ICE82 and ICE93 validators do. Exit status: 1 when "
        "there is an error, 0 otherwise (warnings too, unless --strict); 7 when the file is "
        "not a readable .msi.",
    )
    validate.add_argument("msi", type=Path)
    _add_json(validate, "print the findings as JSON")
    validate.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    return parser


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             run: Callable[[argparse.Namespace], int], **options: Any) -> argparse.ArgumentParser:
    """Subcommand ``name``, handled by ``run``; ``options`` as for ``add_parser``."""
    parser = commands.add_parser(name, **options)
    parser.set_defaults(run=run)
    return parser


def _add_json(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--json", action="store_true", help=text)


def _add_report_options(parser: argparse.ArgumentParser, json_help: str) -> None:
    """The options of the commands that report an install: run and log."""
    parser.add_argument("--show-property", action="append", default=[], metavar="NAME",
                        help="print this property's final value (repeatable)")
    _add_json(parser, json_help)


def _print_report(args: argparse.Namespace, data: object, render: Callable[[], str],
                  end: str = "\n", ensure_ascii: bool = False) -> None:
    """Print ``data`` as JSON under --json, else the text ``render`` makes."""
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=ensure_ascii))
    else:
        print(render(), end=end)


def _assignments(items: Sequence[str], option: str, form: str) -> dict[str, str]:
    """Parse repeated ``NAME=VALUE`` options; ``form`` names the parts in the error."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{option} {item!r}: write {form}")
        values[name] = value
    return values


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
        debug=args.debug,
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

    include = args.wix == 3 and args.style in (None, "include")
    output = args.output or args.dll.with_suffix(".wxi" if include else ".wxs")
    wxs.write(args.dll, output, style=args.style, source_file=args.source_file, wix=args.wix)
    print(output)
    return 0


def _inject(args: argparse.Namespace) -> int:
    from msica.author import inject

    result = inject.inject(args.msi, args.dll, output=args.output,
                           placements=inject.parse_placements(args.sequence))
    for row in result.sequence:
        condition = f" if {row.condition}" if row.condition else ""
        print(f"{row.sequence:>6}  {row.action}{condition}")
    replaced = f", replacing {len(result.replaced)}" if result.replaced else ""
    print(f"{result.output}: {len(result.custom_actions)} custom actions from "
          f"{', '.join(result.binaries)}{replaced}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from msica.testing import report, runner

    properties = _assignments(args.property, "-p", "NAME=VALUE")
    result = runner.install(args.msi, properties, log_path=args.log, uninstall=args.uninstall)
    data = report.document(result.log, log_path=result.log_path, exit_code=result.exit_code,
                           command=result.command)
    verb = "uninstall" if args.uninstall else "install"
    _print_report(args, data, lambda: report.render(data, title=f"{verb} of {args.msi}",
                                                    show_properties=args.show_property))
    return 0 if result.succeeded else 1


def _new(args: argparse.Namespace) -> int:
    from msica.author import new

    settings = _assignments(args.settings, "--set", "KEY=VALUE")
    project = new.create(args.output, name=args.name, settings=settings,
                         no_input=args.no_input)
    print(project)
    print(f"next: cd {project}, then follow its README.md (build, install, test)")
    return 0


def _log(args: argparse.Namespace) -> int:
    from msica.testing import report
    from msica.testing.log import read_log

    try:
        summary = read_log(args.file)
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror}: give a verbose log "
                          "(msiexec /l*v FILE)") from None
    if not summary.actions and not summary.properties:
        raise ConfigError(f"{args.file} holds no actions and no properties: give a verbose "
                          "log (msiexec /l*v FILE)")
    data = report.document(summary, log_path=args.file)
    _print_report(args, data, lambda: report.render(data, title=f"log {args.file}",
                                                    show_properties=args.show_property))
    return 0 if data["succeeded"] else 1


def _inspect(args: argparse.Namespace) -> int:
    from msica.author import inspect

    report = inspect.inspect(args.msi)
    _print_report(args, inspect.to_json(report), lambda: inspect.render(report), end="",
                  ensure_ascii=True)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from msica.author import validate

    result = validate.validate(args.msi)
    _print_report(args, validate.to_json(result), lambda: validate.render(result), end="",
                  ensure_ascii=True)
    return result.exit_code(strict=args.strict)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
