"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from msica.build.builder import SHIM_DIR as SHIMS
from tests.helpers import REPO as ROOT


@pytest.fixture(scope="session")
def shim_bytes() -> Callable[[str], bytes]:
    """``(arch) -> bytes`` of the real shim DLL for ``arch``, built first when missing."""
    cache: dict[str, bytes] = {}

    def read(arch: str) -> bytes:
        if arch not in cache:
            path = SHIMS / f"msica-shim.{arch}.dll"
            if not path.exists():
                result = subprocess.run(
                    ["bash", str(ROOT / "scripts" / "build-shims.sh")],
                    env={**os.environ, "MSICA_ARCHS": arch},
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0 or not path.exists():
                    pytest.fail(
                        f"scripts/build-shims.sh did not build {path.name} "
                        f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
                    )
            cache[arch] = path.read_bytes()
        return cache[arch]

    return read
