#!/usr/bin/env bash
# Cross-builds the shim for x64, x86 and arm64 with zig (from PyPI) through
# CMakeLists.txt and leaves the DLLs in sdk/msica/build/shims/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python=${MSICA_PYTHON:-python3}
export MSICA_PYTHON=$python
for arch in ${MSICA_ARCHS:-x64 x86 arm64}; do
  cmake -S "$top" -B "$top/out/shim-$arch" -DMSICA_ARCH="$arch" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$top/bridge_c/toolchain/zig.cmake" >/dev/null
  cmake --build "$top/out/shim-$arch" >/dev/null
  echo "built sdk/msica/build/shims/msica-shim.$arch.dll"
done
