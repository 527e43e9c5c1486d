"""What a Python custom action costs next to a native one, installed with the real engine.

Builds four installers of the same product that differ only in their custom
actions (10 Python no-ops, 1 Python no-op, 10 native C no-ops, 1 native C
no-op), installs each one --reps times with ``msica.testing.runner.install``
(Wine's msiexec off Windows), interleaved and rotated, and reports the
median wall time of each and the overheads derived from them. A benchmark,
not a test: nothing here judges the timings; it refuses to time installs
whose actions failed. See bench/README.md.

It also times ``msica build`` of examples/hello with a warm cache (the
median of --builds runs, each a new process, as a user runs it); with
--rebuild-only it does nothing else.

    python bench/run.py [--reps N] [--builds N] [--json FILE] [--no-trace] [--keep]
    python bench/run.py --rebuild-only [--builds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from msica.author import wxs  # noqa: E402
from msica.build import builder, config, payload  # noqa: E402
from msica.errors import MsicaError  # noqa: E402
from msica.testing import runner  # noqa: E402
from msica.testing.log import read_log  # noqa: E402
from tests.helpers import (  # noqa: E402
    ToolError,
    build_native_dll,
    product_source,
    windows_path,
    wixl_msi,
)

BENCH = Path(__file__).resolve().parent
NOOP_C = BENCH / "noop.c"
PYTHON_VERSION = "3.12"
MANY = 10
TARGETS = {"ratio": 1.15, "warm_ms": 2.0, "cold_ms": 150.0, "rebuild_s": 2.0, "hello_mib": 4.0}
HELLO = REPO / "examples" / "hello"

# The native actions, in the shape `msica wxs` gives the Python ones.
NATIVE_WXI_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<Include xmlns="http://schemas.microsoft.com/wix/2006/wi">
    <Binary Id="native_noop.dll" SourceFile="noop.dll"/>
"""
NATIVE_ACTION = (
    '    <CustomAction Id="{name}" BinaryKey="native_noop.dll" DllEntry="{name}" '
    'Execute="immediate" Impersonate="yes" Return="check"/>\n'
)

PY_ACTION = '''

@custom_action
def {name}(session: Session) -> ActionResult:
    return ActionResult.SUCCESS
'''


class BenchError(RuntimeError):
    """The benchmark cannot give meaningful figures; the message says why."""


@dataclass
class Variant:
    key: str
    label: str
    actions: tuple[str, ...]
    msi: Path
    dll: Path
    times: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        return {
            "median_s": statistics.median(self.times),
            "min_s": min(self.times),
            "max_s": max(self.times),
        }


def action_names(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i:02d}" for i in range(1, count + 1))


def product(directory: Path, key: str) -> Path:
    """``directory/product.wxs`` for variant ``key``: a fixed identity of its own."""
    name = f"msica bench {key}"
    # Every variant is this product; only the included actions.wxi differs.
    text = product_source(
        name,
        "    <?include actions.wxi ?>\n",
        upgrade=str(uuid.uuid5(uuid.NAMESPACE_URL, f"msica-bench-upgrade:{key}")),
        component_guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"msica-bench-component:{key}")),
    )
    path = directory / "product.wxs"
    path.write_text(text, encoding="utf-8")
    return path


def python_variant(root: Path, key: str, label: str, count: int) -> Variant:
    """A project of ``count`` trivial actions, built to a DLL, a .wxi and an .msi."""
    directory = root / key
    directory.mkdir()
    names = action_names("Py", count)
    (directory / "pyproject.toml").write_text(
        f'[project]\nname = "{key}"\nversion = "1.0.0"\n\n'
        f'[tool.msica]\nactions = ["actions"]\npython = "{PYTHON_VERSION}"\narchs = ["x64"]\n',
        encoding="utf-8",
    )
    source = '"""Benchmark actions: each returns at once."""\n\n'
    source += "from msica import ActionResult, Session, custom_action\n"
    source += "".join(PY_ACTION.format(name=name) for name in names)
    (directory / "actions.py").write_text(source, encoding="utf-8")
    project = config.load(directory)
    try:
        results = builder.build(directory, project, output=directory, offline=True)
    except MsicaError:  # not everything cached yet: let the build fetch it
        results = builder.build(directory, project, output=directory)
    dll = results[0].dll
    wxs.write(dll, directory / "actions.wxi")
    msi = wixl_msi(product(directory, key), directory / f"{key}.msi")
    return Variant(key, label, names, msi, dll)


def native_variants(root: Path) -> tuple[Variant, Variant]:
    """One DLL of ten C no-ops; an .msi that runs all ten and one that runs the first."""
    names = action_names("Noop", MANY)
    dll = build_native_dll(root / "native-dll", NOOP_C.read_text(encoding="utf-8"), names,
                           "noop", libs=())
    made = []
    for key, label, count in (("c10", "10 native", MANY), ("c1", "1 native", 1)):
        directory = root / key
        directory.mkdir()
        shutil.copy2(dll, directory / dll.name)
        used = names[:count]
        text = NATIVE_WXI_HEAD + "".join(NATIVE_ACTION.format(name=n) for n in used)
        text += "    <InstallExecuteSequence>\n"
        # Explicit numbers, as `msica wxs` writes: wixl 0.101 misplaces After= chains.
        text += "".join(
            f'        <Custom Action="{n}" Sequence="{number}"/>\n'
            for number, n in enumerate(used, start=1001)
        )
        text += "    </InstallExecuteSequence>\n</Include>\n"
        (directory / "actions.wxi").write_text(text, encoding="utf-8")
        msi = wixl_msi(product(directory, key), directory / f"{key}.msi")
        made.append(Variant(key, label, used, msi, directory / dll.name))
    return made[0], made[1]


def check(result: runner.InstallResult, variant: Variant, what: str) -> None:
    """Refuse an install that failed or whose actions did not all return success."""
    if result.exit_code != 0:
        raise BenchError(
            f"{what} of {variant.msi.name} exited with {result.exit_code}, not 0; "
            f"failed action: {result.log.failed_action}; log: {result.log_path}"
        )
    runs = {run.name: run for run in result.log.actions}
    for name in variant.actions:
        run = runs.get(name)
        if run is None:
            raise BenchError(f"{what} of {variant.msi.name}: action {name} is not in the log "
                             f"{result.log_path}")
        if run.return_value != 1:
            raise BenchError(
                f"{what} of {variant.msi.name}: action {name} {run.outcome} (return value "
                f"{run.return_value}, not 1); log: {result.log_path}"
            )
    bad = [run for run in result.log.actions if run.return_value != 1]
    if bad:
        listed = ", ".join(f"{run.name} ({run.outcome})" for run in bad)
        raise BenchError(f"{what} of {variant.msi.name}: {listed}; log: {result.log_path}")


def install(variant: Variant, logs: Path, what: str) -> float:
    """Install ``variant`` (timed), check it, uninstall it (untimed); the seconds taken."""
    log_path = logs / f"{variant.key}-{what}.log"
    start = time.perf_counter()
    result = runner.install(variant.msi, log_path=log_path)
    elapsed = time.perf_counter() - start
    try:
        check(result, variant, what)
    finally:
        if result.exit_code == 0:
            uninstall(variant, logs, what)
    return elapsed


def uninstall(variant: Variant, logs: Path, what: str) -> None:
    result = runner.install(variant.msi, log_path=logs / f"{variant.key}-{what}-x.log",
                            uninstall=True)
    if result.exit_code != 0:
        raise BenchError(
            f"uninstalling {variant.msi.name} after {what} exited with {result.exit_code}; "
            f"log: {result.log_path}"
        )


def local_appdata() -> Path | None:
    """The Unix directory Windows programs here see as %LOCALAPPDATA% (None: unknown)."""
    if sys.platform == "win32":
        value = os.environ.get("LOCALAPPDATA")
        return Path(value) if value else None
    loader = runner.find_engine()[0]
    env = {**os.environ, "WINEDEBUG": "-all"}
    try:
        shown = subprocess.run([loader, "cmd", "/c", "echo", "%LOCALAPPDATA%"], env=env,
                               capture_output=True, text=True, timeout=120, check=False)
        windows = shown.stdout.strip().splitlines()[-1].strip()
        unix = subprocess.run([loader, "winepath", "-u", windows], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        return Path(unix.stdout.strip().splitlines()[-1].strip())
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def runtime_dir_name(dll: Path) -> str:
    """The directory name the shim unpacks ``dll``'s payload to: 32 hex digits of its hash."""
    return payload.read_trailer(dll.read_bytes()).digest_hex[:32]


def runtime_dir(variant: Variant, appdata: Path | None) -> Path | None:
    """Where the shim unpacks ``variant``'s payload when LOCALAPPDATA is ``appdata``."""
    if appdata is None:
        return None
    return (appdata / "msica" / "runtimes" / runtime_dir_name(variant.dll)).resolve()


def first_install(variant: Variant, logs: Path, scratch: Path, usual: Path | None) -> dict[
        str, Any]:
    """Time an install that has to unpack the runtime, and say how it was made first.

    Two ways at once: LOCALAPPDATA pointed at a fresh directory, and this DLL's
    own runtime directory (its payload hash is this benchmark's alone) removed
    from the usual place, for engines that ignore the variable (Wine sets
    LOCALAPPDATA from its registry in every process). The result says which held.
    """
    name = runtime_dir_name(variant.dll)
    fresh = scratch / "fresh-localappdata"
    fresh.mkdir()
    windows_fresh = ("Z:" + str(fresh).replace("/", "\\")) if sys.platform != "win32" else str(
        fresh)
    target = runtime_dir(variant, usual)
    if target is not None and target.exists():
        shutil.rmtree(target)
    log_path = logs / f"{variant.key}-first.log"
    start = time.perf_counter()
    result = runner.install(variant.msi, log_path=log_path, env={"LOCALAPPDATA": windows_fresh})
    elapsed = time.perf_counter() - start
    check(result, variant, "first install")
    in_fresh = (fresh / "msica" / "runtimes" / name).is_dir()
    in_usual = target is not None and target.is_dir()
    uninstall(variant, logs, "first")  # its action unpacks to the usual place if need be
    if in_fresh:
        how = f"LOCALAPPDATA={windows_fresh} was honoured: unpacked there"
    elif in_usual:
        how = (f"LOCALAPPDATA={windows_fresh} was ignored (the engine's processes take it "
               f"from the registry); unpacked to {target} after removing it beforehand")
    else:
        how = "the unpacked runtime was found in neither place: the figure may not be a first"
    return {"seconds": elapsed, "runtime_dir": name, "how": how,
            "honoured_env": in_fresh, "unpacked": in_fresh or in_usual}


_LOADDLL = re.compile(
    r'^(?P<time>\d+\.\d+):[0-9a-f]+:[0-9a-f]+:trace:loaddll:'
    r'(?:build_module (?P<loaded>Loaded)|free_modref (?P<unloaded>Unloaded)[^"]*) '
    r'L"(?P<path>[^"]+)"'
)
# Windows Installer copies a Binary to a temporary file and loads it from there.
_ACTION_DLL = re.compile(r"\\msi[^\\]*\.tmp$", re.IGNORECASE)
_PYTHON_DLL = re.compile(r"\\python3\d+\.dll$", re.IGNORECASE)


@dataclass
class Trace:
    """When the custom-action server loaded what, from Wine's loaddll channel (seconds)."""

    loads: list[float]  # each load of the action DLL
    unloads: list[float]  # each unload of it
    python: float | None  # python3XY.dll loaded
    extensions: list[tuple[float, str]]  # .pyd files loaded

    def calls(self) -> list[float]:
        """Action DLL loaded to unloaded, for each action: its time in the server's process."""
        return [u - lo for lo, u in zip(self.loads, self.unloads)]

    def intervals(self) -> list[float]:
        """Load-to-next-load after the first action: each later action with the engine's part."""
        return [b - a for a, b in zip(self.loads[1:], self.loads[2:])]


def traced_install(variant: Variant, logs: Path) -> Trace:
    """Install ``variant`` with Wine's loaddll trace on (untimed by us), check, uninstall."""
    log_path = logs / f"{variant.key}-trace.log"
    argv = [*runner.find_engine(), "/i", windows_path(variant.msi), "/qn", "/l*v",
            windows_path(log_path)]
    env = {**os.environ, "WINEDEBUG": "+timestamp,+pid,+loaddll"}
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, errors="replace", timeout=600,
                          check=False)
    result = runner.InstallResult(done.returncode, log_path, read_log(log_path),
                                  tuple(argv), done.returncode)
    try:
        check(result, variant, "traced install")
    finally:
        if result.exit_code == 0:
            uninstall(variant, logs, "trace")
    trace = Trace([], [], None, [])
    for line in done.stderr.splitlines():
        match = _LOADDLL.match(line)
        if not match:
            continue
        when, path = float(match["time"]), match["path"].replace("\\\\", "\\")
        if _ACTION_DLL.search(path):
            (trace.loads if match["loaded"] else trace.unloads).append(when)
        elif match["loaded"] and _PYTHON_DLL.search(path) and trace.python is None:
            trace.python = when
        elif match["loaded"] and path.lower().endswith(".pyd"):
            trace.extensions.append((when, path.rsplit("\\", 1)[-1]))
    return trace


def trace_figures(traces: dict[str, Trace]) -> dict[str, Any]:
    """Per-action costs read from the traces: far less noisy than whole-install times.

    Wine stamps trace lines in whole milliseconds, so a later call's figure is
    a mean over nine calls (each 0 or 1 ms), good to a few tenths.
    """
    figures: dict[str, Any] = {}
    calls = {key: t.calls() for key, t in traces.items()}
    intervals = {key: t.intervals() for key, t in traces.items()}
    if calls["py1"] and calls["c1"]:
        figures["first_call_py1_ms"] = calls["py1"][0] * 1000
        figures["first_call_c1_ms"] = calls["c1"][0] * 1000
        figures["cold_in_process_ms"] = (calls["py1"][0] - calls["c1"][0]) * 1000
    if len(calls["py10"]) > 1 and len(calls["c10"]) > 1:
        py = statistics.fmean(calls["py10"][1:])
        c = statistics.fmean(calls["c10"][1:])
        figures["later_call_py10_ms"] = py * 1000
        figures["later_call_c10_ms"] = c * 1000
        figures["warm_in_process_ms"] = (py - c) * 1000
    if intervals["py10"] and intervals["c10"]:
        py = statistics.median(intervals["py10"])
        c = statistics.median(intervals["c10"])
        figures["later_interval_py10_ms"] = py * 1000
        figures["later_interval_c10_ms"] = c * 1000
        figures["warm_interval_ms"] = (py - c) * 1000
    py1 = traces["py1"]
    if py1.loads and py1.python is not None and py1.unloads:
        figures["py1_phases_ms"] = {
            "action DLL loaded -> python DLL loaded (payload check)":
                (py1.python - py1.loads[0]) * 1000,
            "python DLL loaded -> action DLL unloaded (interpreter, imports, action)":
                (py1.unloads[0] - py1.python) * 1000,
        }
        figures["py1_extensions"] = [
            f"{name} +{(when - py1.python) * 1000:.0f} ms" for when, name in py1.extensions
        ]
    return figures


def wine_version() -> str:
    if sys.platform == "win32":
        return "Windows " + platform.version()
    try:
        done = subprocess.run([runner.find_engine()[0], "--version"], capture_output=True,
                              text=True, timeout=60, check=False)
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def spread(values: Sequence[float], scale: float = 1000, digits: int = 0) -> str:
    """``median (min..max)`` of ``values`` times ``scale``."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid * scale:.{digits}f} ({low * scale:.{digits}f}..{high * scale:.{digits}f})"


def rebuild_figures(scratch: Path, builds: int) -> dict[str, Any]:
    """Time `msica build` of a copy of examples/hello: once with empty derived caches, then
    ``builds`` times with the cache warm. Print the figures; return them for --json."""
    project = scratch / "hello"
    shutil.copytree(HELLO, project, ignore=shutil.ignore_patterns("dist", "*.msi", "*.wxi"))
    command = [sys.executable, "-m", "msica", "build", str(project)]

    def timed(environment: dict[str, str]) -> float:
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=environment,
                              check=False)
        took = time.perf_counter() - began
        if done.returncode != 0:
            raise BenchError(f"msica build failed (exit {done.returncode}): "
                             f"{done.stderr.strip()}")
        return took

    # Downloads (runtimes, wheels and their resolutions) shared, derived files not:
    # the first build after clearing ~/.cache/msica/deflate and stdlib.
    from msica.build.runtime import cache_dir
    cold_cache = scratch / "cold-cache"
    cold_cache.mkdir()
    for name in ("runtimes", "wheels"):
        if (cache_dir() / name).is_dir():
            (cold_cache / name).symlink_to(cache_dir() / name)
    cold = timed({**os.environ, "MSICA_CACHE_DIR": str(cold_cache)})
    timed(dict(os.environ))  # warms the user's cache (and downloads what is missing)
    times = [timed(dict(os.environ)) for _ in range(builds)]
    size = (project / "dist" / "hello.x64.dll").stat().st_size
    median = statistics.median(times)
    print(f"msica build of examples/hello, warm cache, {builds} runs: median {median:.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})   target <= {TARGETS['rebuild_s']} s")
    print(f"  with empty caches of compressed entries and of the stdlib index: {cold:.2f} s")
    print(f"  hello.x64.dll: {size} bytes ({size / 2**20:.2f} MiB)   "
          f"target <= {TARGETS['hello_mib']} MiB")
    return {
        "command": " ".join(["python", "-m", "msica", "build", "<copy of examples/hello>"]),
        "warm_s": times,
        "median_s": median,
        "cold_derived_s": cold,
        "dll_bytes": size,
        "targets": {key: TARGETS[key] for key in ("rebuild_s", "hello_mib")},
    }


def report(variants: dict[str, Variant], first: dict[str, Any], traced: dict[str, Any] | None,
           meta: dict[str, Any]) -> dict[str, Any]:
    """Print the figures; return them for --json."""
    med = {key: statistics.median(v.times) for key, v in variants.items()}
    ratio = med["py10"] / med["c10"]
    cold = med["py1"] - med["c1"]
    warm = ((med["py10"] - med["py1"]) - (med["c10"] - med["c1"])) / (MANY - 1)
    times = {key: v.times for key, v in variants.items()}
    reps = range(len(times["py10"]))
    # The same figures from the four installs of each repetition (run back to back).
    paired = {
        "ratio": [times["py10"][r] / times["c10"][r] for r in reps],
        "cold_s": [times["py1"][r] - times["c1"][r] for r in reps],
        "warm_s": [((times["py10"][r] - times["py1"][r]) - (times["c10"][r] - times["c1"][r]))
                   / (MANY - 1) for r in reps],
    }
    py_size = variants["py10"].dll.stat().st_size
    py1_size = variants["py1"].dll.stat().st_size
    c_size = variants["c10"].dll.stat().st_size

    print()
    print(f"msica bench, {meta['date']}: {meta['reps']} timed installs of each variant, "
          f"{meta['engine']}")
    print(f"{'variant':<11} {'median ms':>9} {'min ms':>7} {'max ms':>7}  each install (ms)")
    for v in variants.values():
        each = " ".join(ms(t) for t in v.times)
        print(f"{v.label:<11} {ms(med[v.key]):>9} {ms(min(v.times)):>7} {ms(max(v.times)):>7}  "
              f"{each}")
    print()
    print(f"ratio median(10 Python) / median(10 native)     {ratio:6.2f}     "
          f"target <= {TARGETS['ratio']}")
    print(f"cold overhead per action (1 Py - 1 native)      {cold * 1000:6.0f} ms  "
          f"target <= {TARGETS['cold_ms']:.0f} ms")
    print(f"warm overhead per action ((10-1 Py)-(10-1 nat))/9 {warm * 1000:4.1f} ms  "
          f"target <= {TARGETS['warm_ms']:.0f} ms")
    print("  the same, per repetition, median (min..max): ratio "
          f"{spread(paired['ratio'], 1, 2)}, cold {spread(paired['cold_s'])} ms, "
          f"warm {spread(paired['warm_s'], digits=1)} ms")
    if traced:
        print("from Wine's loaddll trace of one more install of each (no whole-install noise):")
        if "cold_in_process_ms" in traced:
            print(f"  first call, action DLL loaded..unloaded: 1 Python "
                  f"{traced['first_call_py1_ms']:.0f} ms, 1 native "
                  f"{traced['first_call_c1_ms']:.0f} ms -> cold overhead in the process "
                  f"{traced['cold_in_process_ms']:.0f} ms")
        for phase, value in traced.get("py1_phases_ms", {}).items():
            print(f"    {phase}: {value:.0f} ms")
        if traced.get("py1_extensions"):
            print(f"    extension modules loaded: {', '.join(traced['py1_extensions'])}")
        if "warm_in_process_ms" in traced:
            print(f"  calls 2-10, action DLL loaded..unloaded, mean: 10 Python "
                  f"{traced['later_call_py10_ms']:.1f} ms, 10 native "
                  f"{traced['later_call_c10_ms']:.1f} ms -> warm overhead in the process "
                  f"{traced['warm_in_process_ms']:.1f} ms")
        if "warm_interval_ms" in traced:
            print(f"  calls 2-10, load to next load (engine included), median: 10 Python "
                  f"{traced['later_interval_py10_ms']:.0f} ms, 10 native "
                  f"{traced['later_interval_c10_ms']:.0f} ms")
    print(f"Python DLL: {py_size} bytes ({py_size / 2**20:.2f} MiB) with 10 actions, "
          f"{py1_size} bytes with 1; native DLL: {c_size} bytes")
    print(f"first install on this machine (unpacks runtime), 1 Python action: "
          f"{first['seconds'] * 1000:.0f} ms")
    print(f"  {first['how']}")
    print("note: the very first Python install on a machine also unpacks the runtime (once per "
          "payload hash).\n  Every timed install ran after an untimed warm-up install of its own "
          ".msi, so 'cold' means\n  a new custom-action process with the runtime already "
          "unpacked.")
    return {
        "meta": meta,
        "variants": {
            key: {"label": v.label, "actions": len(v.actions), "times_s": v.times, **v.stats()}
            for key, v in variants.items()
        },
        "ratio_py10_over_c10": ratio,
        "cold_overhead_per_action_ms": cold * 1000,
        "warm_overhead_per_action_ms": warm * 1000,
        "per_repetition": {
            "ratio": paired["ratio"],
            "cold_ms": [x * 1000 for x in paired["cold_s"]],
            "warm_ms": [x * 1000 for x in paired["warm_s"]],
        },
        "trace": traced,
        "targets": TARGETS,
        "python_dll_bytes": py_size,
        "python_dll_mib": py_size / 2**20,
        "python_1_action_dll_bytes": py1_size,
        "native_dll_bytes": c_size,
        "first_install": first,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed installs per variant (7)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the four installs traced with WINEDEBUG=+loaddll (Wine only)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the build directory, the logs and the unpacked runtimes")
    parser.add_argument("--builds", type=int, default=5,
                        help="timed warm `msica build` runs of examples/hello (5)")
    parser.add_argument("--rebuild-only", action="store_true",
                        help="only time `msica build` of examples/hello (no installs)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.builds < 1:
        parser.error("--reps and --builds must be at least 1")

    began = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="msica-bench-"))
    if args.rebuild_only:
        try:
            rebuild = rebuild_figures(scratch, args.builds)
        except BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps({"rebuild": rebuild}, indent=2) + "\n",
                                 encoding="utf-8")
            print(f"wrote {args.json}")
        return 0
    try:
        print(f"building the four installers in {scratch} ...", flush=True)
        py10 = python_variant(scratch, "py10", "10 Python", MANY)
        py1 = python_variant(scratch, "py1", "1 Python", 1)
        c10, c1 = native_variants(scratch)
        variants = {v.key: v for v in (py10, py1, c10, c1)}
        logs = scratch / "logs"
        logs.mkdir()
        built = time.perf_counter() - began

        print("first install (unpacks the runtime) ...", flush=True)
        usual = local_appdata()
        first = first_install(py1, logs, scratch, usual)
        print("warm-up: one untimed install of each .msi ...", flush=True)
        for v in (py1, py10, c10, c1):  # py10's payload has its own hash: it unpacks too
            install(v, logs, "warmup")
        order = list(variants.values())
        for rep in range(args.reps):
            shift = rep % len(order)
            rotated = order[shift:] + order[:shift]
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(v.key for v in rotated), flush=True)
            for v in rotated:
                v.times.append(install(v, logs, f"rep{rep + 1}"))
        traced = None
        if not args.no_trace and sys.platform != "win32":
            print("traced installs ...", flush=True)
            traced = trace_figures({v.key: traced_install(v, logs) for v in order})

        meta = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(["python", "bench/run.py",
                                 *(sys.argv[1:] if argv is None else argv)]),
            "reps": args.reps,
            "engine": wine_version(),
            "host": f"{platform.system()} {platform.release()} {platform.machine()}, "
                    f"{os.cpu_count()} CPUs",
            "python_runtime": PYTHON_VERSION,
            "build_seconds": built,
        }
        figures = report(variants, first, traced, meta)
        figures["rebuild"] = rebuild_figures(scratch, args.builds)
        total = time.perf_counter() - began
        figures["meta"]["total_seconds"] = total
        print(f"total time {total:.0f} s (building {built:.0f} s)")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.json}")
    except (BenchError, MsicaError, ToolError) as error:
        print(f"bench: {error}", file=sys.stderr)
        print(f"bench: kept {scratch} for a look", file=sys.stderr)
        return 1
    if args.keep:
        print(f"kept {scratch}")
    else:
        # The runtimes this run unpacked are this benchmark's alone (their payloads hold its
        # actions): leave the machine's runtime directory as it was.
        for v in (py1, py10):
            unpacked = runtime_dir(v, usual)
            if unpacked is not None:
                shutil.rmtree(unpacked, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
