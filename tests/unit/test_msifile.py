"""The pure-Python .msi reader against what msitools (libmsi) writes and reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msica.author.msifile import MsiFile, decode_stream_name, encode_stream_name
from msica.errors import MsicaError, MsiFileError
from tests.helpers import msibuild_msi, product_source, wixl_msi

pytestmark = pytest.mark.skipif(
    shutil.which("msibuild") is None or shutil.which("wixl") is None,
    reason="needs msitools (msibuild, msiinfo, wixl)",
)

PRODUCT = product_source(
    "reader",
    """    <Binary Id="Blob" SourceFile="blob.bin"/>
    <CustomAction Id="Deferred" BinaryKey="Blob" DllEntry="Entry" Execute="deferred"
                  Impersonate="no" Return="ignore"/>
    <InstallExecuteSequence>
      <Custom Action="Deferred" Sequence="1501">NOT Installed</Custom>
    </InstallExecuteSequence>
""",
    properties={"GREETING": "hello; world = 1"},
    component_id="Dir",
    component_guid="0b9c2f5e-7f51-4a53-9a55-8d2f4a3b1c01",
    upgrade="3f1e0e43-5b4f-4c57-9d0c-2b0f8f2e6a11",
    version="1.2.3",
)
BLOB = bytes(range(256)) * 40 + b"end"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("reader")
    (tmp / "blob.bin").write_bytes(BLOB)
    return wixl_msi(tmp, PRODUCT, "product")


def msiinfo_export(msi: Path, table: str) -> list[dict[str, str | None]]:
    """``msiinfo export``'s rows of ``table``, every value as text (None for empty)."""
    text = subprocess.run(
        ["msiinfo", "export", str(msi), table], capture_output=True, text=True, check=True,
        cwd=msi.parent,  # it writes a binary column's streams into <cwd>/<Table>/
    ).stdout
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    names = lines[0].split("\t")
    return [
        {name: value or None for name, value in zip(names, line.split("\t"))}
        for line in lines[3:]
        if line
    ]


def test_every_table_reads_as_libmsi_reads_it(product: Path) -> None:
    listed = subprocess.run(
        ["msiinfo", "tables", str(product)], capture_output=True, text=True, check=True
    ).stdout.split()
    with MsiFile.open(product) as msi:
        assert sorted(msi.tables()) == sorted(t for t in listed if not t.startswith("_"))
        for table in msi.tables():
            ours = [
                {k: None if v is None else str(v) for k, v in row.items()}
                for row in msi.rows(table)
            ]
            assert ours == msiinfo_export(product, table), table


def test_columns_types_and_values(product: Path) -> None:
    with MsiFile.open(product) as msi:
        columns = {c.name: c for c in msi.columns("CustomAction")}
        assert [c.name for c in msi.columns("CustomAction")] == [
            "Action", "Type", "Source", "Target", "ExtendedType"]
        assert columns["Action"].kind == "string" and columns["Action"].key
        assert columns["Action"].size == 72 and not columns["Action"].nullable
        assert columns["Type"].kind == "int2" and not columns["Type"].nullable
        assert columns["Target"].nullable and columns["Target"].size == 255
        assert columns["ExtendedType"].kind == "int4"
        assert msi.primary_key("InstallExecuteSequence") == ["Action"]
        assert msi.rows("CustomAction") == [
            {"Action": "Deferred", "Type": 1 + 0x40 + 0x400 + 0x800, "Source": "Blob",
             "Target": "Entry", "ExtendedType": None}]
        sequence = {row["Action"]: row for row in msi.rows("InstallExecuteSequence")}
        assert sequence["Deferred"] == {
            "Action": "Deferred", "Condition": "NOT Installed", "Sequence": 1501}
        assert {"Property": "GREETING", "Value": "hello; world = 1"} in msi.rows("Property")
        assert msi.columns("Binary")[1].kind == "binary"
        assert msi.rows("Binary") == [{"Name": "Blob", "Data": "Binary.Blob"}]


def test_binary_stream_and_summary(product: Path) -> None:
    with MsiFile.open(product) as msi:
        assert msi.stream("Binary", "Blob") == BLOB
        assert msi.stream("Binary", ["Blob"]) == BLOB
        assert "Binary.Blob" in msi.streams()
        summary = msi.summary
        assert summary["template"] == "x64;1033"
        assert summary["subject"] == "reader"
        with pytest.raises(MsiFileError, match=r"has no stream 'Binary\.Nope'"):
            msi.stream("Binary", "Nope")
        with pytest.raises(MsiFileError, match="has no Registry2 table"):
            msi.rows("Registry2")


def test_from_bytes_names_the_source_in_errors(product: Path) -> None:
    with MsiFile.from_bytes(product.read_bytes(), "memory.msi") as msi:
        assert msi.has_table("CustomAction")
    with pytest.raises(MsiFileError, match=r"^memory\.msi: "):
        MsiFile.from_bytes(b"nothing", "memory.msi")


def test_utf8_codepage_and_a_string_over_64k(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "_ForceCodepage.idt").write_text("\n\n65001\t_ForceCodepage\n", encoding="ascii")
    long_value = "y" * 70000
    greeting = "\u041f\u0440\u0438\u0432\u0435\u0442, \u00ff"  # Cyrillic and Latin-1
    (source / "Property.idt").write_text(
        "Property\tValue\ns72\tl0\nProperty\tProperty\n"
        f"ProductName\t{greeting}\nLONG\t{long_value}\nAFTER\tafter\n",
        encoding="utf-8",
    )
    with MsiFile.open(msibuild_msi(source, tmp_path / "cp.msi")) as msi:
        assert msi.codepage == 65001
        assert msi.rows("Property") == [
            {"Property": "ProductName", "Value": greeting},
            {"Property": "LONG", "Value": long_value},
            {"Property": "AFTER", "Value": "after"},
        ]


def test_an_empty_table_has_rows_of_none(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "CustomAction.idt").write_text(
        "Action\tType\tSource\tTarget\tExtendedType\ns72\ti2\tS72\tS255\tI4\n"
        "CustomAction\tAction\n", encoding="ascii")
    with MsiFile.open(msibuild_msi(source, tmp_path / "empty.msi")) as msi:
        assert msi.tables() == ["CustomAction"]
        assert msi.rows("CustomAction") == []


@settings(deadline=None)  # a round trip, not a timing: CI machines pause at times
@given(st.text(alphabet=st.sampled_from(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-!é"), max_size=40),
    st.booleans())
def test_stream_names_round_trip(name: str, table: bool) -> None:
    assert decode_stream_name(encode_stream_name(name, table=table)) == (name, table)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is not an .msi: it is not an OLE compound file"),
        (b"hello, world\n" * 100, "is not an .msi: it is not an OLE compound file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(600), "is not an .msi: it is not an OLE compound file"),
    ],
)
def test_not_an_msi(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "app.msi"
    path.write_bytes(data)
    with pytest.raises(MsiFileError) as caught:
        MsiFile.open(path)
    assert str(caught.value) == f"{path}: {message} (wrong file, or truncated)"
    assert isinstance(caught.value, MsicaError) and caught.value.exit_code == 7


def test_truncated_msi(tmp_path: Path, product: Path) -> None:
    path = tmp_path / "cut.msi"
    path.write_bytes(product.read_bytes()[:3000])
    with pytest.raises(MsiFileError, match=r"^.*cut\.msi: ") as caught:
        MsiFile.open(path)
    assert "\n" not in str(caught.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MsiFileError, match=r"nope\.msi: cannot be read: No such file"):
        MsiFile.open(tmp_path / "nope.msi")
    with pytest.raises(MsiFileError, match="is a directory"):
        MsiFile.open(tmp_path)


def rename_stream(data: bytes, name: str, new: str, *, table: bool = True) -> bytes:
    """``data`` with the directory entry of stream ``name`` renamed (same length)."""
    old_raw = encode_stream_name(name, table=table).encode("utf-16-le")
    new_raw = encode_stream_name(new, table=table).encode("utf-16-le")
    assert len(old_raw) == len(new_raw) and data.count(old_raw) == 1
    return data.replace(old_raw, new_raw)


def test_missing_string_pool(tmp_path: Path, product: Path) -> None:
    path = tmp_path / "nopool.msi"
    path.write_bytes(rename_stream(product.read_bytes(), "_StringPool", "_StringPoox"))
    with pytest.raises(MsiFileError) as caught:
        MsiFile.open(path)
    assert str(caught.value) == (
        f"{path}: is not an .msi database: it has no _StringPool stream (string pool)")


def test_three_byte_string_references(tmp_path: Path) -> None:
    """Past 65535 strings, libmsi stores string ids in 3 bytes and flags the pool."""
    source = tmp_path / "src"
    source.mkdir()
    rows = "".join(f"P{i}\tv{i}\n" for i in range(34000))  # 68000 strings and more
    (source / "Property.idt").write_text(
        "Property\tValue\ns72\tl0\nProperty\tProperty\n" + rows, encoding="ascii")
    with MsiFile.open(msibuild_msi(source, tmp_path / "many.msi")) as msi:
        assert msi.long_string_refs
        read = msi.rows("Property")
    assert read == [{"Property": f"P{i}", "Value": f"v{i}"} for i in range(34000)]


def test_a_database_without_tables(tmp_path: Path) -> None:
    """An empty table has no stream, and so do _Tables and _Columns when there is none."""
    source = tmp_path / "src"
    source.mkdir()
    with MsiFile.open(msibuild_msi(source, tmp_path / "none.msi", template="x64;1033")) as msi:
        assert msi.tables() == [] and not msi.has_table("CustomAction")
        assert msi.summary["template"] == "x64;1033"
