#!/usr/bin/env bash
# The README's start command: installs everything, builds the imaging boot
# environment when it is missing, then runs `fleetboot serve` on its embedded
# defaults (data in ./data, proxyDHCP on 67/4011, TFTP on 69, HTTP on 8080).
# Arguments go to `fleetboot serve` (e.g. --data-dir DIR, --interface IFACE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

# The boot environment goes where the server looks for it: <data-dir>/bootenv.
data_dir=data
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-dir) data_dir="${args[$((i + 1))]:-data}" ;;
    --data-dir=*) data_dir="${args[$i]#--data-dir=}" ;;
  esac
done
if [ ! -s "$data_dir/bootenv/initrd.img" ] || [ ! -s "$data_dir/bootenv/vmlinuz" ]; then
  echo "serve: building the imaging boot environment into $data_dir/bootenv (once; about a minute)"
  bash scripts/build-bootenv.sh --out "$data_dir/bootenv" --cache /var/cache/fleetboot/bootenv-build
fi
exec node bin/fleetboot.js serve "$@"
