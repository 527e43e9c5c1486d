#!/usr/bin/env bash
# The main job, end to end: build the example's Python custom actions into a
# DLL, write the WiX include for it, compile the .msi with wixl, install it
# with the real engine (wine64 msiexec) and show what the actions did.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
msica="$top/.venv/bin/msica"
cd "$top/examples/hello"
set -x
"$msica" build
"$msica" wxs dist/hello.x64.dll -o hello.wxi
wixl -a x64 -o dist/hello.msi product.wxs
"$msica" run dist/hello.msi -p GREET_NAME="Ada Lovelace" --log dist/hello.log \
  --show-property GREET_NAME --show-property GREETING --show-property GREETING_LENGTH
