#!/usr/bin/env bash
# Try Fleetboot without hardware (Debian 12, as root):
#
#   sudo bash scripts/lab-demo.sh                      # a legacy-BIOS machine PXE-boots from Fleetboot
#   sudo bash scripts/lab-demo.sh --variant ovmf-pxe   # a UEFI machine with the firmware's own PXE
#   sudo bash scripts/lab-demo.sh --variant ovmf-ipxe  # UEFI with iPXE's EFI boot ROM
#   sudo bash scripts/lab-demo.sh --unknown            # a machine Fleetboot does not know: menu, then local disk
#
# It installs what is missing (scripts/install-deps.sh --with-test), builds a
# small test kernel+initrd from Debian packages, then builds a virtual LAN out
# of network namespaces (nothing touches your real network): a bridge,
# Fleetboot (`fleetboot serve --dhcp proxy`), an existing DHCP server
# (dnsmasq handing out addresses only) and a QEMU machine on a tap device.
# It assigns the test kernel+initrd to the machine's MAC, powers it on and
# prints each boot step from the logs (DHCP -> proxyDHCP -> TFTP -> iPXE
# script -> decision -> kernel -> initrd -> callback), then how far it got.
# Everything is torn down at the end, even on Ctrl-C; the logs stay in
# lab-run/demo-*/.
#
# --no-install skips the installation step.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "lab-demo: run as root (it creates network namespaces and tap devices): sudo bash scripts/lab-demo.sh" >&2
  exit 1
fi

install=1
args=()
for a in "$@"; do
  if [ "$a" = --no-install ]; then install=0; else args+=("$a"); fi
done

if [ "$install" = 1 ]; then
  echo "lab-demo: installing dependencies (scripts/install-deps.sh --with-test) ..."
  bash scripts/install-deps.sh --with-test
fi

run_dir="$PWD/lab-run/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"

cleanup() {
  # The demo removes its lab itself; this catches what a crash could leave behind.
  local id
  id="$(cat "$run_dir/lab-id" 2>/dev/null || true)"
  [ -n "$id" ] || return 0
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^fb${id}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

node --import tsx scripts/lab-demo.ts --run-dir "$run_dir" "${args[@]}"
