#!/usr/bin/env bash
# Installs corral with its test dependencies, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
