#!/usr/bin/env bash
# Builds the test boot environment for the QEMU lab tests, from Debian
# packages only (apt, no other download):
#
#   test/.cache/bootenv/vmlinuz     Debian bookworm's amd64 kernel (linux-image-*-amd64)
#   test/.cache/bootenv/initrd.gz   a small busybox initramfs (cpio newc + gzip)
#
# The initrd brings up the first NIC (e1000 or virtio-net), gets an address
# with udhcpc, then calls back over HTTP to the URL given on the kernel command
# line as `fbcallback=http://HOST:PORT/PATH` with its MAC and a marker, prints
# FBTEST-CALLBACK-OK (or FBTEST-CALLBACK-FAILED) on the console and powers off.
#
# Everything is cached: the kernel is fetched only when missing, the initrd is
# rebuilt only when missing or when this script changed. Prints the two paths.
#
#   bash test/lab/bootenv/build.sh            # build if needed
#   bash test/lab/bootenv/build.sh --force    # rebuild both
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache_root="${FBTEST_CACHE:-$repo/test/.cache}"
cache="$cache_root/bootenv"
mkdir -p "$cache"
# The cache directory ignores itself, so nothing in it is ever committed.
[ -f "$cache_root/.gitignore" ] || printf '*\n' >"$cache_root/.gitignore"

force=0
[ "${1:-}" = "--force" ] && force=1

log() { echo "bootenv: $*" >&2; }

# Kernel modules the initrd loads, in dependency order (checked below against
# each module's own `depends=` in .modinfo). Built into bookworm's kernel, so
# not listed: af_packet (CONFIG_PACKET=y, which udhcpc needs), unix, inet,
# the 8250 serial console, devtmpfs, gzip initrd support.
MODULES=(
  drivers/virtio/virtio_ring
  drivers/virtio/virtio
  drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci_legacy_dev
  drivers/virtio/virtio_pci
  net/core/failover
  drivers/net/net_failover
  drivers/net/virtio_net
  drivers/net/ethernet/intel/e1000/e1000
)

# ---------------------------------------------------------------- kernel ----
kdir="$cache/kernel"
if [ "$force" = 1 ] || [ ! -s "$cache/vmlinuz" ] || [ ! -d "$kdir/lib/modules" ]; then
  rm -rf "$kdir" "$cache/vmlinuz"
  pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  if [ -z "$pkg" ]; then
    log "apt-get update (no linux-image-amd64 in the package lists)"
    apt-get update -qq
    pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  fi
  [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64 to a kernel package"; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  chmod 777 "$tmp" # apt's _apt user writes the download
  log "apt-get download $pkg"
  (cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  deb="$(ls "$tmp"/*.deb 2>/dev/null | head -n1)"
  [ -n "$deb" ] || { log "apt-get download $pkg produced no .deb"; exit 1; }
  dpkg-deb -x "$deb" "$tmp/x"
  kver="$(ls "$tmp/x/lib/modules" | head -n1)"
  mkdir -p "$kdir/lib/modules/$kver"
  # Keep only what the initrd needs (the full tree is ~400 MB).
  for m in "${MODULES[@]}"; do
    src="$tmp/x/lib/modules/$kver/kernel/$m.ko"
    [ -f "$src" ] || { log "module $m.ko missing from $pkg (compressed modules are not handled)"; exit 1; }
    install -D -m 0644 "$src" "$kdir/lib/modules/$kver/kernel/$m.ko"
  done
  cp "$tmp/x/boot/config-$kver" "$kdir/config"
  cp "$tmp/x/boot/vmlinuz-$kver" "$cache/vmlinuz"
  echo "$pkg $kver" >"$kdir/VERSION"
  rm -rf "$tmp"
  trap - EXIT
  rm -f "$cache/initrd.gz" # modules changed: rebuild the initrd
fi
kver="$(ls "$kdir/lib/modules" | head -n1)"

# The kernel config must have built in what the initrd relies on.
for opt in CONFIG_PACKET CONFIG_INET CONFIG_UNIX CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP CONFIG_SERIAL_8250_CONSOLE; do
  grep -q "^$opt=y" "$kdir/config" || { log "$opt is not built into $kver"; exit 1; }
done
# Each module's dependencies must be loaded before it.
loaded=" "
for m in "${MODULES[@]}"; do
  name="${m##*/}"
  deps="$(tr '\0' '\n' <"$kdir/lib/modules/$kver/kernel/$m.ko" | sed -n 's/^depends=//p' | tr ',' ' ')"
  for d in $deps; do
    case "$loaded" in *" ${d//-/_} "*) ;; *) log "module order: $name needs $d first"; exit 1 ;; esac
  done
  loaded="$loaded${name//-/_} "
done

# ---------------------------------------------------------------- initrd ----
stamp="$(sha256sum "$0" | cut -c1-16)-$kver"
if [ "$force" = 1 ] || [ ! -s "$cache/initrd.gz" ] || [ "$(cat "$cache/initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  bb=/bin/busybox
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" || { log "busybox-static is not installed (apt-get install busybox-static)"; exit 1; }
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,run,lib/modules}
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
  ln -s bin "$root/sbin"
  # The kernel opens /dev/console for init before devtmpfs is mounted.
  if [ "$(id -u)" = 0 ]; then mknod -m 600 "$root/dev/console" c 5 1; fi
  : >"$root/etc/modules"
  for m in "${MODULES[@]}"; do
    name="${m##*/}"
    cp "$kdir/lib/modules/$kver/kernel/$m.ko" "$root/lib/modules/$name.ko"
    echo "$name" >>"$root/etc/modules"
  done

  # udhcpc has no built-in address handling: it calls this script.
  cat >"$root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc event handler: deconfig | bound | renew | nak | leasefail
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    if [ -n "$router" ]; then
      for r in $router; do route add default gw "$r" dev "$interface" && break; done
    fi
    echo "$ip" >/run/ip
    echo "fbtest: udhcpc $1 $interface ip=$ip server=$serverid router=$router"
    ;;
esac
exit 0
EOF
  chmod 755 "$root/etc/udhcpc.script"

  cat >"$root/init" <<'EOF'
#!/bin/sh
# Fleetboot lab test initrd: prove that this kernel+initrd ran, then power off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
echo "fbtest: initrd /init started (kernel $(uname -r))"

done_() { echo "fbtest: $1"; sync; poweroff -f; sleep 5; }

for m in $(cat /etc/modules); do insmod "/lib/modules/$m.ko" || echo "fbtest: insmod $m failed"; done

cb=""
for w in $(cat /proc/cmdline); do
  case "$w" in fbcallback=*) cb="${w#fbcallback=}" ;; esac
done
[ -n "$cb" ] || done_ "FBTEST-CALLBACK-FAILED no fbcallback= on the kernel command line"

ifc=""
i=0
while [ -z "$ifc" ] && [ $i -lt 50 ]; do
  for d in /sys/class/net/*; do
    n="${d##*/}"
    [ "$n" = lo ] || { ifc="$n"; break; }
  done
  [ -n "$ifc" ] || { sleep 0.2; i=$((i + 1)); }
done
[ -n "$ifc" ] || done_ "FBTEST-CALLBACK-FAILED no network interface"
mac="$(cat /sys/class/net/$ifc/address)"
ip link set lo up
ip link set "$ifc" up
echo "fbtest: interface $ifc mac $mac, running udhcpc"
udhcpc -i "$ifc" -s /etc/udhcpc.script -n -q -f -t 8 -T 2 -A 1 || done_ "FBTEST-CALLBACK-FAILED udhcpc got no lease"
ip="$(cat /run/ip)"
sep="?"
case "$cb" in *\?*) sep="&" ;; esac
url="${cb}${sep}mac=${mac}&ip=${ip}&marker=fbtest-initrd-ran"
n=0
while [ $n -lt 5 ]; do
  # (busybox 1.35's static wget segfaults with -T: bound it with timeout instead)
  if timeout 10 wget -q -O /tmp/reply "$url"; then
    done_ "FBTEST-CALLBACK-OK mac=$mac ip=$ip url=$cb"
  fi
  n=$((n + 1))
  sleep 1
done
done_ "FBTEST-CALLBACK-FAILED wget $url"
EOF
  chmod 755 "$root/init"

  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$cache/initrd.gz.tmp"
  mv "$cache/initrd.gz.tmp" "$cache/initrd.gz"
  echo "$stamp" >"$cache/initrd.stamp"
  rm -rf "$root"
  trap - EXIT
  log "built initrd.gz ($(stat -c %s "$cache/initrd.gz") bytes) for $kver"
fi

echo "$cache/vmlinuz"
echo "$cache/initrd.gz"
