#!/usr/bin/env bash
# Installs everything Fleetboot needs on Debian 12 (run as root): the Debian
# packages (iPXE boot binaries, and the lab/test peers), then the npm packages,
# then builds the TypeScript. Safe to run again: it skips what is there.
# Every program the code runs is listed with its package in src/lib/programs.ts;
# src/lib/programs.test.ts checks (through --list) that its package is here.
#
#   bash scripts/install-deps.sh [--with-test]   # install
#   bash scripts/install-deps.sh --list          # print "runtime: PKG..." and "test: PKG...", install nothing
set -euo pipefail
cd "$(dirname "$0")/.."

need_run=()
# Runtime: iPXE binaries served over TFTP; what scripts/build-bootenv.sh
# copies into the boot environment (busybox, kmod, partclone, sfdisk, sgdisk,
# util-linux tools, zstd) and packs it with (cpio, zstd, kmod's depmod).
# gcc and libc6-dev build native/fastudp.c (the TFTP service's UDP I/O) against
# the headers the nodejs package ships in /usr/include/node.
# strip (binutils) shrinks the boot environment's node when it is there, and
# the endpoint agent's (scripts/build-agent-deb.sh, whose Depends dpkg-dev's
# dpkg-shlibdeps reads from that node). The rest is what scripts/*.sh run
# (essential on Debian, listed all the same).
# mount: the imaging agent mounts a deployed Linux root to write its enrolment
# file (task deploy --enrol; in the boot environment busybox's mount does it).
runtime_pkgs=(ipxe busybox-static cpio zstd kmod partclone fdisk gdisk util-linux gcc libc6-dev
  binutils dpkg-dev bash dash coreutils findutils gzip libc-bin procps mount)
# Lab and test peers: QEMU + firmware, the DHCP/TFTP peers, clients, tooling
# (tcpdump: test/dhcp-relay.lab.test.ts; mount: losetup for the disk tests;
# udpcast and uftp: bench/multicast.ts's peers; smcroute: the lab's multicast router;
# chromium and fonts: the console's browser tests, driven by playwright-core;
# systemd's systemd-analyze and lintian: test/agent-deb.test.ts checks the agent's package
# (and test/service-unit.test.ts the server's unit); strace: test/service-syscalls.test.ts;
# openssl: a second parser of the certificates src/tls/ makes;
# debootstrap, extlinux, syslinux-common, tar: scripts/build-debian-image.sh, the Debian
# image test/lab/agent.e2e.test.ts deploys; postgresql-15: the store's PostgreSQL pass and the
# cluster lab start their own servers with it, src/store/test-postgres.ts).
test_pkgs=(ipxe-qemu qemu-system-x86 ovmf seabios dnsmasq-base atftp tftp-hpa tftpd-hpa
  curl iproute2 nftables kea-admin busybox-static cpio zstd procps iputils-ping psmisc
  isc-dhcp-client dhcpcd-base isc-dhcp-relay isc-dhcp-server kea-dhcp4-server mtools
  dosfstools e2fsprogs nginx-light tcpdump mount coreutils util-linux udpcast uftp smcroute
  chromium fonts-dejavu-core systemd lintian openssl debootstrap extlinux syslinux-common tar strace
  postgresql-15 postgresql-client-15)

if [ "${1:-}" = "--list" ]; then
  echo "runtime: ${runtime_pkgs[*]}"
  echo "test: ${test_pkgs[*]}"
  exit 0
fi

want=("${runtime_pkgs[@]}")
if [ "${1:-}" = "--with-test" ]; then want+=("${test_pkgs[@]}"); fi

for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_run+=("$p")
done
if [ "${#need_run[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${need_run[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_run[@]}" >/dev/null
  # tftpd-hpa's package starts a system daemon on :69; the benchmark starts its own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now tftpd-hpa >/dev/null 2>&1 || true; fi
  # isc-dhcp-server and kea-dhcp4-server are there for their config checkers
  # (dhcpd -t, kea-dhcp4 -t) and the benchmark: no system DHCP daemon may run.
  # nginx-light is bench/imaging.ts's transport peer, started there on its own port.
  # uftp's package starts uftpd (receiving into /tmp from anyone) and smcroute's a
  # multicast router for the host: the benchmark and lab tests start their own.
  # postgresql's package creates and starts a cluster "main" on 5432: the tests start
  # their own PostgreSQL (src/store/test-postgres.ts), so that one is stopped.
  for svc in isc-dhcp-server kea-dhcp4-server nginx uftp smcroute smcroute-helper postgresql; do
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    if [ -x "/etc/init.d/$svc" ]; then "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
  done
  pkill -x in.tftpd 2>/dev/null || true
fi

# Secure Boot (uefi.secureBoot): Debian's signed shim and network GRUB, taken
# out of the packages shim-signed and grub-efi-amd64-signed with apt-get
# download + dpkg-deb -x, not installed: installing them would pull GRUB's
# EFI tools and run grub-install against this machine's own boot loader.
# Replaced when the package versions change; the versions and sha256s go
# into VERSIONS beside the files.
signed_dir=/usr/local/share/fleetboot/signed
signed_pkgs=(shim-signed grub-efi-amd64-signed)
signed_want=""
for p in "${signed_pkgs[@]}"; do
  v="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then apt-get update -qq; v="$(apt-cache policy "$p" | awk '/Candidate:/ {print $2; exit}')"; fi
  signed_want+="$p $v"$'\n'
done
if [ ! -s "$signed_dir/shimx64.efi.signed" ] || [ ! -s "$signed_dir/grubnetx64.efi.signed" ] || [ "$(sed -n '/^[a-z]/p' "$signed_dir/VERSIONS" 2>/dev/null | grep -v sha256 || true)"$'\n' != "$signed_want" ]; then
  echo "install-deps: Debian's signed shim and GRUB into $signed_dir"
  t="$(mktemp -d)"
  chmod 0755 "$t"
  (cd "$t" && apt-get download -q "${signed_pkgs[@]}" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' -e '^Fetched' >&2 || true)
  for d in "$t"/*.deb; do dpkg-deb -x "$d" "$t/x"; done
  mkdir -p "$signed_dir"
  install -m 0644 "$t/x/usr/lib/shim/shimx64.efi.signed" "$signed_dir/shimx64.efi.signed"
  install -m 0644 "$t/x/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$signed_dir/grubnetx64.efi.signed"
  { printf '%s' "$signed_want"; (cd "$signed_dir" && sha256sum shimx64.efi.signed grubnetx64.efi.signed | sed 's/^/sha256 /'); } > "$signed_dir/VERSIONS"
  rm -rf "$t"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # swagger-ui-dist (/api/docs) depends on @scarf/scarf, whose install script
  # reports the installation to its vendor: off (scarf-js's documented opt-out).
  SCARF_ANALYTICS=false npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
