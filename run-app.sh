#!/usr/bin/env bash
# Set up (first run only) and launch Trackpaint on the bundled sample clip with the bundled model.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
exec .venv/bin/python -m app "$@"
