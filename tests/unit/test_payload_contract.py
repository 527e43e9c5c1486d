"""The payload format is declared twice, in bridge_c/msica_payload.h and in
msica.build.payload; these tests hold the two together.

1. The layout: the header compiled by a C compiler (zig) prints every field's
   offset and size, compared with the Python struct formats.
2. A round trip: the shim's own payload code (msica_payload.c), built into a
   small Windows program and run under wine, opens, verifies and unpacks
   payloads that the Python packager wrote, and refuses damaged ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from msica.build import payload
from tests.helpers import BRIDGE, REPO, payload_probe, windows_path, wine_command, zig_cc

C_DIR = Path(__file__).parent / "c"


def _layout() -> dict[str, list[str]]:
    exe = zig_cc(None, [C_DIR / "payload_layout.c"], f"-I{BRIDGE}", output_name="layout")
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: line.split()[1:] for line in lines.splitlines()}


def _python_offsets(fmt: struct.Struct, names: list[str]) -> dict[str, tuple[int, int]]:
    offsets: dict[str, tuple[int, int]] = {}
    offset = 0
    codes = re.findall(r"\d*[a-zA-Z?]", fmt.format.lstrip("<"))
    assert len(codes) == len(names)
    for name, code in zip(names, codes):
        size = struct.calcsize("<" + code)
        offsets[name] = (offset, size)
        offset += size
    return offsets


def test_c_header_and_python_structs_agree() -> None:
    layout = _layout()
    assert bytes.fromhex(layout["magic"][0]) == payload.MAGIC
    assert int(layout["version"][0]) == payload.FORMAT_VERSION
    assert int(layout["method_stored"][0]) == payload.METHOD_STORED
    checks = {
        "msica_entry_header": (payload.ENTRY_HEADER, ["path_len", "method", "size", "sha256"]),
        "msica_payload_trailer": (
            payload.TRAILER,
            ["magic", "format_version", "py_major", "py_minor", "archive_offset",
             "archive_size", "entry_count", "trailer_size", "sha256"],
        ),
    }
    for struct_name, (fmt, names) in checks.items():
        expected = _python_offsets(fmt, names)
        for name, (offset, size) in expected.items():
            c_offset, c_size = layout[f"{struct_name}.{name}"]
            assert (int(c_offset), int(c_size)) == (offset, size), f"{struct_name}.{name}"
        assert int(layout[f"sizeof.{struct_name}"][0]) == fmt.size


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return payload_probe(tmp_path_factory.mktemp("probe"))


def _run_probe(probe: Path, dll: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*wine_command(), str(probe), windows_path(dll), windows_path(target)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "WINEDEBUG": "-all"},
    )


FILES = {
    "python312.dll": os.urandom(5000),
    "lib/pkg/__init__.py": b"",
    "lib/pkg/mod\u00e9.py": "print('h\u00e9llo')\n".encode(),
    "lib/deep/a/b/c.txt": b"x" * 70000,
}


def _packaged(tmp_path: Path) -> tuple[Path, bytes]:
    shim = (REPO / "sdk/msica/build/shims/msica-shim.x64.dll").read_bytes()
    data = payload.attach(shim, FILES, (3, 12))
    dll = tmp_path / "packaged.dll"
    dll.write_bytes(data)
    return dll, data


@pytest.mark.engine
def test_shim_code_unpacks_what_python_packed(probe: Path, tmp_path: Path) -> None:
    dll, data = _packaged(tmp_path)
    target = tmp_path / "unpacked"
    result = _run_probe(probe, dll, target)
    assert result.returncode == 0, result.stderr
    digest, version, count = result.stdout.split()
    trailer = payload.read_trailer(data)
    assert digest == trailer.digest_hex
    assert version == "3.12"
    assert int(count) == len(FILES)
    for name, content in FILES.items():
        assert (target / name).read_bytes() == content, name
    assert not list(tmp_path.glob("unpacked.partial-*"))
    # The Python reader agrees with what it wrote.
    assert payload.read_entries(data, trailer) == FILES
    assert trailer.sha256 == hashlib.sha256(
        data[trailer.archive_offset : trailer.archive_offset + trailer.archive_size]
    ).digest()


@pytest.mark.engine
def test_shim_code_refuses_a_flipped_byte_and_a_truncation(probe: Path, tmp_path: Path) -> None:
    dll, data = _packaged(tmp_path)
    trailer = payload.read_trailer(data)
    flipped = bytearray(data)
    flipped[trailer.archive_offset + 100] ^= 0x01
    dll.write_bytes(bytes(flipped))
    assert _run_probe(probe, dll, tmp_path / "a").returncode == 3  # verify failed
    assert not (tmp_path / "a").exists()
    with pytest.raises(payload.BuildError, match="corrupt"):
        payload.read_entries(bytes(flipped), trailer)

    dll.write_bytes(data[:-10])
    assert _run_probe(probe, dll, tmp_path / "b").returncode == 2  # no trailer found
    assert not (tmp_path / "b").exists()
    with pytest.raises(payload.BuildError, match="no msica payload"):
        payload.read_trailer(data[:-10])


def test_python_refuses_unsafe_paths() -> None:
    for bad in ("../x", "/abs", "a\\b", "c:x", "a//b", "./a"):
        with pytest.raises(payload.BuildError, match="relative"):
            payload.pack_archive({bad: b""})


def test_packing_is_deterministic() -> None:
    first = payload.attach(b"MZ", FILES, (3, 12))
    second = payload.attach(b"MZ", dict(reversed(list(FILES.items()))), (3, 12))
    assert first == second


@pytest.mark.engine
def test_processes_unpacking_the_same_payload_at_once_all_succeed(
    probe: Path, tmp_path: Path
) -> None:
    """Write aside, then rename: racers that lose find the winner's copy and check it."""
    files = {**FILES, "big/blob.bin": os.urandom(24 * 1024 * 1024)}
    shim = (REPO / "sdk/msica/build/shims/msica-shim.x64.dll").read_bytes()
    dll = tmp_path / "packaged.dll"
    dll.write_bytes(payload.attach(shim, files, (3, 12)))
    target = tmp_path / "shared"
    racers = [
        subprocess.Popen(
            [*wine_command(), str(probe), windows_path(dll), windows_path(target)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "WINEDEBUG": "-all"},
        )
        for _ in range(4)
    ]
    codes = [racer.wait(timeout=300) for racer in racers]
    assert codes == [0, 0, 0, 0]
    for name, content in files.items():
        assert (target / name).read_bytes() == content, name
    assert sorted(path.name for path in tmp_path.iterdir()) == ["packaged.dll", "shared"]


@pytest.mark.engine
def test_a_directory_others_may_write_is_not_reused(probe: Path, tmp_path: Path) -> None:
    dll, _ = _packaged(tmp_path)
    target = tmp_path / "unpacked"
    assert _run_probe(probe, dll, target).returncode == 0
    assert _run_probe(probe, dll, target).returncode == 0  # private: reused
    grant = subprocess.run(
        [*wine_command(), str(probe), "grant-everyone", windows_path(target)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "WINEDEBUG": "-all"},
    )
    assert grant.returncode == 0, grant.stderr
    assert _run_probe(probe, dll, target).returncode == 4  # refused before any content check
