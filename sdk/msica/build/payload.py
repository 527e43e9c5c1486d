"""The payload a packaged DLL carries: writer and reader.

The format is declared once per side: here as ``struct`` formats and in
``bridge_c/msica_payload.h`` as C structs; tests/unit/test_payload_contract.py
compiles the header and holds the two together. Change both, and bump
:data:`FORMAT_VERSION`, or neither.

A packaged DLL is the shim's PE image, then the archive (entries of
header, UTF-8 path, data), then the trailer, then possibly an Authenticode
certificate table appended by signing afterwards.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from msica.errors import BuildError

MAGIC = b"MSICA\x00PL"
FORMAT_VERSION = 1
METHOD_STORED = 0

# struct msica_entry_header: path_len, method, size, sha256
ENTRY_HEADER = struct.Struct("<IIQ32s")
# struct msica_payload_trailer: magic, format_version, py_major, py_minor,
# archive_offset, archive_size, entry_count, trailer_size, sha256
TRAILER = struct.Struct("<8sIHHQQII32s")

assert ENTRY_HEADER.size == 48 and TRAILER.size == 72


@dataclass(frozen=True)
class Trailer:
    """The fixed record at the end of a packaged DLL."""

    format_version: int
    python: tuple[int, int]
    archive_offset: int
    archive_size: int
    entry_count: int
    sha256: bytes

    @property
    def digest_hex(self) -> str:
        return self.sha256.hex()


def pack_archive(files: Mapping[str, bytes]) -> tuple[bytes, int]:
    """The archive bytes for ``files`` (relative '/' paths), in sorted order, and its count."""
    parts: list[bytes] = []
    for path in sorted(files):
        _check_path(path)
        data = files[path]
        encoded = path.encode("utf-8")
        parts.append(
            ENTRY_HEADER.pack(len(encoded), METHOD_STORED, len(data), hashlib.sha256(data).digest())
        )
        parts.append(encoded)
        parts.append(data)
    return b"".join(parts), len(files)


def attach(image: bytes, files: Mapping[str, bytes], python: tuple[int, int]) -> bytes:
    """``image`` (a shim DLL without payload) followed by the archive of ``files`` and trailer."""
    archive, count = pack_archive(files)
    trailer = TRAILER.pack(
        MAGIC,
        FORMAT_VERSION,
        python[0],
        python[1],
        len(image),
        len(archive),
        count,
        TRAILER.size,
        hashlib.sha256(archive).digest(),
    )
    return image + archive + trailer


def read_trailer(data: bytes, end: int | None = None) -> Trailer:
    """The trailer of a packaged DLL whose payload ends at ``end`` (default: the file's end)."""
    end = len(data) if end is None else end
    if end < TRAILER.size:
        raise BuildError("the file is too small to carry an msica payload")
    magic, version, major, minor, offset, size, count, trailer_size, digest = TRAILER.unpack_from(
        data, end - TRAILER.size
    )
    if magic != MAGIC:
        raise BuildError(
            "no msica payload at the end of the file: it is truncated, or not built by "
            "`msica build`"
        )
    if version != FORMAT_VERSION or trailer_size != TRAILER.size:
        raise BuildError(
            f"payload format {version} is not the format {FORMAT_VERSION} this msica reads: "
            "rebuild the DLL with this version of msica"
        )
    if offset + size != end - TRAILER.size:
        raise BuildError("the payload's trailer does not match the file's size: it is damaged")
    return Trailer(version, (major, minor), offset, size, count, digest)


def read_entries(data: bytes, trailer: Trailer) -> dict[str, bytes]:
    """Every file in the archive, after checking the archive's and each entry's SHA-256."""
    archive = data[trailer.archive_offset : trailer.archive_offset + trailer.archive_size]
    if hashlib.sha256(archive).digest() != trailer.sha256:
        raise BuildError("the payload is corrupt: its SHA-256 differs from the recorded one")
    files: dict[str, bytes] = {}
    cursor = 0
    for _ in range(trailer.entry_count):
        if cursor + ENTRY_HEADER.size > len(archive):
            raise BuildError("the payload's archive is damaged: an entry runs past its end")
        path_len, method, size, digest = ENTRY_HEADER.unpack_from(archive, cursor)
        cursor += ENTRY_HEADER.size
        path = archive[cursor : cursor + path_len].decode("utf-8")
        cursor += path_len
        body = archive[cursor : cursor + size]
        cursor += size
        if method != METHOD_STORED or len(body) != size:
            raise BuildError(f"the payload's entry {path!r} is damaged")
        if hashlib.sha256(body).digest() != digest:
            raise BuildError(f"the payload's entry {path!r} does not match its SHA-256")
        files[path] = body
    if cursor != len(archive):
        raise BuildError("the payload's archive is damaged: bytes left after the last entry")
    return files


def _check_path(path: str) -> None:
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or ":" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BuildError(f"cannot pack {path!r}: payload paths are relative '/' paths")

