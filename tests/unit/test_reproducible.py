"""Builds are small, reproducible and say what they hold.

- The same inputs give the same bytes: from two directories, with other file
  times, with the caches of compressed entries and of the stdlib index cold
  or warm.
- examples/hello, a stdlib-only project, stays within 4 MiB (a budget: the
  size is deterministic, unlike a time).
- msica.json names the runtime and its hash, the stdlib modules packed, each
  bundled wheel with its version and SHA-256, and every action's type.
- A resolution of wheels is reused without pip while its wheels are cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from msica.build import builder, config, payload, runtime
from tests.helpers import REPO

HELLO = REPO / "examples" / "hello"
BUDGET = 4 * 1024 * 1024


def _copy(source: Path, target: Path, mtime: float) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("dist", "*.msi", "*.wxi"))
    for path in target.rglob("*"):
        os.utime(path, (mtime, mtime))
    return target


def _cold_cache(tmp: Path) -> Path:
    """A cache with the user's downloads (runtimes, wheels) but no derived files."""
    cache = tmp / "cache"
    cache.mkdir()
    user = runtime.cache_dir()
    for name in ("runtimes", "wheels"):
        if (user / name).is_dir():
            (cache / name).symlink_to(user / name)
    return cache


def _build(project: Path, output: Path) -> bytes:
    (result,) = builder.build(project, config.load(project), output=output)
    return result.dll.read_bytes()


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("hello")
    return _build(_copy(HELLO, tmp / "hello", 1_000_000_000), tmp / "out")


def test_two_builds_from_two_places_are_identical(
    hello: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSICA_CACHE_DIR", str(_cold_cache(tmp_path)))
    project = _copy(HELLO, tmp_path / "elsewhere" / "other-name", 1_700_000_000)
    cold = _build(project, tmp_path / "cold")
    assert list((tmp_path / "cache").glob("deflate/*/*.deflate"))  # the cold build filled it
    warm = _build(project, tmp_path / "warm")
    assert cold == hello
    assert warm == hello


def test_a_changed_source_changes_the_dll(hello: bytes, tmp_path: Path) -> None:
    project = _copy(HELLO, tmp_path / "hello", 1_000_000_000)
    actions = project / "actions.py"
    actions.write_text(actions.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert _build(project, tmp_path / "out") != hello


def test_hello_stays_within_four_mib(hello: bytes) -> None:
    assert len(hello) <= BUDGET, f"{len(hello)} bytes: {len(hello) - BUDGET} over the budget"


def test_the_manifest_says_what_the_dll_holds(hello: bytes) -> None:
    files = payload.read_entries(hello, payload.read_trailer(hello))
    document = json.loads(files[builder.MANIFEST])
    rt = runtime.get_runtime((3, 12), "x64")
    assert document["python"] == "3.12"
    assert document["runtime"]["sha256"] == rt.sha256
    assert document["runtime"]["source"] == rt.source
    for name, digest in document["runtime"]["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    assert "python312.zip" in document["runtime"]["files"]
    assert {"encodings", "codecs", "re", "traceback"} <= set(document["stdlib"])
    assert "json" not in document["stdlib"]
    (cffi,) = document["dependencies"]
    assert cffi["name"] == "cffi" and cffi["version"]
    assert cffi["packed"] == "_cffi_backend only"
    wheel = runtime.cache_dir() / "wheels" / "cp312-win_amd64" / cffi["wheel"]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == cffi["sha256"]
    assert document["compression"].startswith("zlib ")
    actions = {action["name"]: action for action in document["actions"]}
    assert set(actions) == {"SayHello", "MeasureGreeting"}
    assert actions["SayHello"]["type"] == 1  # immediate, checked, in a DLL
    # Only cffi's compiled backend is packed for msica itself.
    assert any(name.startswith("lib/_cffi_backend.") for name in files)
    assert not any(name.startswith(("lib/cffi/", "lib/pycparser/")) for name in files)


def _no_pip(arguments: object) -> NoReturn:
    raise AssertionError(f"pip was run: {arguments}")


def test_a_resolution_is_reused_while_its_wheels_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = runtime.get_wheels(["cffi"], (3, 12), "x64", offline=True)
    (record,) = [
        path for path in (runtime.cache_dir() / "wheels" / "cp312-win_amd64" / ".resolved").glob(
            "*.json")
        if {item["wheel"] for item in json.loads(path.read_text())}
        == {wheel.name for wheel in first}
    ]
    os.utime(record)  # fresh
    monkeypatch.setattr(runtime, "_pip", _no_pip)
    assert runtime.get_wheels(["cffi"], (3, 12), "x64") == first  # online, yet no pip
    monkeypatch.setenv("MSICA_RESOLUTION_TTL", "0")
    with pytest.raises(AssertionError, match="pip was run"):
        runtime.get_wheels(["cffi"], (3, 12), "x64")
    monkeypatch.delenv("MSICA_RESOLUTION_TTL")
    # A recorded wheel that changed in the cache is never reused.
    chosen = json.loads(record.read_text())
    chosen[0]["sha256"] = "0" * 64
    record.write_text(json.dumps(chosen))
    with pytest.raises(AssertionError, match="pip was run"):
        runtime.get_wheels(["cffi"], (3, 12), "x64")
    monkeypatch.undo()
    assert runtime.get_wheels(["cffi"], (3, 12), "x64", offline=True) == first  # re-recorded
