"""Files that are not (whole) .msi databases: one line, an exit code, never a traceback.

Then a fuzz test: truncated and mutated copies of a real package fed to the
reader, ``inspect`` and ``validate``; only MsiFileError may come out.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from msica.author import inspect, validate
from msica.author.msifile import MsiFile, encode_stream_name
from msica.cli import main
from msica.errors import MsiFileError
from tests.helpers import ice_fixture_msi

pytestmark = pytest.mark.skipif(shutil.which("msibuild") is None, reason="needs msitools")

EXIT_CODE = 7


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def real_msi(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return ice_fixture_msi("ice12", tmp_path_factory.mktemp("fuzz")).read_bytes()


def without_stream(data: bytes, name: str) -> bytes:
    """``data`` with stream ``name``'s directory entry renamed, so the stream is gone."""
    raw = encode_stream_name(name, table=True).encode("utf-16-le")
    assert data.count(raw) == 1
    return data.replace(raw, raw[:-2] + "\u4000".encode("utf-16-le"))


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return code, captured.err.rstrip("\n")


CASES = {
    "text": (lambda _: b"Product name: app\r\nVersion: 1.0\r\n" * 20,
             "is not an .msi: it is not an OLE compound file (wrong file, or truncated)"),
    "png": (lambda _: png(),
            "is not an .msi: it is not an OLE compound file (wrong file, or truncated)"),
    "empty": (lambda _: b"",
              "is not an .msi: it is not an OLE compound file (wrong file, or truncated)"),
    "truncated": (lambda data: data[: len(data) // 3],
                  "is a damaged OLE compound file ("),
    "no string pool": (lambda data: without_stream(data, "_StringPool"),
                       "is not an .msi database: it has no _StringPool stream (string pool)"),
}


@pytest.mark.parametrize("command", ["inspect", "validate"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_files_get_one_line(
    case: str, command: str, real_msi: bytes, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, message = CASES[case]
    path = tmp_path / "app.msi"
    path.write_bytes(make(real_msi))
    code, line = one_line_error(capsys, [command, str(path)])
    assert code == EXIT_CODE
    assert line.startswith(f"msica: error: {path}: {message}")


@pytest.mark.parametrize("command", ["inspect", "validate"])
def test_missing_file_and_directory(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = one_line_error(capsys, [command, str(tmp_path / "gone.msi")])
    assert (code, line) == (
        EXIT_CODE, f"msica: error: {tmp_path / 'gone.msi'}: cannot be read: No such file or "
        "directory")
    code, line = one_line_error(capsys, [command, str(tmp_path)])
    assert (code, line) == (EXIT_CODE, f"msica: error: {tmp_path}: is a directory, not an .msi")


def mutate(data: bytes, cut: int | None, edits: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        buffer[position % len(buffer)] = value
    if cut is not None:
        del buffer[cut % len(buffer):]
    return bytes(buffer)


def exercise(data: bytes) -> str:
    """Everything the commands read, on ``data``: only MsiFileError may come out.

    Returns what happened: "read" or the start of the error message.
    """
    try:
        with MsiFile.from_bytes(data, "fuzz.msi") as msi:
            for table in msi.tables():
                msi.columns(table)
                msi.rows(table)
            for name in msi.streams():
                if name.startswith("Binary."):
                    msi.stream("Binary", name.split(".", 1)[1])
            msi.summary  # noqa: B018 - reading it is the test
            inspect.render(inspect.inspect(msi))
            validate.render(validate.validate(msi))
    except MsiFileError as error:
        assert "\n" not in str(error) and str(error).startswith("fuzz.msi: ")
        return " ".join(str(error).split()[1:4])
    return "read"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_packages(real_msi: bytes, data: st.DataObject) -> None:
    size = len(real_msi)
    # Half the time aim at the first 4 KiB: the header, the FAT and the directory.
    limit = data.draw(st.sampled_from([4096, size]), label="edited region")
    edits = data.draw(st.lists(st.tuples(st.integers(0, limit - 1), st.integers(0, 255)),
                               max_size=24), label="edits")
    cut = data.draw(st.none() | st.integers(0, size - 1), label="cut")
    outcome = exercise(mutate(real_msi, cut, edits))
    event(outcome)


def test_unmutated_package_survives_the_exercise(real_msi: bytes) -> None:
    assert exercise(real_msi) == "read"
    assert validate.validate(MsiFile.from_bytes(real_msi, "ice12.msi")).errors == 3


def test_a_huge_vector_in_the_summary_is_not_followed(real_msi: bytes) -> None:
    """A property claiming 4 billion vector items once kept olefile busy for ever."""
    data = bytearray(real_msi)
    header = data.find(b"\xfe\xff\x00\x00")
    start = header + int.from_bytes(data[header + 44 : header + 48], "little")
    assert int.from_bytes(data[start + 8 : start + 12], "little") == 2  # the title
    first = start + int.from_bytes(data[start + 12 : start + 16], "little")
    data[first : first + 2] = (0x101E).to_bytes(2, "little")  # VT_VECTOR | VT_LPSTR
    data[first + 4 : first + 8] = b"\xff\xff\xff\xff"
    with MsiFile.from_bytes(bytes(data), "vector.msi") as msi:
        summary = msi.summary
    assert summary["title"] is None and summary["template"] == "x64;1033"


def test_names_from_the_file_cannot_break_the_line(real_msi: bytes) -> None:
    with MsiFile.from_bytes(real_msi, "a\nb.msi") as msi, pytest.raises(MsiFileError) as caught:
        msi.rows("No\rSuch")
    assert str(caught.value) == "a\\x0ab.msi: has no No\\x0dSuch table"
