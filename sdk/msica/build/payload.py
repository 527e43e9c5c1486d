"""The payload a packaged DLL carries: writer and reader.

The format is declared once per side: here as ``struct`` formats and in
``bridge_c/msica_payload.h`` as C structs; tests/unit/test_payload_contract.py
compiles the header and holds the two together. Change both, and bump
:data:`FORMAT_VERSION`, or neither.

A packaged DLL is the shim's PE image, then the archive (entries of
header, UTF-8 path, data), then the trailer, then possibly an Authenticode
certificate table appended by signing afterwards.

Entries are raw DEFLATE streams (zlib at :data:`LEVEL`, window 2**15, no
wrapper), which the shim inflates with its own decoder
(``bridge_c/msica_inflate.c``); an entry that would not shrink is stored.
Each header records the unpacked size and the SHA-256 of the unpacked file,
which is what the shim compares an unpacked runtime against. The bytes zlib
writes depend on its version, so "the same inputs give the same DLL" holds
for one zlib (:func:`compressor_version` names it in the manifest).
Compressed streams of large files are cached by their content's SHA-256
under ``<cache>/deflate/``, which makes a rebuild of an unchanged runtime
cost a hash instead of a compression.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from msica.errors import BuildError

log = logging.getLogger("msica.build")

MAGIC = b"MSICA\x00PL"
FORMAT_VERSION = 2
METHOD_STORED = 0
METHOD_DEFLATE = 1
LEVEL = 9
"""zlib's level for every entry: the smallest; its cost is paid once per file (cache)."""
MAX_UNPACKED = 1 << 30
"""MSICA_MAX_UNPACKED: the shim inflates each entry in memory."""
_CACHED_FROM = 64 * 1024  # smaller entries compress faster than a cache lookup

# struct msica_entry_header: path_len, method, size, unpacked_size, sha256
ENTRY_HEADER = struct.Struct("<IIQQ32s")
# struct msica_payload_trailer: magic, format_version, py_major, py_minor,
# archive_offset, archive_size, entry_count, trailer_size, sha256
TRAILER = struct.Struct("<8sIHHQQII32s")

assert ENTRY_HEADER.size == 56 and TRAILER.size == 72


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


def compressor_version() -> str:
    """The zlib that compresses entries, e.g. ``zlib 1.2.13, level 6``."""
    return f"zlib {zlib.ZLIB_RUNTIME_VERSION}, level {LEVEL}"


def deflate(data: bytes, digest: bytes | None = None, cache: Path | None = None) -> bytes:
    """The raw DEFLATE stream of ``data``, from ``cache`` when it holds it already."""
    if cache is None or len(data) < _CACHED_FROM:
        return _deflate(data)
    digest = digest or hashlib.sha256(data).digest()
    name = f"{digest.hex()}-{zlib.ZLIB_RUNTIME_VERSION}-{LEVEL}.deflate"
    cached = cache / name[:2] / name
    try:
        stream = cached.read_bytes()
    except OSError:
        pass
    else:
        # The cache is a shortcut, never trusted: what it holds must inflate
        # to these very bytes, or it is compressed again.
        if _inflates_to(stream, len(data), digest):
            return stream
    stream = _deflate(data)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{name}.{os.getpid()}.partial")
        partial.write_bytes(stream)
        os.replace(partial, cached)
    except OSError as error:
        log.debug("could not cache a compressed entry in %s: %s", cache, error)
    return stream


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)
    return compressor.compress(data) + compressor.flush()


def _inflates_to(stream: bytes, size: int, digest: bytes) -> bool:
    """Whether ``stream`` inflates to ``size`` bytes whose SHA-256 is ``digest``."""
    decompressor = zlib.decompressobj(-15)
    try:
        out = decompressor.decompress(stream, size + 1)
    except zlib.error:
        return False
    return (decompressor.eof and not decompressor.unused_data and len(out) == size
            and hashlib.sha256(out).digest() == digest)


def pack_archive(files: Mapping[str, bytes], *, cache: Path | None = None) -> tuple[bytes, int]:
    """The archive bytes for ``files`` (relative '/' paths), in sorted order, and its count.

    ``cache``: a directory for compressed streams of large files, by content.
    """
    parts: list[bytes] = []
    for path in sorted(files):
        _check_path(path)
        data = files[path]
        if len(data) > MAX_UNPACKED:
            raise BuildError(f"cannot pack {path}: files over 1 GiB do not fit a payload")
        digest = hashlib.sha256(data).digest()
        stream = deflate(data, digest, cache) if data else b""
        method = METHOD_DEFLATE
        if len(stream) >= len(data):
            method, stream = METHOD_STORED, data
        encoded = path.encode("utf-8")
        parts.append(ENTRY_HEADER.pack(len(encoded), method, len(stream), len(data), digest))
        parts.append(encoded)
        parts.append(stream)
    return b"".join(parts), len(files)


def attach(
    image: bytes, files: Mapping[str, bytes], python: tuple[int, int], *,
    cache: Path | None = None,
) -> bytes:
    """``image`` (a shim DLL without payload) followed by the archive of ``files`` and trailer."""
    archive, count = pack_archive(files, cache=cache)
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
        path_len, method, size, unpacked_size, digest = ENTRY_HEADER.unpack_from(archive, cursor)
        cursor += ENTRY_HEADER.size
        path = archive[cursor : cursor + path_len].decode("utf-8")
        cursor += path_len
        body = archive[cursor : cursor + size]
        cursor += size
        if len(body) != size or method not in (METHOD_STORED, METHOD_DEFLATE):
            raise BuildError(f"the payload's entry {path!r} is damaged")
        if method == METHOD_DEFLATE:
            body = _inflate(body, unpacked_size, path)
        if len(body) != unpacked_size:
            raise BuildError(f"the payload's entry {path!r} is damaged")
        if hashlib.sha256(body).digest() != digest:
            raise BuildError(f"the payload's entry {path!r} does not match its SHA-256")
        files[path] = body
    if cursor != len(archive):
        raise BuildError("the payload's archive is damaged: bytes left after the last entry")
    return files


def _inflate(stream: bytes, size: int, path: str) -> bytes:
    decompressor = zlib.decompressobj(-15)
    try:
        data = decompressor.decompress(stream, size + 1)
    except zlib.error as error:
        raise BuildError(f"the payload's entry {path!r} cannot be inflated: {error}") from None
    if not decompressor.eof or decompressor.unused_data:
        raise BuildError(f"the payload's entry {path!r} cannot be inflated: bad stream end")
    return data


def _check_path(path: str) -> None:
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or ":" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise BuildError(f"cannot pack {path!r}: payload paths are relative '/' paths")

