#!/usr/bin/env bash
# Builds a small Debian 12 (bookworm) disk image for the lab's end-to-end
# test of the endpoint agent (test/lab/agent.e2e.test.ts): a raw disk with
# an MBR and one ext4 root partition, so Fleetboot's imaging captures and
# deploys it on its ordinary path, bootable by SeaBIOS.
#
#   bash scripts/build-debian-image.sh --out FILE [--cache DIR] [--agent-deb FILE]
#                                      [--size MIB] [--mirror URL]
#
#   --out FILE        the raw disk image (replaced atomically)
#   --cache DIR       where the debootstrapped tree (a tar.zst) and finished images
#                     are kept (default test/.cache/debian-image; FBTEST_CACHE/debian-image
#                     when FBTEST_CACHE is set); never committed
#   --agent-deb FILE  the endpoint agent's package (scripts/build-agent-deb.sh) to
#                     install: its unit starts at boot; without it, no agent
#   --size MIB        the disk's size (default 1536)
#   --mirror URL      the Debian mirror (default: the one apt uses here, else
#                     http://deb.debian.org/debian)
#
# What is inside: debootstrap --variant=minbase plus systemd-sysv, udev, dbus,
# linux-image-amd64 (modules of hardware no lab guest has are removed: GPUs,
# sound, media, wireless, InfiniBand, staging), initramfs-tools; DHCP on every
# Ethernet interface by systemd-networkd (/etc/systemd/network/20-wired.network
# matches en* and eth*); the kernel's console on ttyS0 (where the test reads
# the boot); root has no password (a lab guest: its console is a file). The
# boot loader is extlinux (syslinux 6.04) in the ext4 partition, with
# syslinux's mbr.bin in the MBR (its boot code is carried by Fleetboot's
# images: manifest.table.bootCode). The filesystem is made without the 64bit
# and metadata_csum features, which extlinux 6.04 cannot read.
#
# Cached (a second run takes seconds): the debootstrapped and configured tree,
# keyed by the part of this script that makes it, the mirror and the date of
# the mirror's bookworm Release file as apt saw it last (it changes with every
# point release); the finished image, keyed by the tree, this script, the
# agent package's sha256 and the size. Delete the cache directory to start
# afresh. Needs root, debootstrap, extlinux, syslinux-common, e2fsprogs, fdisk,
# mount, zstd, tar (scripts/install-deps.sh --with-test) and a reachable mirror
# (cold). Prints the image's path on stdout and the timings on stderr.
set -euo pipefail
t_start=$(date +%s.%N)
repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$repo/scripts/build-debian-image.sh"

out=""
cache="${FBTEST_CACHE:-$repo/test/.cache}/debian-image"
agent_deb=""
size_mib=1536
mirror=""

usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$(abspath "${2:?--out needs a file}")"; shift 2 ;;
    --cache) cache="$(abspath "${2:?--cache needs a directory}")"; shift 2 ;;
    --agent-deb) agent_deb="$(abspath "${2:?--agent-deb needs a file}")"; shift 2 ;;
    --size) size_mib="${2:?--size needs MiB}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-debian-image: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'build-debian-image: %s\n' "$*" >&2; }
die() { printf 'build-debian-image: error: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ -n "$out" ] || die "--out FILE is required (see --help)"
case "$size_mib" in ''|*[!0-9]*) die "--size must be a whole number of MiB: current value is '$size_mib'" ;; esac
[ "$size_mib" -ge 768 ] || die "--size must be at least 768 MiB: current value is $size_mib"
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, loop devices, mount)"
for t in debootstrap extlinux mkfs.ext4 sfdisk losetup mount umount chroot zstd tar sha256sum; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is missing (bash scripts/install-deps.sh --with-test)"
done
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || die "$mbr_bin is missing (apt-get install syslinux-common)"
if [ -n "$agent_deb" ]; then
  [ -f "$agent_deb" ] || die "--agent-deb $agent_deb: no such file"
  dpkg-deb --field "$agent_deb" Package >/dev/null 2>&1 || die "--agent-deb $agent_deb is not a Debian package"
fi
if [ -z "$mirror" ]; then
  mirror="$(grep -hoE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | sed 's/^URIs: *//; s#/$##')"
  [ -n "$mirror" ] || mirror="$(grep -hoE '^deb +http[^ ]*/debian/? +bookworm' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}' | sed 's#/$##')"
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
[[ "$mirror" =~ ^https?://[A-Za-z0-9.:/_-]+$ ]] || die "--mirror must be an http(s) URL: current value is '$mirror'"

mkdir -p "$cache"
# The mirror's bookworm as apt last saw it: its Release date changes with every point release.
release_file="$(ls /var/lib/apt/lists/*_dists_bookworm_InRelease 2>/dev/null | head -n1 || true)"
release_date="$( [ -n "$release_file" ] && sed -n 's/^Date: //p' "$release_file" | head -n1 || echo unknown)"
# The tree's key: the part of this script that makes it (an edit of the disk's part keeps the tree).
tree_key="$( { sed -n '/^# -* the tree -*$/,/^# -* the disk -*$/p' "$self"; echo "$mirror bookworm $release_date"; } | sha256sum | cut -c1-16)"
deb_sha="none"
[ -z "$agent_deb" ] || deb_sha="$(sha256sum "$agent_deb" | cut -d' ' -f1)"
image_key="$( { sha256sum "$self"; echo "$tree_key $deb_sha $size_mib"; } | sha256sum | cut -c1-16)"
tree_tar="$cache/rootfs-$tree_key.tar.zst"
cached_image="$cache/debian12-$image_key.img"

deliver() {
  cp --sparse=always "$cached_image" "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
  log "image: $out ($size_mib MiB disk, $(du -m --apparent-size "$cached_image" | cut -f1) MiB apparent, $(du -m "$cached_image" | cut -f1) MiB allocated) in $(elapsed) s"
  printf '%s\n' "$out"
}
if [ -s "$cached_image" ]; then
  log "cached image $cached_image (tree $tree_key, agent package ${deb_sha:0:12})"
  deliver
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fb-debian-image.XXXXXX")"
mnt="$work/mnt"
loop=""
cleanup() {
  set +e
  for m in "$work/tree" "$mnt"; do
    for sub in dev/pts dev proc sys; do mountpoint -q "$m/$sub" 2>/dev/null && umount -l "$m/$sub"; done
  done
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

chroot_mounts() {
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount --bind /dev "$1/dev"
  mount --bind /dev/pts "$1/dev/pts"
}
chroot_unmounts() {
  for sub in dev/pts dev sys proc; do umount "$1/$sub"; done
}
# in_chroot ROOT WHAT ARGV...: run in the tree, its output in the log; on failure the log's tail and WHAT.
in_chroot() {
  local root="$1" what="$2"
  shift 2
  chroot "$root" "$@" >>"$work/chroot.log" 2>&1 || { tail -n 20 "$work/chroot.log" >&2; die "$what failed in the tree: $*"; }
}

# ------------------------------------------------------------ the tree --------
if [ ! -s "$tree_tar" ]; then
  tree="$work/tree"
  t0=$(date +%s)
  log "debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase --include=systemd-sysv,udev,dbus,kmod,linux-image-amd64,initramfs-tools \
    bookworm "$tree" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  log "debootstrap done in $(( $(date +%s) - t0 )) s"
  echo debian12 >"$tree/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian12\n' >"$tree/etc/hosts"
  mkdir -p "$tree/etc/systemd/network"
  cat >"$tree/etc/systemd/network/20-wired.network" <<'EOF'
# Every Ethernet interface: DHCP (the lab's, or the site's).
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
  chroot_mounts "$tree"
  in_chroot "$tree" 'enabling systemd-networkd' systemctl enable systemd-networkd.service systemd-networkd-wait-online.service
  in_chroot "$tree" 'clearing the root password' passwd -d root
  # Hardware no lab guest has: out of the image (about 250 MB of modules).
  kver="$(ls "$tree/lib/modules" | head -n1)"
  for d in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging drivers/bluetooth drivers/iio sound net/bluetooth net/mac80211 net/wireless; do
    rm -rf "$tree/lib/modules/$kver/kernel/$d"
  done
  in_chroot "$tree" depmod depmod "$kver"
  in_chroot "$tree" update-initramfs update-initramfs -u -k "$kver"
  in_chroot "$tree" 'apt-get clean' apt-get clean
  chroot_unmounts "$tree"
  rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin
  : >"$tree/etc/machine-id"
  rm -f "$tree/var/lib/dbus/machine-id"
  log "packing the tree ($(du -sm "$tree" | cut -f1) MiB)"
  tar --numeric-owner --xattrs --acls -C "$tree" -cf - . | zstd -q -T0 -6 -o "$tree_tar.tmp.$$"
  mv -f "$tree_tar.tmp.$$" "$tree_tar"
  rm -rf "$tree"
  # Older trees are of no use any more.
  for f in "$cache"/rootfs-*.tar.zst; do [ "$f" = "$tree_tar" ] || rm -f "$f"; done
else
  log "cached tree $tree_tar"
fi

# ------------------------------------------------------------ the disk --------
img="$work/disk.img"
truncate -s "${size_mib}M" "$img"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$img"
loop="$(losetup -f --show -o $((2048 * 512)) "$img")"
uuid="$(cat /proc/sys/kernel/random/uuid)"
mkfs.ext4 -q -F -b 4096 -O ^64bit,^metadata_csum -L debian-root -U "$uuid" "$loop"
mkdir -p "$mnt"
mount "$loop" "$mnt"
zstd -q -d -c "$tree_tar" | tar --numeric-owner --xattrs --acls -C "$mnt" -xf -
kver="$(ls "$mnt/lib/modules" | head -n1)"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$mnt/etc/fstab"
mkdir -p "$mnt/boot/extlinux"
cat >"$mnt/boot/extlinux/extlinux.conf" <<EOF
SERIAL 0 115200
DEFAULT debian
PROMPT 0
TIMEOUT 1
LABEL debian
  LINUX /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND root=UUID=$uuid ro console=ttyS0,115200
EOF
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
if [ -n "$agent_deb" ]; then
  cp "$agent_deb" "$mnt/tmp/agent.deb"
  chroot_mounts "$mnt"
  in_chroot "$mnt" "installing $(basename "$agent_deb")" dpkg -i /tmp/agent.deb
  chroot_unmounts "$mnt"
  rm -f "$mnt/tmp/agent.deb"
  [ -L "$mnt/etc/systemd/system/multi-user.target.wants/fleetboot-agent.service" ] || die "the agent package did not enable fleetboot-agent.service"
  log "installed $(dpkg-deb --field "$agent_deb" Package) $(dpkg-deb --field "$agent_deb" Version)"
fi
sync
umount "$mnt"
losetup -d "$loop"
loop=""
# syslinux's MBR code: it boots the active partition's boot sector, where extlinux put its own.
dd if="$mbr_bin" of="$img" bs=440 count=1 conv=notrunc status=none
mv -f "$img" "$cached_image.tmp.$$"
mv -f "$cached_image.tmp.$$" "$cached_image"
for f in "$cache"/debian12-*.img; do [ "$f" = "$cached_image" ] || rm -f "$f"; done
deliver
