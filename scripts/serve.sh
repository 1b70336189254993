#!/usr/bin/env bash
# The README's start command: installs everything, then runs `fleetboot serve`
# on its embedded defaults (data in ./data, proxyDHCP on 67/4011, TFTP on 69, HTTP on 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node bin/fleetboot.js serve "$@"
