#!/usr/bin/env bash
# The whole test suite (unit, static and real-engine tests), then mypy and ruff.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
cd "$top"
.venv/bin/python -m pytest tests "$@"
.venv/bin/python -m mypy
.venv/bin/python -m ruff check sdk tests
