"""bridge_c/msica_inflate.c, the shim's own DEFLATE decoder, against Python's zlib.

The C file is built for this machine (with AddressSanitizer and UBSan when
gcc has them, so an out-of-bounds read or write fails the run) and fed
thousands of streams: every zlib level and strategy over text, binary,
repetitive and random data, and damaged streams. A good stream must decode to
exactly its data; a damaged one must be refused with a reason, or decode to
bytes of the recorded length (DEFLATE has no checksum: the payload's SHA-256
of each entry catches that), and never touch memory outside its buffers.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.helpers import BRIDGE, zig_cc

C_DIR = Path(__file__).parent / "c"


@pytest.fixture(scope="module")
def inflate_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inflate")
    sources = [str(C_DIR / "inflate_check.c"), str(BRIDGE / "msica_inflate.c")]
    gcc = shutil.which("gcc")
    if gcc is not None:
        exe = out / "inflate_check"
        built = subprocess.run(
            [gcc, "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
             "-fno-sanitize-recover=all", f"-I{BRIDGE}", "-o", str(exe), *sources],
            capture_output=True, text=True, check=False,
        )
        if built.returncode == 0:
            return exe
    return zig_cc(out, [Path(s) for s in sources], f"-I{BRIDGE}", "-Wall", "-Werror",
                  "-fsanitize=undefined", "-fsanitize-trap=undefined",
                  output_name="inflate_check")


def _run(exe: Path, tmp: Path, cases: list[tuple[bytes, int]]) -> list[bytes | str]:
    """Each case (stream, recorded size) -> the decoded bytes, or the reason it was refused."""
    with (tmp / "cases").open("wb") as stream:
        for data, size in cases:
            stream.write(struct.pack("<II", len(data), size) + data)
    done = subprocess.run([str(exe), str(tmp / "cases"), str(tmp / "results")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    raw = (tmp / "results").read_bytes()
    results: list[bytes | str] = []
    at = 0
    for _, size in cases:
        (rc,) = struct.unpack_from("<i", raw, at)
        at += 4
        if rc == 0:
            results.append(raw[at:at + size])
            at += size
        else:
            assert rc == -1
            (length,) = struct.unpack_from("<I", raw, at)
            results.append(raw[at + 4:at + 4 + length].decode())
            at += 4 + length
    assert at == len(raw)
    return results


def _deflate(data: bytes, level: int = 6, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return compressor.compress(data) + compressor.flush()


def _samples(rng: random.Random) -> list[bytes]:
    text = b"".join(rng.choice([b"msica ", b"custom ", b"action\n", b"Session", b"\x00\xff"])
                    for _ in range(20000))
    return [
        b"",
        b"a",
        b"ab" * 40000,  # long overlapping copies
        bytes(70000),  # runs of one byte, distance 1
        os.urandom(100000),  # incompressible: stored blocks
        text,
        bytes(rng.randrange(16) for _ in range(50000)),  # small alphabet, long codes
        Path(sys.executable).resolve().read_bytes()[:300000],  # machine code
        (BRIDGE / "msica_payload.c").read_bytes(),
    ]


def test_every_zlib_level_and_strategy_decodes_exactly(inflate_check: Path, tmp_path: Path) -> None:
    rng = random.Random(1951)
    cases = []
    for data in _samples(rng):
        for level in range(10):
            for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY,
                             zlib.Z_RLE, zlib.Z_FIXED):
                cases.append((data, _deflate(data, level, strategy)))
    results = _run(inflate_check, tmp_path, [(stream, len(data)) for data, stream in cases])
    for (data, _), result in zip(cases, results):
        assert result == data


def test_long_codes_and_a_full_window(inflate_check: Path, tmp_path: Path) -> None:
    """Skewed frequencies give codes longer than the fast table; distances up to 32 KiB."""
    rng = random.Random(5)
    skewed = bytes(min(255, int(rng.expovariate(0.05))) for _ in range(200000))
    window = os.urandom(32768)
    far = window + b"x" * 10 + window  # a match 32778 back is too far; 32768 is the limit
    cases = [(data, _deflate(data, 9)) for data in (skewed, far, window * 4)]
    results = _run(inflate_check, tmp_path, [(stream, len(data)) for data, stream in cases])
    assert results == [data for data, _ in cases]


def test_wrong_recorded_sizes_are_refused(inflate_check: Path, tmp_path: Path) -> None:
    data = b"hello, installer " * 1000
    stream = _deflate(data)
    results = _run(inflate_check, tmp_path, [(stream, len(data) - 1), (stream, len(data) + 1),
                                             (stream + b"\0", len(data))])
    assert results == [
        "the data is longer than recorded",
        "the data is shorter than recorded",
        "bytes follow the end of the compressed data",
    ]


def test_handmade_bad_streams_name_what_is_wrong(inflate_check: Path, tmp_path: Path) -> None:
    cases = [
        (b"", 0, "the compressed data ends early"),
        (bytes([0b111]), 0, "a block of the reserved type 3"),
        # stored block, LEN 5 with a wrong complement
        (bytes([1, 5, 0, 0, 0]), 5, "a stored block's length does not match its complement"),
        (bytes([1, 5, 0, 0xFA, 0xFF, 1, 2]), 5, "the compressed data ends early"),
        # fixed block: distance code 0 (distance 1) with nothing written yet
        (bytes([0x03, 0x02, 0x00]), 3, "a distance reaches before the start of the data"),
        # dynamic block declaring 287 literal/length codes
        (bytes([0xF5, 0, 0]), 0, "a block declares more codes than DEFLATE has"),
    ]
    results = _run(inflate_check, tmp_path, [(data, size) for data, size, _ in cases])
    assert results == [reason for _, _, reason in cases]


def test_damaged_streams_never_overrun(inflate_check: Path, tmp_path: Path) -> None:
    """Flipped bits, cuts and garbage: refused with a reason, or decoded as zlib decodes them.

    DEFLATE has no checksum, so a flipped bit in a stored block still decodes;
    the payload's per-entry SHA-256 catches that, not the decoder.
    """
    rng = random.Random(1996)
    cases: list[tuple[bytes, int]] = []
    for data in _samples(rng):
        for level in (1, 6, 9):
            good = _deflate(data, level)
            for _ in range(60):
                broken = bytearray(good)
                if broken:
                    for _ in range(rng.randrange(1, 4)):
                        at = rng.randrange(len(broken))
                        broken[at] ^= 1 << rng.randrange(8)
                cases.append((bytes(broken), len(data)))
            for cut in (1, 2, len(good) // 2):
                cases.append((good[:-cut] if len(good) > cut else b"", len(data)))
    for _ in range(3000):
        cases.append((os.urandom(rng.randrange(1, 400)), rng.randrange(0, 5000)))
    results = _run(inflate_check, tmp_path, cases)
    refused = 0
    for (stream, size), result in zip(cases, results):
        expected = _zlib_exact(stream, size)
        if isinstance(result, str):
            assert result, "a refusal without a reason"
            assert expected is None, f"zlib decodes what was refused ({result})"
            refused += 1
        else:
            assert len(result) == size
            if expected is not None:
                assert result == expected
    assert refused > len(cases) // 2


def _zlib_exact(stream: bytes, size: int) -> bytes | None:
    """What zlib makes of ``stream`` when it is one complete stream of ``size`` bytes."""
    decompressor = zlib.decompressobj(-15)
    try:
        data = decompressor.decompress(stream) + decompressor.flush()
    except zlib.error:
        return None
    if not decompressor.eof or decompressor.unused_data or len(data) != size:
        return None
    return data
