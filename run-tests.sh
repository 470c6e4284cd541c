#!/usr/bin/env bash
# Set up (first run only), lint, check the Qt-free core boundary, and run the whole test suite offscreen.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python scripts/check_core_imports.py
exec .venv/bin/python -m pytest -q "$@"
