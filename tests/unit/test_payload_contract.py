"""The payload format is declared twice, in bridge_c/msica_payload.h and in
msica.build.payload; these tests hold the two together.

1. The layout: the header compiled by a C compiler (zig) prints every field's
   offset and size, compared with the Python struct formats.
2. A round trip: the shim's own payload code (msica_payload.c, with its
   inflater msica_inflate.c), built into a small Windows program and run
   under wine, opens, verifies and unpacks payloads that the Python packager
   wrote (compressed and stored entries), and refuses damaged ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import zlib
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
    assert int(layout["method_deflate"][0]) == payload.METHOD_DEFLATE
    assert int(layout["max_unpacked"][0]) == payload.MAX_UNPACKED
    checks = {
        "msica_entry_header": (
            payload.ENTRY_HEADER, ["path_len", "method", "size", "unpacked_size", "sha256"],
        ),
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
    "python312.dll": os.urandom(5000),  # incompressible: stored
    "lib/pkg/__init__.py": b"",
    "lib/pkg/mod\u00e9.py": "print('h\u00e9llo')\n".encode(),  # too small to shrink: stored
    "lib/deep/a/b/c.txt": b"x" * 70000,  # compressed
    "lib/text.py": b"".join(b"line %d of a module\n" % i for i in range(5000)),  # compressed
}


def _methods(data: bytes) -> dict[str, int]:
    """Each entry's method, read from the archive as the shim reads it."""
    trailer = payload.read_trailer(data)
    methods = {}
    at = trailer.archive_offset
    for _ in range(trailer.entry_count):
        path_len, method, size, _, _ = payload.ENTRY_HEADER.unpack_from(data, at)
        at += payload.ENTRY_HEADER.size
        methods[data[at:at + path_len].decode()] = method
        at += path_len + size
    return methods


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
    assert _methods(data) == {
        "python312.dll": payload.METHOD_STORED,
        "lib/pkg/__init__.py": payload.METHOD_STORED,
        "lib/pkg/mod\u00e9.py": payload.METHOD_STORED,
        "lib/deep/a/b/c.txt": payload.METHOD_DEFLATE,
        "lib/text.py": payload.METHOD_DEFLATE,
    }
    # The second run finds the directory and checks it without inflating.
    again = _run_probe(probe, dll, target)
    assert again.returncode == 0, again.stderr
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


def _archive_with(entries: list[tuple[str, int, bytes, bytes]]) -> bytes:
    """An archive written by hand: (path, method, stored bytes, unpacked bytes) each."""
    parts = []
    for path, method, stored, unpacked in entries:
        encoded = path.encode()
        parts.append(payload.ENTRY_HEADER.pack(len(encoded), method, len(stored), len(unpacked),
                                               hashlib.sha256(unpacked).digest()))
        parts += [encoded, stored]
    return b"".join(parts)


def _dll_with_archive(tmp_path: Path, archive: bytes, count: int) -> Path:
    shim = (REPO / "sdk/msica/build/shims/msica-shim.x64.dll").read_bytes()
    trailer = payload.TRAILER.pack(payload.MAGIC, payload.FORMAT_VERSION, 3, 12, len(shim),
                                   len(archive), count, payload.TRAILER.size,
                                   hashlib.sha256(archive).digest())
    dll = tmp_path / "handmade.dll"
    dll.write_bytes(shim + archive + trailer)
    return dll


@pytest.mark.engine
def test_a_corrupt_compressed_entry_is_refused_with_a_reason(probe: Path, tmp_path: Path) -> None:
    """The archive's hash is right (it was written so), but one stream is not DEFLATE."""
    good = b"import os\n" * 500
    stream = zlib.compressobj(6, zlib.DEFLATED, -15).compress(good)  # never flushed: cut short
    archive = _archive_with([("lib/a.py", payload.METHOD_DEFLATE, payload.deflate(good), good),
                             ("lib/b.py", payload.METHOD_DEFLATE, stream, good)])
    dll = _dll_with_archive(tmp_path, archive, 2)
    result = _run_probe(probe, dll, tmp_path / "out")
    assert result.returncode == 4, result.stderr  # unpack refused
    lines = [line for line in result.stderr.splitlines() if line.startswith("msica:")]
    assert len(lines) == 1, result.stderr
    assert "b.py is damaged: its compressed data cannot be inflated" in lines[0]
    assert "the compressed data ends early" in lines[0]
    assert "rebuild the DLL with `msica build`" in lines[0]
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out.partial-*"))  # the half-made copy is gone


@pytest.mark.engine
def test_an_entry_that_inflates_to_other_bytes_is_refused(probe: Path, tmp_path: Path) -> None:
    packed = b"print('packed')\n" * 300
    other = b"print('other!')\n" * 300
    archive = _archive_with([("lib/c.py", payload.METHOD_DEFLATE, payload.deflate(other),
                              packed)])
    result = _run_probe(probe, _dll_with_archive(tmp_path, archive, 1), tmp_path / "out")
    assert result.returncode == 4
    assert "c.py unpacks to other bytes than were packed" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.engine
def test_an_unknown_method_is_refused(probe: Path, tmp_path: Path) -> None:
    data = b"x" * 100
    archive = _archive_with([("lib/d.py", 7, data, data)])
    result = _run_probe(probe, _dll_with_archive(tmp_path, archive, 1), tmp_path / "out")
    assert result.returncode == 4
    assert "name a method this shim cannot read" in result.stderr


def test_python_reads_back_compressed_entries_and_refuses_bad_streams() -> None:
    data = payload.attach(b"MZ", FILES, (3, 12))
    assert payload.read_entries(data, payload.read_trailer(data)) == FILES
    good = b"abc" * 1000
    archive = _archive_with([("x", payload.METHOD_DEFLATE, payload.deflate(good)[:-3], good)])
    trailer = payload.TRAILER.pack(payload.MAGIC, payload.FORMAT_VERSION, 3, 12, 2, len(archive),
                                   1, payload.TRAILER.size, hashlib.sha256(archive).digest())
    bad = b"MZ" + archive + trailer
    with pytest.raises(payload.BuildError, match="cannot be inflated"):
        payload.read_entries(bad, payload.read_trailer(bad))


def test_compressed_streams_are_cached_by_content_and_checked(tmp_path: Path) -> None:
    data = os.urandom(1000) * 200  # compressible, above the caching threshold
    first = payload.deflate(data, cache=tmp_path)
    (cached,) = tmp_path.glob("*/*.deflate")
    assert cached.name.startswith(hashlib.sha256(data).hexdigest())
    assert payload.deflate(data, cache=tmp_path) == first
    cached.write_bytes(payload.deflate(b"y" * len(data)))  # a stream of other bytes
    assert payload.deflate(data, cache=tmp_path) == first  # not trusted: compressed again
    assert cached.read_bytes() == first
