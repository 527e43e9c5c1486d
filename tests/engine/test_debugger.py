"""MSICA_DEBUG for real: an action of a DLL built with --debug waits for a debugger.

The test plays the debugger: it waits for the action's log line, connects to
the port it names and speaks the Debug Adapter Protocol (initialize, attach, a
function breakpoint on the action, configurationDone), sees the action stop in
its own frame, continues and disconnects. The action then completes and sets
its property. An action MSICA_DEBUG does not name runs without waiting.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from msica.author import wxs
from msica.build import builder, config
from msica.testing import runner
from tests.helpers import FIXTURES, wixl_msi

pytestmark = pytest.mark.engine

ENGINE_TIMEOUT = 180
WAITING = re.compile(r"Debugged is waiting for a debugger on 127\.0\.0\.1:(\d+) "
                     r"\(process \d+\) for 60 s\. In VS Code run an attach configuration: "
                     r"(\{.*\})\r?\n")


@pytest.fixture(scope="module")
def debug_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("debug") / "debug"
    shutil.copytree(FIXTURES / "debug", project)
    [result] = builder.build(project, config.load(project), debug=True)
    wxs.write(result.dll, project / "actions.wxi")
    return wixl_msi(project / "product.wxs", project / "debug.msi")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DapClient:
    """Just enough of a Debug Adapter Protocol client: requests, responses, events."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""
        self.seq = 0
        self.kept: list[dict[str, Any]] = []

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command,
                           "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _message(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"Content-Length: (\d+)", header).group(1))  # type: ignore[union-attr]
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        message: dict[str, Any] = json.loads(body)
        return message

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the debuggee closed the connection")
        self.buffer += chunk

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        return self.response(self.send(command, **arguments))

    def _next(self, wanted: Any) -> dict[str, Any]:
        """The first message, kept or new, for which ``wanted(message)`` holds."""
        for index, message in enumerate(self.kept):
            if wanted(message):
                return self.kept.pop(index)
        while True:
            message = self._message()
            if wanted(message):
                return message
            self.kept.append(message)

    def response(self, seq: int) -> dict[str, Any]:
        message = self._next(lambda m: m["type"] == "response" and m["request_seq"] == seq)
        assert message["success"], message
        return message

    def event(self, name: str) -> dict[str, Any]:
        return self._next(lambda m: m["type"] == "event" and m["event"] == name)


def _wait_for_line(log: Path, install: threading.Thread) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline and install.is_alive():
        if log.exists():
            found = WAITING.search(log.read_bytes().decode("cp1252", "replace"))
            if found:
                return int(found.group(1)), json.loads(found.group(2))
        time.sleep(0.2)
    raise AssertionError(f"no 'waiting for a debugger' line in {log}")


def test_named_action_waits_for_a_debugger_and_runs_under_it(debug_msi: Path) -> None:
    port = _free_port()
    log = debug_msi.with_suffix(".debug.log")
    log.unlink(missing_ok=True)
    results: list[runner.InstallResult] = []
    install = threading.Thread(target=lambda: results.append(runner.install(
        debug_msi, {}, log_path=log, timeout=ENGINE_TIMEOUT,
        env={"MSICA_DEBUG": "Debugged", "MSICA_DEBUG_PORT": str(port),
             "MSICA_DEBUG_TIMEOUT": "60"})))
    install.start()
    try:
        said_port, attach = _wait_for_line(log, install)
        assert said_port == port
        assert (attach["type"], attach["request"]) == ("debugpy", "attach")
        assert attach["connect"] == {"host": "127.0.0.1", "port": port}
        [mapping] = attach["pathMappings"]
        assert mapping["remoteRoot"].endswith("\\lib")
        client = DapClient(port)
        client.request("initialize", clientID="msica-test", adapterID="debugpy",
                       pathFormat="path", linesStartAt1=True, columnsStartAt1=True)
        attach = client.send("attach", justMyCode=False)
        client.event("initialized")
        client.request("setFunctionBreakpoints", breakpoints=[{"name": "Debugged"}])
        client.request("configurationDone")
        client.response(attach)
        stopped = client.event("stopped")["body"]
        frames = client.request("stackTrace", threadId=stopped["threadId"])["body"]
        top = frames["stackFrames"][0]
        assert top["name"] == "Debugged"
        assert top["source"]["path"] == mapping["remoteRoot"] + "\\debug_actions.py"
        client.request("continue", threadId=stopped["threadId"])
        client.send("disconnect", terminateDebuggee=False)  # pydevd closes, no answer
        client.sock.close()
    finally:
        install.join(ENGINE_TIMEOUT)
    [result] = results
    assert result.exit_code == 0, result.log.failed_action
    assert re.fullmatch(r"pid=\d+ debugger=True", result.log.properties["DEBUGGED"])
    [run] = [run for run in result.log.actions if run.name == "Debugged"]
    assert "msica[Debugged] debugger attached to Debugged; running it" in run.lines
    # The action after it, not named, ran without waiting (pydevd stays loaded).
    [other] = [run for run in result.log.actions if run.name == "NotDebugged"]
    assert result.log.properties["NOT_DEBUGGED"].startswith("pid=")
    assert not any("waiting for a debugger" in line for line in other.lines)


def test_action_not_named_does_not_wait(debug_msi: Path) -> None:
    started = time.monotonic()
    result = runner.install(debug_msi, {}, log_path=debug_msi.with_suffix(".other.log"),
                            timeout=ENGINE_TIMEOUT,
                            env={"MSICA_DEBUG": "SomeOtherAction", "MSICA_DEBUG_TIMEOUT": "600"})
    assert result.exit_code == 0
    assert time.monotonic() - started < 300  # far below the 600 s it would have waited
    for run in result.log.actions:
        assert not any("debugger" in line for line in run.lines), run
    assert result.log.properties["DEBUGGED"].endswith("debugger=False")
    assert result.log.properties["NOT_DEBUGGED"].endswith("debugger=False")


def test_without_debugpy_the_action_says_to_rebuild(tmp_path: Path) -> None:
    project = tmp_path / "debug"
    shutil.copytree(FIXTURES / "debug", project)
    [result] = builder.build(project, config.load(project))  # no --debug
    wxs.write(result.dll, project / "actions.wxi")
    msi = wixl_msi(project / "product.wxs", project / "plain.msi")
    # MSICA_DEBUG as a property this time: immediate actions read it there too.
    installed = runner.install(msi, {"MSICA_DEBUG": "*"}, log_path=msi.with_suffix(".log"),
                               timeout=ENGINE_TIMEOUT)
    assert installed.exit_code == 0
    [run] = [run for run in installed.log.actions if run.name == "Debugged"]
    assert any("this DLL has no debugpy: rebuild it with `msica build --debug`" in line
               for line in run.lines)
    assert installed.log.properties["DEBUGGED"].endswith("debugger=False")
