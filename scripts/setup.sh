#!/usr/bin/env bash
# Everything msica needs on a fresh Debian or Ubuntu machine, idempotent:
# system packages (wine64, msitools/wixl, libmsi0, cmake), a virtualenv in
# .venv with msica and its dev tools (zig comes from PyPI), the shim DLLs
# cross-built for x64, x86 and arm64, and a Wine prefix.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() { printf 'setup: %s\n' "$*" >&2; }

packages=(wine64 wine msitools wixl libmsi0 cmake python3-venv python3-pip ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.msica-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing msica and its dev tools into .venv (log: .venv/pip.log)"
  if ! .venv/bin/python -m pip install --disable-pip-version-check -e ".[dev]" \
      > .venv/pip.log 2>&1; then
    tail -40 .venv/pip.log >&2
    exit 1
  fi
  touch "$stamp"
fi

MSICA_PYTHON="$top/.venv/bin/python" scripts/build-shims.sh >&2

if [ ! -f "${WINEPREFIX:-$HOME/.wine}/system.reg" ]; then
  say "creating the Wine prefix"
  WINEDEBUG=-all wineboot -i >/dev/null 2>&1 || true
fi
