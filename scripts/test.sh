#!/usr/bin/env bash
# The README's test command: installs everything (Debian + npm packages), builds,
# type-checks and runs the whole test suite (unit, interop and lab tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --with-test
node scripts/run-tests.mjs "$@"
