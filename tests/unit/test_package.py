"""msica.author.package: an .msi opened offline through the platform's MSI library.

Each test writes through one Package, commits, and reads back through a new
one, so what is checked is what the file holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msica.author.package import Package
from msica.errors import AuthorError, MsiFileError

pytestmark = pytest.mark.skipif(
    not __import__("msica._native.libmsi", fromlist=["available"]).available(),
    reason="libmsi is not installed (apt install libmsi0)",
)

AWKWARD = [
    "it's",
    'say "hi"; DROP TABLE `Property`',
    "a=b;c=d",
    "-- not a comment",
    "`backquoted`",
    "Grüße, façade, 100 €",
    "line one\nline two\ttab",
    "[ProductCode] [%TEMP] [#file]",
]


@pytest.fixture
def msi(tmp_path: Path) -> Path:
    """A new database with a Property, a Binary and a mixed table, committed."""
    path = tmp_path / "db.msi"
    with Package.create(path) as package:
        package.execute("CREATE TABLE `Property` (`Property` CHAR(72) NOT NULL, "
                        "`Value` LONGCHAR NOT NULL LOCALIZABLE PRIMARY KEY `Property`)")
        package.execute("CREATE TABLE `Binary` (`Name` CHAR(72) NOT NULL, "
                        "`Data` OBJECT NOT NULL PRIMARY KEY `Name`)")
        package.execute("CREATE TABLE `Mixed` (`Key` CHAR(72) NOT NULL, `Short` INT, "
                        "`Long` LONG, `Text` CHAR(255) PRIMARY KEY `Key`)")
        package.commit()
    return path


def test_rows_round_trip_with_quotes_semicolons_and_unicode(msi: Path) -> None:
    with Package.open(msi, write=True) as package:
        for number, value in enumerate(AWKWARD):
            package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                            f"P{number}", value)
        package.commit()
    with Package.open(msi) as package:
        rows = package.query("SELECT `Property`, `Value` FROM `Property`")
        assert sorted(rows) == sorted((f"P{n}", v) for n, v in enumerate(AWKWARD))
        # A marker matches the exact text, quotes and all.
        assert package.query("SELECT `Property` FROM `Property` WHERE `Value` = ?",
                             AWKWARD[1]) == [("P1",)]
        assert package.has_table("Property")


def test_integers_nulls_and_text_keep_their_types(msi: Path) -> None:
    with Package.open(msi, write=True) as package:
        package.execute("INSERT INTO `Mixed` (`Key`, `Short`, `Long`, `Text`) "
                        "VALUES (?, ?, ?, ?)", "a", -5, 2_000_000_000, None)
        package.execute("INSERT INTO `Mixed` (`Key`, `Short`, `Long`, `Text`) "
                        "VALUES (?, ?, ?, ?)", "b", None, None, "42")
        package.commit()
    with Package.open(msi) as package:
        rows = dict((r[0], r[1:]) for r in package.query("SELECT * FROM `Mixed`"))
    assert rows == {"a": (-5, 2_000_000_000, None), "b": (None, None, "42")}


def test_text_outside_the_code_page_is_refused_not_lost(msi: Path) -> None:
    with Package.open(msi, write=True) as package:
        assert package.codepage() == 0  # neutral: libmsi stores it as 1252
        with pytest.raises(AuthorError, match="code page 1252, which cannot hold '東京'"):
            package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                            "P", "東京")
        assert package.query("SELECT * FROM `Property`") == []


def test_update_and_delete(msi: Path) -> None:
    with Package.open(msi, write=True) as package:
        for key in ("x", "y"):
            package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)",
                            key, "old")
        package.execute("UPDATE `Property` SET `Value` = ? WHERE `Property` = ?", "new;x", "x")
        package.execute("DELETE FROM `Property` WHERE `Property` = ?", "y")
        package.commit()
    with Package.open(msi) as package:
        assert package.query("SELECT * FROM `Property`") == [("x", "new;x")]


def test_stream_round_trip_and_replace(msi: Path) -> None:
    data = bytes(range(256)) * 800  # 200 KiB with every byte value, nulls included
    with Package.open(msi, write=True) as package:
        package.set_stream("Binary", "blob", data)
        package.commit()
    with Package.open(msi, write=True) as package:
        assert package.read_stream("Binary", "blob") == data
        assert package.query("SELECT * FROM `Binary`") == [("blob", None)]  # streams: None
        package.set_stream("Binary", "blob", b"second")
        package.commit()
    with Package.open(msi) as package:
        assert package.read_stream("Binary", "blob") == b"second"
        assert package.query("SELECT `Name` FROM `Binary`") == [("blob",)]  # not duplicated
        assert package.read_stream("Binary", "missing") is None


def test_bytes_bound_to_a_marker_fill_a_stream(msi: Path) -> None:
    with Package.open(msi, write=True) as package:
        package.execute("INSERT INTO `Binary` (`Name`, `Data`) VALUES (?, ?)", "b", b"MZ\0\1")
        package.commit()
    with Package.open(msi) as package:
        assert package.read_stream("Binary", "b") == b"MZ\0\1"


def test_schema_questions(msi: Path) -> None:
    with Package.open(msi) as package:
        assert package.tables() == ["Binary", "Mixed", "Property"]
        assert package.columns("Mixed") == ["Key", "Short", "Long", "Text"]
        assert package.column_types("Mixed") == [
            ("Key", "s72"), ("Short", "I2"), ("Long", "I4"), ("Text", "S255")]
        assert package.has_column("Binary", "Data")
        assert not package.has_column("Binary", "Nope")
        assert not package.has_table("CustomAction")


def test_changes_without_commit_are_dropped(msi: Path) -> None:
    before = msi.read_bytes()
    with Package.open(msi, write=True) as package:
        package.execute("INSERT INTO `Property` (`Property`, `Value`) VALUES (?, ?)", "A", "1")
    assert msi.read_bytes() == before
    with Package.open(msi) as package:
        assert package.query("SELECT * FROM `Property`") == []


def test_read_only_refuses_commit(msi: Path) -> None:
    with Package.open(msi) as package, pytest.raises(AuthorError, match="write=True"):
        package.commit()


def test_a_missing_table_is_named_in_one_line(msi: Path) -> None:
    with Package.open(msi) as package:
        with pytest.raises(AuthorError) as caught:
            package.query("SELECT * FROM `Nowhere`")
        message = str(caught.value)
        assert "Nowhere" in message and "\n" not in message
        with pytest.raises(AuthorError, match="has no Nowhere table"):
            package.columns("Nowhere")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"MZ" + b"\0" * 2000, "not a Windows Installer package"),
        (b"", "not a Windows Installer package"),
        ("half", "damaged or truncated"),
    ],
)
def test_bad_files_get_a_one_line_error(
    tmp_path: Path, msi: Path, content: bytes | str | None, expected: str
) -> None:
    path = tmp_path / "bad.msi"
    if content == "half":
        whole = msi.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(MsiFileError) as caught:
        Package.open(path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_names_are_checked_before_they_reach_sql(msi: Path) -> None:
    with Package.open(msi) as package, pytest.raises(AuthorError, match="not a valid table"):
        package.columns("Property` WHERE 1")
