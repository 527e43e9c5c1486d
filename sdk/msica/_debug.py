"""``MSICA_DEBUG``: make an action wait for a debugger before it runs.

Set ``MSICA_DEBUG`` to the action's name (or ``*`` for every action) in the
environment of msiexec, or as a property on its command line (read only by
immediate actions), and install a DLL built with ``msica build --debug``, which
bundles debugpy. The action then listens on 127.0.0.1, port ``MSICA_DEBUG_PORT``
(default 5678), says in the MSI log where to attach, and waits up to
``MSICA_DEBUG_TIMEOUT`` seconds (default 300) for a client before it runs on.

debugpy normally starts its adapter as a separate ``python.exe``; inside the
custom-action server ``sys.executable`` is the server itself and the payload
carries no python.exe, so the adapter runs in the action's process
(``in_process_debug_adapter``): the client speaks to it directly.

Only called for an action whose name is asked for; nothing is imported
otherwise, so the cold path of every other action stays as it was.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from msica.session import Session

DEFAULT_PORT = 5678
DEFAULT_TIMEOUT = 300.0
HOST = "127.0.0.1"

_listening: tuple[str, int] | None = None


def requested(session: Session, entry: str) -> bool:
    """Whether MSICA_DEBUG (environment, else property) names ``entry`` or is ``*``."""
    wanted = os.environ.get("MSICA_DEBUG", "")
    if not wanted:
        try:
            wanted = session.get("MSICA_DEBUG", "")
        except Exception:  # a deferred action may not read properties: not asked
            return False
    names = {name.strip() for name in wanted.split(",")}
    return "*" in names or entry in names


def _setting(session: Session, name: str, default: float) -> float:
    text = os.environ.get(name, "")
    if not text:
        try:
            text = session.get(name, "")
        except Exception:
            text = ""
    try:
        return float(text) if text else default
    except ValueError:
        session.log(f"{name}={text!r} is not a number; using {default:g}")
        return default


def wait_if_asked(session: Session, entry: str) -> None:
    """If MSICA_DEBUG names ``entry``, wait for a debugger (never raises)."""
    if not requested(session, entry):
        return
    try:
        _wait(session, entry)
    except Exception as error:  # debugging must never be why an install fails
        session.log(f"debugging {entry} failed ({error!r}); running it without")


def _wait(session: Session, entry: str) -> None:
    global _listening
    # pydevd asks platform.machine(), which CPython 3.12+ answers through WMI (_wmi),
    # and WMI aborts the process under Wine 8 (measured: propsys.VariantToString is
    # unimplemented). Without _wmi, platform falls back to the registry and environment.
    if "_wmi" not in sys.modules:
        sys.modules["_wmi"] = None  # type: ignore[assignment]
    try:
        import debugpy  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        session.log(
            f"MSICA_DEBUG asks to debug {entry}, but this DLL has no debugpy: "
            "rebuild it with `msica build --debug`. Running it without a debugger."
        )
        return
    port = int(_setting(session, "MSICA_DEBUG_PORT", DEFAULT_PORT))
    timeout = _setting(session, "MSICA_DEBUG_TIMEOUT", DEFAULT_TIMEOUT)
    if _listening is None:
        try:
            host, port = debugpy.listen((HOST, port), in_process_debug_adapter=True)
        except Exception as error:
            session.log(
                f"{entry} cannot listen for a debugger on {HOST}:{port} ({error}): another "
                "process, such as the other custom-action server, may hold the port; name "
                "one action in MSICA_DEBUG or set MSICA_DEBUG_PORT. Running it without."
            )
            return
        _listening = (str(host), int(port))
    host, port = _listening
    if debugpy.is_client_connected():
        session.log(f"{entry} runs under the debugger attached at {host}:{port}")
        return
    import json

    attach: dict[str, object] = {
        "name": f"Attach to {entry}", "type": "debugpy", "request": "attach",
        "connect": {"host": host, "port": port}, "justMyCode": False,
    }
    remote_root = _source_root(entry)
    if remote_root:
        attach["pathMappings"] = [{"localRoot": "${workspaceFolder}", "remoteRoot": remote_root}]
    session.log(
        f"{entry} is waiting for a debugger on {host}:{port} (process {os.getpid()}) "
        f"for {timeout:g} s. In VS Code run an attach configuration: {json.dumps(attach)}"
    )
    import contextlib
    import threading

    def give_up() -> None:
        with contextlib.suppress(RuntimeError):  # not waiting (yet, or any more)
            debugpy.wait_for_client.cancel()

    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    try:
        debugpy.wait_for_client()
    finally:
        timer.cancel()
    if debugpy.is_client_connected():
        session.log(f"debugger attached to {entry}; running it")
    else:
        session.log(f"no debugger attached to {entry} within {timeout:g} s; running it")


def _source_root(entry: str) -> str:
    """The directory the action's modules run from (``lib`` of the unpacked runtime),
    which an editor maps to the project's sources; "" when unknown."""
    modules = getattr(sys.modules.get("_msica_payload"), "ACTIONS", {})
    name = modules.get(entry)
    module = sys.modules.get(name) if name else None
    path = getattr(module, "__file__", None)
    if not name or not isinstance(path, str):
        return ""
    depth = name.count(".") + (1 if path.endswith("__init__.py") else 0)
    root = os.path.dirname(path)
    for _ in range(depth):
        root = os.path.dirname(root)
    return root
