#!/usr/bin/env bash
# Builds Fleetboot's boot environment, from Debian packages only (apt, no other
# download), into --out DIR (default data/bootenv, the server's default
# imaging.bootEnvDir):
#
#   vmlinuz       Debian's amd64 kernel (linux-image-amd64 -> linux-image-<abi>-amd64)
#   initrd.img    cpio newc + zstd (gzip if the kernel cannot unpack zstd): busybox,
#                 kmod, disk/NIC modules with their dependencies, NIC firmware when
#                 the machine has it, partclone.*, sfdisk, sgdisk, util-linux tools,
#                 zstd, the Node runtime and the imaging agent (/fleetboot/agent.mjs)
#                 with the native UDP addon beside it (/fleetboot/fastudp.node, from
#                 build/native: scripts/build-native.sh; without it the agent receives
#                 multicast through node:dgram, at more CPU per datagram)
#   bootenv.json  what is inside: kernel, modules, firmware, tools, sizes, sha256s
#
# The initramfs runs bootenv/init (a busybox sh script) as /init: coldplug,
# network (BOOTIF= or every NIC with a link, DHCP), then `node
# /fleetboot/agent.mjs boot`, then fleetboot.onexit= (reboot|poweroff|shell).
#
#   bash scripts/build-bootenv.sh [--out DIR] [--cache DIR] [--agent-entry FILE]
#                                 [--firmware-dir DIR]... [--zstd-level N] [--force]
#
# Cached: the kernel package is downloaded and unpacked once per kernel
# package version (under --cache, default test/.cache/bootenv-build, never
# committed; delete it to start afresh); the initramfs is rebuilt only when an
# input changed (this script, bootenv/*, the agent bundle, the kernel, a
# tool's package version, the options, the firmware found) or on --force
# (which also asks apt again which kernel is current). The outputs are replaced atomically (rename), so a running server
# never serves half a file. Prints the output paths at the end.
#
# Needs (Debian packages): busybox-static kmod partclone fdisk gdisk util-linux
# zstd cpio (scripts/install-deps.sh installs them), the Node runtime
# (/usr/bin/node, major >= 20) and esbuild (node_modules, `npm ci`).
set -euo pipefail
[ -n "${FB_TRACE:-}" ] && { PS4='+ $EPOCHREALTIME '; set -x; }
t_start=$(date +%s.%N)
repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$repo/scripts/build-bootenv.sh"

out="$repo/data/bootenv"
cache="$repo/test/.cache/bootenv-build"
agent_entry="$repo/src/agent/main.ts"
zstd_level=9
force=0
node_bin="${FLEETBOOT_NODE:-/usr/bin/node}"
firmware_dirs=()

usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$(abspath "$2")"; shift 2 ;;
    --cache) cache="$(abspath "$2")"; shift 2 ;;
    --agent-entry) agent_entry="$(abspath "$2")"; shift 2 ;;
    --firmware-dir) firmware_dirs+=("$(abspath "$2")"); shift 2 ;;
    --zstd-level) zstd_level="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-bootenv: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$zstd_level" in [1-9]|1[0-9]) ;; *) echo "build-bootenv: --zstd-level must be 1-19: current value is '$zstd_level'" >&2; exit 2 ;; esac

log() { printf 'build-bootenv: %s\n' "$*" >&2; }
die() { printf 'build-bootenv: error: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------ what goes in ----
# Kernel modules, by name. Each is taken with everything modprobe would load
# before it (depends= and softdep pre:/post:, resolved from modules.dep /
# modules.softdep of the whole kernel), e.g. ahci -> libahci libata scsi_mod,
# r8169 -> realtek (its PHY driver, a softdep). Names that are built into the
# kernel are skipped (listed as built-in in bootenv.json); unknown names fail.
MODULES_DISK=(
  ahci ata_piix ata_generic sd_mod           # SATA/AHCI, legacy IDE, SCSI disks
  nvme vmd                                   # NVMe, Intel VMD (NVMe behind "RAID mode")
  virtio_pci virtio_blk virtio_scsi          # KVM/QEMU guests
  vmw_pvscsi hv_storvsc                      # VMware, Hyper-V
  megaraid_sas mpt3sas hpsa smartpqi         # server RAID/HBA: Broadcom/LSI, HPE
  sdhci_pci sdhci_acpi mmc_block             # eMMC
  usb_storage uas                            # USB disks
  crc64_rocksoft_generic crc32c_generic      # crypto API users (t10-pi, libcrc32c) ask for these by alias
)
MODULES_NET=(
  virtio_net e1000 e1000e igb igc ixgbe i40e ice # virtio, Intel
  r8169 realtek                                  # Realtek (and its PHY driver)
  tg3 broadcom bnx2 bnxt_en                      # Broadcom
  vmxnet3 hv_netvsc                              # VMware, Hyper-V
  r8152 ax88179_178a cdc_ether                   # USB Ethernet adapters
)
MODULES_INPUT=(xhci_pci ehci_pci ohci_pci uhci_hcd usbhid hid_generic) # USB keyboard for fleetboot.onexit=shell
# A deploy with enrol mounts the deployed Linux root to write the endpoint agent's
# enrol.json (src/agent/enrol.ts): ext4 (it mounts ext2 and ext3 too; with jbd2,
# mbcache and its crc modules). xfs and btrfs roots are not mounted (their modules
# would double the initramfs's module size): such a deploy warns, naming them.
MODULES_FS=(ext4)
MODULES=("${MODULES_DISK[@]}" "${MODULES_NET[@]}" "${MODULES_INPUT[@]}" "${MODULES_FS[@]}")

# Binaries with their shared libraries: "path:debian-package". partclone.*
# (every one the package ships, with its fs-name links) is added below.
TOOLS=(
  /usr/sbin/sfdisk:fdisk /usr/sbin/sgdisk:gdisk
  /usr/sbin/blkid:util-linux /usr/sbin/wipefs:util-linux /usr/bin/partx:util-linux
  /usr/sbin/blockdev:util-linux /usr/bin/lsblk:util-linux
  /usr/bin/zstd:zstd /usr/bin/kmod:kmod
)
PARTCLONE_REQUIRED=(extfs fat ntfs xfs btrfs dd imager)

# Non-free NIC firmware: Debian's non-free-firmware component. Taken with
# `apt-get download` when apt can (the component is in the sources), else from
# the host's /lib/firmware and --firmware-dir; only the files the included
# modules ask for (modinfo firmware=) are copied. What is not found is listed
# in bootenv.json as firmware.missing.
FIRMWARE_PKGS=(firmware-realtek firmware-bnx2 firmware-misc-nonfree)

# ------------------------------------------------------------ checks ----------
for t in dpkg-deb apt-get apt-cache cpio zstd ldd depmod modprobe modinfo sha256sum flock; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is missing (bash scripts/install-deps.sh installs the build's packages)"
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is missing or not static (apt-get install busybox-static)"
[ -x "$node_bin" ] || die "no Node runtime at $node_bin (set FLEETBOOT_NODE=PATH)"
node_version="$("$node_bin" --version)"
[ "$(echo "$node_version" | sed 's/^v\([0-9]*\).*/\1/')" -ge 20 ] || die "$node_bin is $node_version; the agent needs Node 20 or later"
esbuild="$repo/node_modules/.bin/esbuild"
[ -x "$esbuild" ] || die "$esbuild is missing (npm ci)"
[ -f "$agent_entry" ] || die "agent entry $agent_entry does not exist (--agent-entry FILE)"
for f in "$repo/bootenv/init" "$repo/bootenv/udhcpc.script"; do [ -f "$f" ] || die "$f is missing"; done
for pc in "${PARTCLONE_REQUIRED[@]}"; do [ -x "/usr/sbin/partclone.$pc" ] || die "/usr/sbin/partclone.$pc is missing (apt-get install partclone)"; done
for t in "${TOOLS[@]}"; do [ -x "${t%%:*}" ] || die "${t%%:*} is missing (apt-get install ${t##*:})"; done

mkdir -p "$cache" "$out"
# An ignored cache: the default lives in test/.cache, which ignores itself.
case "$cache" in "$repo"/test/.cache/*) [ -f "$repo/test/.cache/.gitignore" ] || printf '*\n' >"$repo/test/.cache/.gitignore" ;; esac
# One build at a time per cache (tests may build side by side): the kernel
# cache is unpacked in place.
exec 9>"$cache/.lock"
flock 9
work="$(mktemp -d "$cache/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Network options for apt: without a reachable mirror (an isolated PXE
# network, scripts/serve.sh's first start there) a download fails within
# about half a minute instead of waiting out apt's default timeouts and
# retries on a network that drops packets.
APT_NET=(-o Acquire::http::Timeout=10 -o Acquire::https::Timeout=10 -o Acquire::Retries=1)
# apt's _apt user writes downloads into the current directory; apt's messages
# are also kept in DIR/.apt-output for apt_error.
apt_download() { # DIR PKG... -> .debs in DIR
  local dir="$1"; shift
  chmod 777 "$dir"
  (cd "$dir" && apt-get download -q "${APT_NET[@]}" "$@" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' -e '^Fetched' | tee .apt-output >&2 || true)
}
# apt's first error after apt_download DIR (e.g. "Failed to fetch URL  Temporary failure resolving 'deb.debian.org'").
apt_error() { # DIR
  local e
  e="$(grep -m1 '^E: ' "$1/.apt-output" 2>/dev/null | sed 's/^E: //; s/  */ /g' || true)"
  echo "${e:-apt printed no error}"
}

# ------------------------------------------------------------ apt -----------
# What apt would fetch: the kernel package behind linux-image-amd64 and the
# firmware packages it has a candidate for. apt-cache takes about a second a
# call here, so the answer is cached until the package lists change.
declare -A candidate=()
resolve_apt() {
  kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  [ -n "$kpkg" ] || return 0
  local name="" line
  while IFS= read -r line; do
    case "$line" in
      [!\ ]*:) name="${line%:}" ;;
      *Candidate:*) line="${line##*Candidate: }"; [ "$line" = "(none)" ] || candidate[$name]="$line" ;;
    esac
  done < <(apt-cache policy "$kpkg" "${FIRMWARE_PKGS[@]}" 2>/dev/null)
}
lists_key="$( (stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null || true; echo "${FIRMWARE_PKGS[*]}") | sha256sum | cut -c1-16)"
resolved="$cache/apt-resolved"
kpkg=""
if [ "$force" = 0 ] && [ "$(head -n1 "$resolved" 2>/dev/null)" = "$lists_key" ]; then
  while read -r k v; do
    if [ "$k" = kernel ]; then kpkg="$v"; else candidate[$k]="$v"; fi
  done < <(tail -n +2 "$resolved")
else
  resolve_apt
  if [ -z "$kpkg" ]; then
    log "apt-get update (no linux-image-amd64 in the package lists)"
    apt-get update -qq "${APT_NET[@]}" || die "apt-get update failed (is a Debian mirror reachable? see /etc/apt/sources.list*)"
    lists_key="$( (stat -c '%n %Y %s' /var/lib/apt/lists/*Packages* 2>/dev/null || true; echo "${FIRMWARE_PKGS[*]}") | sha256sum | cut -c1-16)"
    resolve_apt
  fi
  [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)"
  { echo "$lists_key"; echo "kernel $kpkg"; for k in "${!candidate[@]}"; do echo "$k ${candidate[$k]}"; done; } >"$resolved"
fi
kpkg_version="${candidate[$kpkg]:-}"
[ -n "$kpkg_version" ] || die "apt has no candidate version of $kpkg"

# ------------------------------------------------------------ kernel ----------
kdir="$cache/kernel/${kpkg}_${kpkg_version}"
if [ ! -f "$kdir/.complete" ]; then
  rm -rf "$kdir"
  mkdir -p "$work/deb"
  log "apt-get download $kpkg ($kpkg_version)"
  apt_download "$work/deb" "$kpkg=$kpkg_version"
  deb="$(ls "$work"/deb/*.deb 2>/dev/null | head -n1 || true)"
  [ -n "$deb" ] || die "cannot download the kernel package $kpkg ($kpkg_version) from a Debian mirror: $(apt_error "$work/deb")"
  log "unpacking $(basename "$deb")"
  mkdir -p "$kdir"
  dpkg-deb -x "$deb" "$kdir"
  rm -rf "$kdir/usr/share/doc" "$deb"
  kv="$(ls "$kdir/lib/modules" | head -n1)"
  # The package ships no modules.dep (its postinst runs depmod): make it here.
  depmod -b "$kdir" "$kv"
  touch "$kdir/.complete"
  # Older kernels' caches are of no use any more.
  for d in "$cache"/kernel/*; do [ "$d" = "$kdir" ] || rm -rf "$d"; done
fi
kver="$(ls "$kdir/lib/modules" | head -n1)"
kconfig="$kdir/boot/config-$kver"
[ -f "$kdir/boot/vmlinuz-$kver" ] && [ -f "$kconfig" ] || die "$kdir has no boot/vmlinuz-$kver or config: a broken cache, delete it"
for opt in CONFIG_BLK_DEV_INITRD CONFIG_DEVTMPFS CONFIG_TMPFS CONFIG_PACKET CONFIG_UNIX CONFIG_INET CONFIG_SERIAL_8250_CONSOLE CONFIG_DMIID; do
  grep -q "^$opt=y" "$kconfig" || die "$opt is not built into $kver: the boot environment relies on it"
done
if grep -q '^CONFIG_RD_ZSTD=y' "$kconfig"; then compression=zstd; else compression=gzip; fi
grep -q '^CONFIG_MODULE_COMPRESS_NONE=y' "$kconfig" || log "warning: $kver compresses its modules; kmod must then read them compressed"

# Resolve the module list against the whole kernel's modules.dep/softdep.
: >"$work/modpaths"; : >"$work/builtin"
for m in "${MODULES[@]}"; do
  deps="$(modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>&1)" || die "module $m: $deps"
  while read -r kind path _; do
    case "$kind" in
      insmod) echo "$path" >>"$work/modpaths" ;;
      builtin) echo "$path" >>"$work/builtin" ;;
    esac
  done <<<"$deps"
done
sort -u -o "$work/modpaths" "$work/modpaths"
sort -u -o "$work/builtin" "$work/builtin"

# ------------------------------------------------------------ firmware --------
fw_sources=()
fwcache="$cache/firmware"
fw_avail=()
fw_key=""
for p in "${FIRMWARE_PKGS[@]}"; do
  [ -n "${candidate[$p]:-}" ] || continue
  fw_avail+=("$p")
  fw_key="$fw_key $p=${candidate[$p]}"
done
if [ "${#fw_avail[@]}" -gt 0 ]; then
  if [ "$(cat "$fwcache/.key" 2>/dev/null)" != "$fw_key" ]; then
    rm -rf "$fwcache"; mkdir -p "$work/fwdeb" "$fwcache"
    log "apt-get download ${fw_avail[*]}"
    fw_get=()
    for p in "${fw_avail[@]}"; do fw_get+=("$p=${candidate[$p]}"); done
    apt_download "$work/fwdeb" "${fw_get[@]}"
    for d in "$work"/fwdeb/*.deb; do [ -f "$d" ] && dpkg-deb -x "$d" "$work/fwx"; done
    [ -d "$work/fwx/lib/firmware" ] && cp -a "$work/fwx/lib/firmware/." "$fwcache/"
    [ -d "$work/fwx/usr/lib/firmware" ] && cp -a "$work/fwx/usr/lib/firmware/." "$fwcache/"
    echo "$fw_key" >"$fwcache/.key"
  fi
  fw_sources+=("$fwcache")
else
  log "note: no non-free firmware package is available to apt here (${FIRMWARE_PKGS[*]}); see docs/bootenv.md"
fi
fw_sources+=("${firmware_dirs[@]}")
[ -d /lib/firmware ] && fw_sources+=(/lib/firmware)

# ------------------------------------------------------------ agent -----------
log "bundling the agent: $(realpath --relative-to="$repo" "$agent_entry")"
"$esbuild" "$agent_entry" --bundle --platform=node --format=esm --target=node20 \
  --log-level=warning --legal-comments=none --outfile="$work/agent.mjs"
agent_sha="$(sha256sum "$work/agent.mjs" | cut -d' ' -f1)"
# The native UDP addon (N-API: it loads in any Node of the same platform; it needs only libc, which Node brings).
native_addon="$repo/build/native/fastudp.node"
native_sha=none
if [ -f "$native_addon" ]; then
  native_sha="$(sha256sum "$native_addon" | cut -d' ' -f1)"
else
  log "note: no native UDP addon at $native_addon (scripts/build-native.sh): the agent will receive multicast through node:dgram"
fi

# ------------------------------------------------------------ up to date? -----
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
tool_pkgs=(busybox-static kmod partclone fdisk gdisk util-linux zstd libc6)
node_pkg="$(dpkg -S "$node_bin" 2>/dev/null | cut -d: -f1 || true)"
stamp="$( {
  sha256sum "$self" "$repo/bootenv/init" "$repo/bootenv/udhcpc.script" | cut -d' ' -f1
  echo "agent $agent_sha native $native_sha kernel $kpkg $kpkg_version $compression $zstd_level"
  for p in "${tool_pkgs[@]}"; do echo "$p $(pkgver "$p")"; done
  echo "node $node_version $(stat -c '%s %Y' "$node_bin")"
  echo "firmware $fw_key ${firmware_dirs[*]:-}"
  for d in "${fw_sources[@]}"; do find "$d" -printf '%P %s %T@\n' 2>/dev/null | LC_ALL=C sort | sha256sum | cut -c1-16; done
} | sha256sum | cut -d' ' -f1)"
if [ "$force" = 0 ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ -s "$out/bootenv.json" ] &&
  [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "up to date ($(elapsed) s)"
  printf '%s\n' "$out/vmlinuz" "$out/initrd.img" "$out/bootenv.json"
  exit 0
fi

# ------------------------------------------------------------ initramfs -------
root="$work/root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,dev,proc,sys,run,tmp,root,etc,var/log,fleetboot}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"
# The kernel opens /dev/console for /init before devtmpfs is mounted.
if [ "$(id -u)" = 0 ]; then mknod -m 600 "$root/dev/console" c 5 1; fi

# A file and the shared libraries it needs, at the same paths as on the host.
declare -A have_lib=()
add_file() { # SRC [DEST-PATH]
  local src="$1" dest="${2:-$1}"
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
}
add_binary() { # PATH
  add_file "$1"
  local lib
  # ldd prints "name => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)".
  for lib in $(ldd "$1" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
    [ -n "${have_lib[$lib]:-}" ] && continue
    have_lib[$lib]=1
    add_file "$lib"
  done
}

# Node: stripped when binutils is there (the nodesource build carries debug info: 99 -> 86 MB).
add_binary "$node_bin"
[ "$node_bin" = /usr/bin/node ] || { mv "$root$node_bin" "$root/usr/bin/node"; }
if command -v strip >/dev/null 2>&1; then strip --strip-all "$root/usr/bin/node"; fi

for t in "${TOOLS[@]}"; do add_binary "${t%%:*}"; done
for f in /usr/sbin/partclone.*; do
  if [ -L "$f" ]; then ln -s "$(readlink "$f")" "$root$f"; else add_binary "$f"; fi
done
for a in modprobe insmod rmmod lsmod modinfo depmod; do ln -s ../bin/kmod "$root/usr/sbin/$a"; done
cp /bin/busybox "$root/usr/bin/busybox"
for a in $(/bin/busybox --list); do
  case "$a" in busybox|init|linuxrc) continue ;; esac
  [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || [ -L "$root/usr/bin/$a" ] || [ -L "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done

# Modules: the resolved set, with modules.order/builtin so depmod -b knows the kernel.
mroot="$root/usr/lib/modules/$kver"
mkdir -p "$mroot"
while read -r p; do
  rel="${p#"$kdir"/lib/modules/"$kver"/}"
  install -D -m 0644 "$p" "$mroot/$rel"
done <"$work/modpaths"
cp "$kdir/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$mroot/"
depmod -b "$root" "$kver"
# Debian's modprobe.d would be empty here; nothing is blacklisted.
mkdir -p "$root/etc/modprobe.d"
module_names="$(sed 's#.*/##; s/\.ko$//' "$work/modpaths" | tr - _ | LC_ALL=C sort -u)"

# Firmware the included modules name (modinfo firmware=, may hold wildcards).
: >"$work/fw_in"; : >"$work/fw_missing"
while read -r p; do
  while read -r fw; do
    [ -n "$fw" ] || continue
    found=""
    for d in "${fw_sources[@]}"; do
      # The name may be a pattern (compgen -G expands it).
      for f in $(cd "$d" 2>/dev/null && compgen -G "$fw" || true); do
        [ -f "$d/$f" ] || continue
        install -D -m 0644 "$(realpath "$d/$f")" "$root/usr/lib/firmware/$f"; echo "$f" >>"$work/fw_in"; found=1
      done
      [ -n "$found" ] && break
    done
    [ -n "$found" ] || echo "$(basename "$p" .ko): $fw" >>"$work/fw_missing"
  done < <(modinfo -F firmware "$p")
done <"$work/modpaths"

# Configuration files and the agent.
install -m 0755 "$repo/bootenv/init" "$root/init"
install -m 0755 "$repo/bootenv/udhcpc.script" "$root/etc/udhcpc.script"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
: >"$root/etc/resolv.conf"
install -m 0644 "$work/agent.mjs" "$root/fleetboot/agent.mjs"
echo "$agent_sha" >"$root/fleetboot/agent.sha256"
[ "$native_sha" = none ] || install -m 0644 "$native_addon" "$root/fleetboot/fastudp.node"

# A reproducible archive: sorted names, owner root, one timestamp.
find "$root" -exec touch -h -d @0 {} +
log "packing the initramfs ($compression)"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) >"$work/initrd.cpio"
uncompressed=$(stat -c %s "$work/initrd.cpio")
if [ "$compression" = zstd ]; then
  zstd -q -T0 "-$zstd_level" --check "$work/initrd.cpio" -o "$work/initrd.img"
else
  gzip -n -6 -c "$work/initrd.cpio" >"$work/initrd.img"
fi
cp "$kdir/boot/vmlinuz-$kver" "$work/vmlinuz"

# ------------------------------------------------------------ bootenv.json ----
json_list() { # lines on stdin -> JSON array of strings
  local first=1 line
  printf '['
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    [ $first = 1 ] || printf ', '
    first=0
    line="${line//\\/\\\\}"; printf '"%s"' "${line//\"/\\\"}"
  done
  printf ']'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
{
  printf '{\n'
  printf '  "builtAt": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "kernel": { "package": "%s", "packageVersion": "%s", "version": "%s" },\n' "$kpkg" "$kpkg_version" "$kver"
  printf '  "vmlinuz": { "bytes": %s, "sha256": "%s" },\n' "$(stat -c %s "$work/vmlinuz")" "$(sha "$work/vmlinuz")"
  printf '  "initrd": { "bytes": %s, "uncompressedBytes": %s, "compression": "%s", "zstdLevel": %s, "sha256": "%s" },\n' \
    "$(stat -c %s "$work/initrd.img")" "$uncompressed" "$compression" "$([ "$compression" = zstd ] && echo "$zstd_level" || echo null)" "$(sha "$work/initrd.img")"
  printf '  "agent": { "entry": "%s", "path": "/fleetboot/agent.mjs", "bytes": %s, "sha256": "%s" },\n' \
    "$(realpath --relative-to="$repo" "$agent_entry")" "$(stat -c %s "$work/agent.mjs")" "$agent_sha"
  if [ "$native_sha" = none ]; then printf '  "nativeAddon": null,\n'
  else printf '  "nativeAddon": { "path": "/fleetboot/fastudp.node", "bytes": %s, "sha256": "%s" },\n' "$(stat -c %s "$native_addon")" "$native_sha"; fi
  printf '  "node": { "version": "%s", "package": "%s %s" },\n' "$node_version" "${node_pkg:-unknown}" "$( [ -n "$node_pkg" ] && pkgver "$node_pkg")"
  printf '  "modules": %s,\n' "$(json_list <<<"$module_names")"
  printf '  "modulesBuiltin": %s,\n' "$(json_list <"$work/builtin")"
  printf '  "firmware": { "included": %s, "missing": %s, "packagesAvailable": %s },\n' \
    "$(LC_ALL=C sort -u "$work/fw_in" | json_list)" "$(LC_ALL=C sort -u "$work/fw_missing" | json_list)" "$(printf '%s\n' "${fw_avail[@]}" | json_list)"
  printf '  "tools": %s,\n' "$( (cd "$root" && ls usr/sbin/partclone.* | sed 's#.*/##'; for t in "${TOOLS[@]}"; do basename "${t%%:*}"; done; echo busybox) | LC_ALL=C sort -u | json_list)"
  printf '  "packages": %s\n' "$(for p in "${tool_pkgs[@]}"; do echo "$p $(pkgver "$p")"; done | json_list)"
  printf '}\n'
} >"$work/bootenv.json"

# ------------------------------------------------------------ install ---------
for f in vmlinuz initrd.img bootenv.json; do
  cp "$work/$f" "$out/.$f.tmp"
  mv -f "$out/.$f.tmp" "$out/$f"
done
echo "$stamp" >"$out/.stamp"
fw_n=$(sort -u "$work/fw_in" | grep -c . || true)
fw_m=$(grep -c . "$work/fw_missing" || true)
log "built in $(elapsed) s: kernel $kver, $(wc -l <"$work/modpaths") modules, firmware files $fw_n in / $fw_m missing"
log "vmlinuz $(stat -c %s "$out/vmlinuz") bytes, initrd.img $(stat -c %s "$out/initrd.img") bytes ($compression -$zstd_level; $uncompressed uncompressed)"
printf '%s\n' "$out/vmlinuz" "$out/initrd.img" "$out/bootenv.json"
