"""Read PE files, and rename the placeholder exports of a msica shim DLL in place.

The shim DLLs under ``msica/build/shims`` export ``CustomAction`` plus
placeholder entry points ("slots") named ``msica_slot_000`` .. ``msica_slot_127``,
each padded with ``_`` to :data:`SLOT_NAME_LENGTH` characters. Packaging gives
slot *i* the name of the *i*-th action, so that the Windows Installer engine
finds the action's DllEntry with ``GetProcAddress``. No compiler is needed:
the names are edited in the file, and nothing in it moves.

The parts of the file this module reads (all integers little-endian)::

    DOS header          "MZ"; the u32 at 0x3C (e_lfanew) is the offset of:
    PE signature        "PE\\0\\0"
    COFF file header    20 bytes: Machine, NumberOfSections, ...,
                        PointerToSymbolTable, NumberOfSymbols,
                        SizeOfOptionalHeader, Characteristics (0x2000 = DLL)
    optional header     Magic 0x10B (PE32) or 0x20B (PE32+); FileAlignment at +36,
                        SizeOfHeaders at +60, CheckSum at +64; the data
                        directories (RVA, size pairs) start at +96 (PE32) or
                        +112 (PE32+): 0 = exports, 1 = imports, 4 = certificates
    section table       40 bytes a section: VirtualSize, VirtualAddress,
                        SizeOfRawData, PointerToRawData map RVAs to file offsets

    export directory    NumberOfFunctions, NumberOfNames and the RVAs of three arrays:
      AddressOfFunctions     u32 function RVAs, indexed by ordinal - Base
      AddressOfNames         u32 RVAs of NUL-terminated names, sorted by name
                             (the loader binary-searches them)
      AddressOfNameOrdinals  u16 index into AddressOfFunctions for each name

What :func:`rename_slots` changes, and nothing else:

1. the bytes of each renamed slot's name string: the new name, NUL-padded
   into the ``SLOT_NAME_LENGTH + 1`` bytes the placeholder and its NUL took;
2. the order of AddressOfNames and AddressOfNameOrdinals, permuted together
   so that the names are in byte order again and every name still leads to
   the function it led to before (AddressOfFunctions is not touched, so the
   C code, which looks up the name its own function RVA is exported under,
   finds the new name);
3. the optional header's CheckSum, recomputed over the whole file.

Bytes after the image (a payload appended by packaging) are left as they are,
so renaming works before or after the payload is appended.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from msica.actions import SLOT_NAME_LENGTH as SLOT_NAME_LENGTH  # one definition
from msica.errors import BuildError, ExportNameError

SLOT_PREFIX = "msica_slot_"
#: Slots in the shims as built; keep in step with CMakeLists.txt MSICA_SLOT_COUNT.
SLOT_COUNT = 128
#: The shim's own entry point, which keeps its name and meaning.
CUSTOM_ACTION = "CustomAction"

_NAME_HINT = "rename the function or pass name=... to @custom_action"
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLOT_PATTERN = re.compile(re.escape(SLOT_PREFIX) + r"([0-9]{3,})_*")
_REBUILD_HINT = (
    "use an unmodified shim from msica/build/shims or rebuild it with scripts/build-shims.sh"
)

_MACHINES = {0x014C: "x86", 0x8664: "x64", 0xAA64: "arm64"}
_PE32 = 0x10B
_PE32_PLUS = 0x20B
_IMAGE_FILE_DLL = 0x2000
_EXPORT_DIRECTORY = 0
_IMPORT_DIRECTORY = 1
_SECURITY_DIRECTORY = 4
_SECTION_HEADER_SIZE = 40
_IMPORT_DESCRIPTOR_SIZE = 20
_COFF_SYMBOL_SIZE = 18


@dataclass(frozen=True)
class PeInfo:
    """What :func:`read_pe` found in a PE file."""

    #: ``"x64"``, ``"x86"``, ``"arm64"``, or ``"unknown:0x...."`` with the COFF Machine value.
    machine: str
    #: Exported names, in the order of the export name table.
    exports: tuple[str, ...]
    #: Names of the DLLs the import directory lists, in its order.
    imports: tuple[str, ...]
    #: File offset where the image as linked ends: the end of the last section's
    #: raw data (or of the COFF symbol and string table some linkers leave after
    #: it, rounded up to FileAlignment), or SizeOfHeaders. Anything after it was
    #: appended later.
    image_end: int
    #: Whether the COFF header marks the file as a DLL.
    is_dll: bool


def slot_name(index: int) -> str:
    """The placeholder name of slot ``index``: ``msica_slot_007`` padded with ``_``."""
    if index < 0:
        raise ValueError(f"slot index must not be negative, got {index}")
    stem = f"{SLOT_PREFIX}{index:03d}"
    if len(stem) > SLOT_NAME_LENGTH:
        raise ValueError(f"slot index {index} does not fit in {SLOT_NAME_LENGTH} characters")
    return stem.ljust(SLOT_NAME_LENGTH, "_")


def slot_index(name: str) -> int | None:
    """The slot number ``name`` is the placeholder of, or None when it is no placeholder."""
    match = _SLOT_PATTERN.fullmatch(name)
    if match is None:
        return None
    index = int(match.group(1))
    return index if slot_name(index) == name else None


def validate_export_name(name: str) -> None:
    """Raise :class:`ExportNameError` unless ``name`` can be an action's export name.

    The engine passes the CustomAction table's Target (the DllEntry) to
    ``GetProcAddress`` as it is, so the name is ASCII, an identifier, at most
    :data:`SLOT_NAME_LENGTH` characters, and none of the shim's own names.
    """
    if not isinstance(name, str):
        raise ExportNameError(
            f"action name {name!r} is a {type(name).__name__}, not a str: "
            f"give the action a text name ({_NAME_HINT})"
        )
    if not name:
        raise ExportNameError(
            f"an action name is empty: give the action a name of 1 to {SLOT_NAME_LENGTH} "
            f"ASCII letters, digits and underscores ({_NAME_HINT})"
        )
    for position, char in enumerate(name):
        if not char.isascii():
            raise ExportNameError(
                f"action name {name!r} has the non-ASCII character {char!r} at position "
                f"{position}: DLL export names are ASCII, so use only A-Z, a-z, 0-9 and _ "
                f"({_NAME_HINT})"
            )
    if len(name) > SLOT_NAME_LENGTH:
        raise ExportNameError(
            f"action name {name!r} is {len(name)} characters long, more than the "
            f"{SLOT_NAME_LENGTH} a shim export can hold: use a shorter name ({_NAME_HINT})"
        )
    if _NAME_PATTERN.fullmatch(name) is None:
        if name[0].isdigit():
            problem = "starts with a digit"
        else:
            bad = next(c for c in name if not (c.isalnum() or c == "_"))
            problem = f"contains {bad!r}"
        raise ExportNameError(
            f"action name {name!r} {problem}: an action name is a letter or _ followed by "
            f"letters, digits and _ ({_NAME_HINT})"
        )
    if name.lower() == CUSTOM_ACTION.lower():
        same = "is" if name == CUSTOM_ACTION else "differs only in case from"
        raise ExportNameError(
            f"action name {name!r} {same} {CUSTOM_ACTION!r}, the shim's own entry point "
            f"(names differing only in case confuse case-insensitive tools): choose another "
            f"name ({_NAME_HINT})"
        )
    if name.startswith(SLOT_PREFIX):
        raise ExportNameError(
            f"action name {name!r} starts with {SLOT_PREFIX!r}, which is reserved for the "
            f"shim's unused entry points: choose another name ({_NAME_HINT})"
        )


def validate_export_names(names: Sequence[str], slot_count: int = SLOT_COUNT) -> None:
    """Check ``names`` one by one and together: no more than ``slot_count``, no repeats.

    Names that differ only in case are refused too: Windows and MSI tell them
    apart, but case-insensitive tools and people do not.
    """
    if len(names) > slot_count:
        raise ExportNameError(
            f"{len(names)} actions, but a shim DLL has only {slot_count} entry points to "
            f"name after them: put at most {slot_count} actions in one DLL"
        )
    seen: dict[str, str] = {}
    for name in names:
        validate_export_name(name)
        earlier = seen.get(name.lower())
        if earlier == name:
            raise ExportNameError(
                f"action name {name!r} is given twice: every action needs a name of its own "
                f"({_NAME_HINT})"
            )
        if earlier is not None:
            raise ExportNameError(
                f"action names {earlier!r} and {name!r} differ only in case: Windows would "
                f"tell them apart, but case-insensitive tools and people confuse them, so "
                f"rename one of them ({_NAME_HINT})"
            )
        seen[name.lower()] = name


def read_pe(data: bytes) -> PeInfo:
    """Parse the headers, export names and import DLL names of a PE file.

    Raises :class:`BuildError` when ``data`` is not a PE file or is cut short.
    """
    headers = _parse_headers(data)
    table = _read_exports(data, headers)
    exports = () if table is None else tuple(_text(entry.name) for entry in table.entries)
    return PeInfo(
        machine=_MACHINES.get(headers.machine, f"unknown:0x{headers.machine:04x}"),
        exports=exports,
        imports=_read_imports(data, headers),
        image_end=headers.image_end,
        is_dll=bool(headers.characteristics & _IMAGE_FILE_DLL),
    )


def slot_names_in(data: bytes) -> list[str]:
    """The placeholder names still in the DLL ``data``, in slot order."""
    headers = _parse_headers(data)
    table = _read_exports(data, headers)
    if table is None:
        return []
    found = (slot_index(_text(entry.name)) for entry in table.entries)
    return [slot_name(index) for index in sorted(i for i in found if i is not None)]


def rename_slots(data: bytes, names: Sequence[str]) -> bytes:
    """A copy of the shim DLL ``data`` in which slot *i* is exported as ``names[i]``.

    Slots past ``len(names)`` keep their placeholder names. Raises
    :class:`ExportNameError` for names that cannot be exports and
    :class:`BuildError` for a DLL that is not an unrenamed msica shim.
    """
    headers = _parse_headers(data)
    if headers.directory(_SECURITY_DIRECTORY)[0]:
        raise BuildError(
            "the DLL is Authenticode-signed and renaming its exports would break the "
            "signature: rename the unsigned shim first, then sign the result"
        )
    table = _read_exports(data, headers)
    if table is None:
        raise BuildError(f"the DLL has no export table, so it is not a msica shim: {_REBUILD_HINT}")
    slots = _find_slots(table)
    validate_export_names(names, len(slots))
    taken = {
        _text(entry.name).lower(): _text(entry.name)
        for position, entry in enumerate(table.entries)
        if position not in slots.values()
    }
    for name in names:
        other = taken.get(name.lower())
        if other is not None:
            raise ExportNameError(
                f"action name {name!r} clashes with the shim's own export {other!r} "
                f"(names differing only in case count as a clash): choose another name "
                f"({_NAME_HINT})"
            )

    out = bytearray(data)
    new_names = [entry.name for entry in table.entries]
    storage = SLOT_NAME_LENGTH + 1
    for index, name in enumerate(names):
        position = slots[index]
        encoded = name.encode("ascii")
        offset = table.entries[position].name_offset
        out[offset : offset + storage] = encoded.ljust(storage, b"\0")
        new_names[position] = encoded

    order = sorted(range(len(table.entries)), key=lambda position: new_names[position])
    for row, position in enumerate(order):
        entry = table.entries[position]
        struct.pack_into("<I", out, table.names_offset + 4 * row, entry.name_rva)
        struct.pack_into("<H", out, table.ordinals_offset + 2 * row, entry.ordinal_index)

    struct.pack_into("<I", out, headers.checksum_offset, 0)
    struct.pack_into("<I", out, headers.checksum_offset, _checksum(out))
    return bytes(out)


def pe_checksum(data: bytes) -> int:
    """The optional header CheckSum ``data`` should carry (the ImageHlp algorithm).

    The 16-bit one's-complement sum of the whole file, with the CheckSum field
    counted as zero, plus the file's length.
    """
    headers = _parse_headers(data)
    buffer = bytearray(data)
    struct.pack_into("<I", buffer, headers.checksum_offset, 0)
    return _checksum(buffer)


# --- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int


@dataclass(frozen=True)
class _Headers:
    machine: int
    characteristics: int
    checksum_offset: int
    size_of_headers: int
    image_end: int
    directories: tuple[tuple[int, int], ...]
    sections: tuple[_Section, ...]

    def directory(self, index: int) -> tuple[int, int]:
        """(RVA, size) of data directory ``index``; (0, 0) when the header has none."""
        return self.directories[index] if index < len(self.directories) else (0, 0)

    def offset_of(self, rva: int, what: str) -> int:
        """The file offset RVA ``rva`` is stored at."""
        for section in self.sections:
            start = section.virtual_address
            if start <= rva < start + max(section.virtual_size, section.raw_size):
                if rva - start >= section.raw_size:
                    raise BuildError(
                        f"corrupt PE file: {what} (RVA {rva:#x}) lies in section "
                        f"{section.name!r} past the data the file holds for it"
                    )
                return section.raw_offset + rva - start
        if rva < self.size_of_headers:
            return rva
        raise BuildError(f"corrupt PE file: {what} (RVA {rva:#x}) lies in no section")


@dataclass(frozen=True)
class _ExportName:
    name: bytes
    name_rva: int
    name_offset: int
    ordinal_index: int


@dataclass(frozen=True)
class _ExportTable:
    names_offset: int
    ordinals_offset: int
    entries: tuple[_ExportName, ...]


def _need(data: bytes | bytearray, offset: int, size: int, what: str) -> None:
    if offset < 0 or offset + size > len(data):
        raise BuildError(
            f"truncated PE file: {what} ({size} bytes at offset {offset:#x}) lies past the "
            f"end of the {len(data)}-byte file"
        )


def _u16(data: bytes, offset: int, what: str) -> int:
    _need(data, offset, 2, what)
    value: int = struct.unpack_from("<H", data, offset)[0]
    return value


def _u32(data: bytes, offset: int, what: str) -> int:
    _need(data, offset, 4, what)
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value


def _c_string(data: bytes, offset: int, what: str) -> bytes:
    _need(data, offset, 1, what)
    end = data.find(b"\0", offset)
    if end < 0:
        raise BuildError(f"truncated PE file: {what} at offset {offset:#x} has no terminating NUL")
    return data[offset:end]


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "backslashreplace")


def _round_up(value: int, alignment: int) -> int:
    if alignment <= 1:
        return value
    return -(-value // alignment) * alignment


def _parse_headers(data: bytes) -> _Headers:
    if len(data) < 0x40 or data[:2] != b"MZ":
        raise BuildError("not a PE file: it does not start with an 'MZ' DOS header")
    pe_offset = _u32(data, 0x3C, "the DOS header's e_lfanew")
    if data[pe_offset : pe_offset + 4] != b"PE\0\0" or pe_offset < 0x40:
        raise BuildError(
            f"not a PE file: no 'PE' signature at offset {pe_offset:#x}, where the DOS header "
            f"points"
        )
    coff = pe_offset + 4
    _need(data, coff, 20, "the COFF file header")
    machine, section_count = struct.unpack_from("<HH", data, coff)
    symbol_table, symbol_count, optional_size, characteristics = struct.unpack_from(
        "<IIHH", data, coff + 8
    )
    optional = coff + 20
    magic = _u16(data, optional, "the optional header")
    if magic == _PE32:
        directories_offset = optional + 96
    elif magic == _PE32_PLUS:
        directories_offset = optional + 112
    else:
        raise BuildError(
            f"unsupported PE file: optional header magic {magic:#x} is neither PE32 (0x10b) "
            f"nor PE32+ (0x20b)"
        )
    _need(data, optional, optional_size, "the optional header")
    if directories_offset > optional + optional_size:
        raise BuildError(
            f"corrupt PE file: the optional header is {optional_size} bytes, too short for "
            f"its fields"
        )
    file_alignment = _u32(data, optional + 36, "FileAlignment")
    size_of_headers = _u32(data, optional + 60, "SizeOfHeaders")
    checksum_offset = optional + 64
    directory_count = min(_u32(data, directories_offset - 4, "NumberOfRvaAndSizes"), 16)
    directory_count = min(directory_count, (optional + optional_size - directories_offset) // 8)
    directories = tuple(
        struct.unpack_from("<II", data, directories_offset + 8 * i) for i in range(directory_count)
    )

    table = optional + optional_size
    _need(data, table, section_count * _SECTION_HEADER_SIZE, "the section table")
    sections: list[_Section] = []
    image_end = size_of_headers
    for i in range(section_count):
        header = table + i * _SECTION_HEADER_SIZE
        virtual_size, virtual_address, raw_size, raw_offset = struct.unpack_from(
            "<IIII", data, header + 8
        )
        name = _text(data[header : header + 8].rstrip(b"\0"))
        if raw_size and raw_offset + raw_size > len(data):
            raise BuildError(
                f"truncated PE file: section {name!r} ends at offset {raw_offset + raw_size:#x} "
                f"but the file has only {len(data)} bytes"
            )
        if raw_size:
            image_end = max(image_end, raw_offset + raw_size)
        sections.append(_Section(name, virtual_address, virtual_size, raw_offset, raw_size))

    # A COFF symbol table and its string table (which names sections such as
    # "/4" longer than 8 characters) may follow the sections; it is part of the
    # file as linked, padded to FileAlignment.
    if symbol_table and symbol_table < len(data):
        strings = symbol_table + symbol_count * _COFF_SYMBOL_SIZE
        end = strings
        if strings + 4 <= len(data):
            end += max(_u32(data, strings, "the COFF string table"), 4)
        image_end = max(image_end, min(_round_up(end, file_alignment), len(data)))

    return _Headers(
        machine=machine,
        characteristics=characteristics,
        checksum_offset=checksum_offset,
        size_of_headers=size_of_headers,
        image_end=image_end,
        directories=directories,
        sections=tuple(sections),
    )


def _read_exports(data: bytes, headers: _Headers) -> _ExportTable | None:
    rva, _size = headers.directory(_EXPORT_DIRECTORY)
    if rva == 0:
        return None
    directory = headers.offset_of(rva, "the export directory")
    _need(data, directory, 40, "the export directory")
    function_count, name_count, functions_rva, names_rva, ordinals_rva = struct.unpack_from(
        "<IIIII", data, directory + 20
    )
    if name_count == 0:
        return _ExportTable(0, 0, ())
    functions = headers.offset_of(functions_rva, "the export address table")
    names = headers.offset_of(names_rva, "the export name table")
    ordinals = headers.offset_of(ordinals_rva, "the export ordinal table")
    _need(data, functions, 4 * function_count, "the export address table")
    _need(data, names, 4 * name_count, "the export name table")
    _need(data, ordinals, 2 * name_count, "the export ordinal table")

    entries: list[_ExportName] = []
    for i in range(name_count):
        (name_rva,) = struct.unpack_from("<I", data, names + 4 * i)
        (ordinal_index,) = struct.unpack_from("<H", data, ordinals + 2 * i)
        if ordinal_index >= function_count:
            raise BuildError(
                f"corrupt PE file: export name {i} refers to function {ordinal_index}, but the "
                f"export table has only {function_count}"
            )
        what = f"export name {i}"
        name_offset = headers.offset_of(name_rva, what)
        name = _c_string(data, name_offset, what)
        entries.append(_ExportName(name, name_rva, name_offset, ordinal_index))
    return _ExportTable(names, ordinals, tuple(entries))


def _read_imports(data: bytes, headers: _Headers) -> tuple[str, ...]:
    rva, _size = headers.directory(_IMPORT_DIRECTORY)
    if rva == 0:
        return ()
    descriptor = headers.offset_of(rva, "the import directory")
    names: list[str] = []
    while True:
        _need(data, descriptor, _IMPORT_DESCRIPTOR_SIZE, "an import descriptor")
        if not any(data[descriptor : descriptor + _IMPORT_DESCRIPTOR_SIZE]):
            return tuple(names)
        name_rva = _u32(data, descriptor + 12, "an import descriptor")
        what = f"the name of imported DLL {len(names)}"
        names.append(_text(_c_string(data, headers.offset_of(name_rva, what), what)))
        descriptor += _IMPORT_DESCRIPTOR_SIZE


def _find_slots(table: _ExportTable) -> dict[int, int]:
    """Slot index -> position in the export name table, checked to be renamable in place."""
    slots: dict[int, int] = {}
    for position, entry in enumerate(table.entries):
        text = _text(entry.name)
        if not text.startswith(SLOT_PREFIX):
            continue
        index = slot_index(text)
        if index is None:
            raise BuildError(
                f"the DLL exports {text!r}, which is not a {SLOT_NAME_LENGTH}-character msica "
                f"slot placeholder, so its slots cannot be renamed in place: {_REBUILD_HINT}"
            )
        if index in slots:
            raise BuildError(f"the DLL exports {text!r} twice: {_REBUILD_HINT}")
        slots[index] = position
    if not slots:
        raise BuildError(
            f"the DLL exports no {SLOT_PREFIX}* placeholders, so it is not a msica shim or its "
            f"slots were renamed already: {_REBUILD_HINT}"
        )
    missing = [i for i in range(max(slots) + 1) if i not in slots]
    if missing:
        raise BuildError(
            f"the DLL lacks the placeholder {slot_name(missing[0])!r} (and {len(missing) - 1} "
            f"more), so its slots were renamed already: {_REBUILD_HINT}"
        )
    _check_slot_storage(table)
    return slots


def _check_slot_storage(table: _ExportTable) -> None:
    """Refuse when export name strings share bytes, as a linker merging strings may do.

    A slot's placeholder and its NUL must be its own, or writing the new name
    there would change another name too.
    """
    spans = sorted(
        (entry.name_offset, entry.name_offset + len(entry.name) + 1, position)
        for position, entry in enumerate(table.entries)
    )
    reach, owner = -1, -1
    for start, end, position in spans:
        if start < reach:
            first = _text(table.entries[owner].name)
            second = _text(table.entries[position].name)
            raise BuildError(
                f"the export names {first!r} and {second!r} share bytes in the file, so the "
                f"slots cannot be renamed in place: {_REBUILD_HINT}"
            )
        if end > reach:
            reach, owner = end, position


def _checksum(data: bytearray) -> int:
    """ImageHlp CheckSum of ``data``, whose CheckSum field is already zero."""
    even = len(data) - len(data) % 2
    words = array("H")
    words.frombytes(memoryview(data)[:even])
    if sys.byteorder == "big":
        words.byteswap()
    total = sum(words)
    if len(data) % 2:
        total += data[-1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (total + len(data)) & 0xFFFFFFFF
