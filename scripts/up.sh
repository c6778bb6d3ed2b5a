#!/usr/bin/env bash
# Installs corral, then runs a local cluster with the example workload. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/corral up --agents "${AGENTS:-3}" --apply examples/ "$@"
