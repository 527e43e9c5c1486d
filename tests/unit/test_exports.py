"""msica.build.exports against the real shim DLLs, checked with pefile as an independent reader."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pefile
import pytest

from msica.build.exports import (
    SLOT_COUNT,
    SLOT_NAME_LENGTH,
    PeInfo,
    pe_checksum,
    read_pe,
    rename_slots,
    slot_index,
    slot_name,
    slot_names_in,
    validate_export_name,
    validate_export_names,
)
from msica.errors import BuildError, ExportNameError

ARCHS = ("x64", "x86", "arm64")
ShimBytes = Callable[[str], bytes]

# Chosen so that renaming reorders the name table: before "CustomAction",
# between it and the placeholders, and after them, in ASCII byte order.
NAMES = ["zzz_last", "AAA_first", "Install_Foo", "_under", "aaa_lower", "Zeta"]

Row = tuple[bytes, int, int]  # (name, index into AddressOfFunctions, function RVA)


def name_table(data: bytes) -> list[Row]:
    """The export name table in file order, as pefile reads the raw arrays."""
    pe = pefile.PE(data=data)
    directory = pe.DIRECTORY_ENTRY_EXPORT.struct
    rows: list[Row] = []
    for i in range(directory.NumberOfNames):
        name_rva = pe.get_dword_at_rva(directory.AddressOfNames + 4 * i)
        index = pe.get_word_at_rva(directory.AddressOfNameOrdinals + 2 * i)
        function = pe.get_dword_at_rva(directory.AddressOfFunctions + 4 * index)
        rows.append((pe.get_string_at_rva(name_rva), index, function))
    return rows


def resolve(rows: list[Row], name: str) -> int | None:
    """Look ``name`` up the way the loader does: a binary search of the name table."""
    key = name.encode("ascii")
    low, high = 0, len(rows) - 1
    while low <= high:
        middle = (low + high) // 2
        found = rows[middle][0]
        if found == key:
            return rows[middle][2]
        if found < key:
            low = middle + 1
        else:
            high = middle - 1
    return None


def pefile_symbols(data: bytes) -> dict[str, tuple[int, int]]:
    """name -> (ordinal, function RVA), from pefile's own export parsing."""
    pe = pefile.PE(data=data)
    return {
        symbol.name.decode("ascii"): (symbol.ordinal, symbol.address)
        for symbol in pe.DIRECTORY_ENTRY_EXPORT.symbols
        if symbol.name is not None
    }


# --- names and slots ---------------------------------------------------------------------


def test_slot_name_is_padded_placeholder() -> None:
    assert slot_name(7) == "msica_slot_007" + "_" * 50
    assert len(slot_name(127)) == SLOT_NAME_LENGTH == 64
    assert slot_index(slot_name(42)) == 42
    assert slot_index("msica_slot_042") is None
    assert slot_index("CustomAction") is None


@pytest.mark.parametrize("arch", ARCHS)
def test_shim_placeholders_match_slot_name(shim_bytes: ShimBytes, arch: str) -> None:
    assert slot_names_in(shim_bytes(arch)) == [slot_name(i) for i in range(SLOT_COUNT)]


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("1action", "starts with a digit"),
        ("has space", "contains ' '"),
        ("Caf\u00e9", "non-ASCII"),
        ("dash-ed", "contains '-'"),
        ("a" * (SLOT_NAME_LENGTH + 1), f"{SLOT_NAME_LENGTH + 1} characters long"),
        ("", "empty"),
        ("CustomAction", "the shim's own entry point"),
        ("customACTION", "differs only in case"),
        ("msica_slot_000", "reserved"),
        ("msica_slot_mine", "reserved"),
    ],
)
def test_invalid_names_are_refused(shim_bytes: ShimBytes, name: str, complaint: str) -> None:
    with pytest.raises(ExportNameError) as direct:
        validate_export_name(name)
    with pytest.raises(ExportNameError) as renaming:
        rename_slots(shim_bytes("x64"), ["Fine", name])
    for message in (str(direct.value), str(renaming.value)):
        assert complaint in message
        assert repr(name) in message or name == ""
        assert "@custom_action" in message
        assert "\n" not in message


def test_longest_name_is_accepted(shim_bytes: ShimBytes) -> None:
    longest = "L" * SLOT_NAME_LENGTH
    validate_export_name(longest)
    dll = shim_bytes("x64")
    renamed = rename_slots(dll, [longest])
    assert resolve(name_table(renamed), longest) == resolve(name_table(dll), slot_name(0))


def test_exact_duplicates_are_refused(shim_bytes: ShimBytes) -> None:
    with pytest.raises(ExportNameError, match=r"'Foo' is given twice.*@custom_action"):
        rename_slots(shim_bytes("x64"), ["Foo", "Bar", "Foo"])


def test_case_only_duplicates_are_refused(shim_bytes: ShimBytes) -> None:
    with pytest.raises(ExportNameError) as caught:
        rename_slots(shim_bytes("x64"), ["Install", "Other", "INSTALL"])
    message = str(caught.value)
    assert "'Install' and 'INSTALL' differ only in case" in message
    assert "case-insensitive tools" in message
    assert "@custom_action" in message


def test_too_many_names_are_refused(shim_bytes: ShimBytes) -> None:
    names = [f"Action{i}" for i in range(SLOT_COUNT + 1)]
    with pytest.raises(ExportNameError, match=rf"{SLOT_COUNT + 1} actions.*only {SLOT_COUNT}"):
        rename_slots(shim_bytes("x64"), names)
    with pytest.raises(ExportNameError, match=rf"{SLOT_COUNT + 1} actions"):
        validate_export_names(names)


def test_every_slot_can_be_renamed(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("arm64")
    names = [f"Action{i}" for i in range(SLOT_COUNT)]
    before, after = name_table(dll), name_table(rename_slots(dll, names))
    for i, name in enumerate(names):
        assert resolve(after, name) == resolve(before, slot_name(i))
    assert not any(row[0].startswith(b"msica_slot_") for row in after)


# --- renaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_renamed_slots_resolve_to_their_functions(shim_bytes: ShimBytes, arch: str) -> None:
    dll = shim_bytes(arch)
    renamed = rename_slots(dll, NAMES)
    before, after = name_table(dll), name_table(renamed)
    slot_functions = [resolve(before, slot_name(i)) for i in range(SLOT_COUNT)]
    assert None not in slot_functions
    assert len(set(slot_functions)) == SLOT_COUNT  # each slot is its own function

    old_symbols, new_symbols = pefile_symbols(dll), pefile_symbols(renamed)
    for i, name in enumerate(NAMES):
        assert resolve(after, name) == slot_functions[i]
        assert new_symbols[name] == old_symbols[slot_name(i)]  # same ordinal and RVA
        assert slot_name(i) not in new_symbols
    assert len(after) == len(before)
    assert read_pe(renamed).exports == tuple(row[0].decode("ascii") for row in after)


@pytest.mark.parametrize("arch", ARCHS)
def test_name_table_is_sorted(shim_bytes: ShimBytes, arch: str) -> None:
    names = [row[0] for row in name_table(rename_slots(shim_bytes(arch), NAMES))]
    assert names == sorted(names)
    assert names[0] == b"AAA_first"
    assert names[-1] == b"zzz_last"


@pytest.mark.parametrize("arch", ARCHS)
def test_unused_slots_and_custom_action_are_kept(shim_bytes: ShimBytes, arch: str) -> None:
    dll = shim_bytes(arch)
    renamed = rename_slots(dll, NAMES)
    before, after = name_table(dll), name_table(renamed)
    for i in range(len(NAMES), SLOT_COUNT):
        assert resolve(after, slot_name(i)) == resolve(before, slot_name(i))
    custom_action = resolve(before, "CustomAction")
    assert custom_action is not None
    assert resolve(after, "CustomAction") == custom_action
    expected = [slot_name(i) for i in range(len(NAMES), SLOT_COUNT)]
    assert slot_names_in(renamed) == expected


@pytest.mark.parametrize("arch", ARCHS)
def test_checksum_matches_pefile(shim_bytes: ShimBytes, arch: str) -> None:
    renamed = rename_slots(shim_bytes(arch), NAMES)
    pe = pefile.PE(data=renamed)
    assert pe.OPTIONAL_HEADER.CheckSum != 0
    assert pe.OPTIONAL_HEADER.CheckSum == pe.generate_checksum()
    assert pe_checksum(renamed) == pe.OPTIONAL_HEADER.CheckSum


@pytest.mark.parametrize("arch", ARCHS)
def test_rename_with_no_names_only_sets_checksum(shim_bytes: ShimBytes, arch: str) -> None:
    dll = shim_bytes(arch)
    renamed = rename_slots(dll, [])
    offset = pefile.PE(data=dll).OPTIONAL_HEADER.get_field_absolute_offset("CheckSum")
    assert renamed[:offset] == dll[:offset]
    assert renamed[offset + 4 :] == dll[offset + 4 :]
    assert pefile.PE(data=renamed).verify_checksum()


@pytest.mark.parametrize("arch", ARCHS)
def test_payload_after_image_is_preserved(shim_bytes: ShimBytes, arch: str) -> None:
    dll = shim_bytes(arch)
    payload = bytes(range(256)) * 37 + b"MSICA-TRAILER"  # odd length on purpose
    assert read_pe(dll).image_end == len(dll)

    renamed_after = rename_slots(dll + payload, NAMES)
    assert renamed_after[len(dll) :] == payload
    assert read_pe(renamed_after).image_end == len(dll)
    pe = pefile.PE(data=renamed_after)
    assert pe.OPTIONAL_HEADER.CheckSum == pe.generate_checksum()

    renamed_before = rename_slots(dll, NAMES) + payload
    offset = pe.OPTIONAL_HEADER.get_field_absolute_offset("CheckSum")
    assert renamed_before[:offset] == renamed_after[:offset]
    assert renamed_before[offset + 4 :] == renamed_after[offset + 4 :]
    assert name_table(renamed_before) == name_table(renamed_after)


def test_renamed_dll_cannot_be_renamed_again(shim_bytes: ShimBytes) -> None:
    renamed = rename_slots(shim_bytes("x64"), ["First", "Second"])
    with pytest.raises(BuildError, match=r"renamed already"):
        rename_slots(renamed, ["Third"])


def test_clash_with_custom_action_case_is_refused(shim_bytes: ShimBytes) -> None:
    with pytest.raises(ExportNameError, match=r"'customaction'.*differs only in case"):
        rename_slots(shim_bytes("x86"), ["customaction"])


# --- DLLs that are not (unmodified) shims ------------------------------------------------


def patched(data: bytes, offset: int, fmt: str, *values: int | bytes) -> bytes:
    buffer = bytearray(data)
    struct.pack_into(fmt, buffer, offset, *values)
    return bytes(buffer)


def test_dll_without_exports_is_refused(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    entry = pefile.PE(data=dll).OPTIONAL_HEADER.DATA_DIRECTORY[0]
    no_exports = patched(dll, entry.get_file_offset(), "<II", 0, 0)
    assert read_pe(no_exports).exports == ()
    with pytest.raises(BuildError, match=r"no export table.*not a msica shim"):
        rename_slots(no_exports, ["Foo"])


def test_short_slot_string_is_refused(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    at = dll.index(slot_name(5).encode("ascii") + b"\0")
    shortened = patched(dll, at + len("msica_slot_005"), "<B", 0)
    with pytest.raises(BuildError, match=r"'msica_slot_005'.*64-character"):
        rename_slots(shortened, ["Foo"])


def test_shared_name_bytes_are_refused(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    pe = pefile.PE(data=dll)
    directory = pe.DIRECTORY_ENTRY_EXPORT.struct
    rows = name_table(dll)
    custom = next(i for i, row in enumerate(rows) if row[0] == b"CustomAction")
    slot = next(i for i, row in enumerate(rows) if row[0] == slot_name(0).encode("ascii"))
    slot_rva = pe.get_dword_at_rva(directory.AddressOfNames + 4 * slot)
    pointer = pe.get_offset_from_rva(directory.AddressOfNames + 4 * custom)
    merged = patched(dll, pointer, "<I", slot_rva + 1)  # "sica_slot_000___..." inside slot 0
    with pytest.raises(BuildError, match=r"share bytes"):
        rename_slots(merged, ["Foo"])


def test_signed_dll_is_refused(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    entry = pefile.PE(data=dll).OPTIONAL_HEADER.DATA_DIRECTORY[4]
    signed = patched(dll, entry.get_file_offset(), "<II", len(dll), 8) + bytes(8)
    with pytest.raises(BuildError, match=r"Authenticode"):
        rename_slots(signed, ["Foo"])


# --- static checks of the built shims ------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "machine", "magic"),
    [("x64", 0x8664, 0x20B), ("x86", 0x14C, 0x10B), ("arm64", 0xAA64, 0x20B)],
)
def test_shim_headers(shim_bytes: ShimBytes, arch: str, machine: int, magic: int) -> None:
    dll = shim_bytes(arch)
    pe = pefile.PE(data=dll)
    assert pe.FILE_HEADER.Machine == machine
    assert pe.OPTIONAL_HEADER.Magic == magic
    assert pe.is_dll()
    info = read_pe(dll)
    assert info.machine == arch
    assert info.is_dll
    assert info.exports == tuple(row[0].decode("ascii") for row in name_table(dll))
    assert info.imports == tuple(entry.dll.decode("ascii") for entry in pe.DIRECTORY_ENTRY_IMPORT)
    assert "msi.dll" in info.imports


def test_x86_exports_are_undecorated(shim_bytes: ShimBytes) -> None:
    names = [row[0] for row in name_table(shim_bytes("x86"))]
    assert b"CustomAction" in names
    assert not [name for name in names if b"@" in name or name.startswith(b"_msica")]
    assert len(names) == SLOT_COUNT + 1


def test_unknown_machine_is_reported(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    machine = pefile.PE(data=dll).FILE_HEADER.get_field_absolute_offset("Machine")
    assert read_pe(patched(dll, machine, "<H", 0x1C0)).machine == "unknown:0x01c0"


# --- garbage in ----------------------------------------------------------------------------


def garbage_inputs(dll: bytes) -> list[bytes]:
    e_lfanew = struct.unpack_from("<I", dll, 0x3C)[0]
    return [
        b"",
        b"MZ",
        b"not a dll at all" * 100,
        bytes(range(256)) * 64,
        dll[:0x40],
        dll[: e_lfanew + 10],
        dll[:0x200],
        dll[: len(dll) // 2],
        patched(dll, 0x3C, "<I", len(dll) + 100),
        patched(dll, 0x3C, "<I", 0xFFFFFFF0),
        patched(dll, e_lfanew, "<4s", b"NE\0\0"),
        patched(dll, e_lfanew + 24, "<H", 0x999),
        patched(dll, e_lfanew + 6, "<H", 0xFFFF),
    ]


@pytest.mark.parametrize("arch", ARCHS)
def test_garbage_raises_build_error(shim_bytes: ShimBytes, arch: str) -> None:
    for data in garbage_inputs(shim_bytes(arch)):
        with pytest.raises(BuildError) as caught:
            read_pe(data)
        assert "\n" not in str(caught.value)
        assert "PE file" in str(caught.value)
        with pytest.raises(BuildError):
            rename_slots(data, ["Foo"])


def test_corrupt_export_table_raises_build_error(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    directory = pefile.PE(data=dll).DIRECTORY_ENTRY_EXPORT.struct
    for field, value in [
        ("AddressOfNames", 0x7FFFFFF0),
        ("NumberOfNames", 0x40000000),
        ("AddressOfNameOrdinals", 0xFFFFFFFF),
    ]:
        broken = patched(dll, directory.get_field_absolute_offset(field), "<I", value)
        with pytest.raises(BuildError, match=r"PE file"):
            read_pe(broken)


def test_pe_info_is_frozen(shim_bytes: ShimBytes) -> None:
    info = read_pe(shim_bytes("x64"))
    assert isinstance(info, PeInfo)
    with pytest.raises(AttributeError):
        info.machine = "x86"  # type: ignore[misc]


def test_slots_are_taken_by_index_not_table_position(shim_bytes: ShimBytes) -> None:
    dll = shim_bytes("x64")
    pe = pefile.PE(data=dll)
    directory = pe.DIRECTORY_ENTRY_EXPORT.struct
    names_at = pe.get_offset_from_rva(directory.AddressOfNames)
    ordinals_at = pe.get_offset_from_rva(directory.AddressOfNameOrdinals)
    count = directory.NumberOfNames
    name_rvas = struct.unpack_from(f"<{count}I", dll, names_at)
    ordinals = struct.unpack_from(f"<{count}H", dll, ordinals_at)
    shuffled = bytearray(dll)  # the same rows in reverse table order
    struct.pack_into(f"<{count}I", shuffled, names_at, *reversed(name_rvas))
    struct.pack_into(f"<{count}H", shuffled, ordinals_at, *reversed(ordinals))

    before, after = name_table(dll), name_table(rename_slots(bytes(shuffled), NAMES))
    for i, name in enumerate(NAMES):
        assert resolve(after, name) == resolve(before, slot_name(i))
    assert [row[0] for row in after] == sorted(row[0] for row in after)
