#!/usr/bin/env bash
# Installs corral with its test dependencies, then runs the static checks and the
# whole test suite; any finding or failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/ruff check corral tests bench
.venv/bin/mypy corral
# --durations=30: every run (CI included) ends with its 30 slowest tests, where the
# 30-minute budget goes.
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 "$@"
