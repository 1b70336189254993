#!/usr/bin/env bash
# Installs Fleetboot as a systemd service on Debian (README "Run as a service"):
#
#   1. the system user and group `fleetboot` (no login, no home of its own:
#      its state is /var/lib/fleetboot, which systemd makes and owns for it);
#   2. the program, copied from this built checkout into /opt/fleetboot
#      (root-owned, readable: the service can run it but not change it);
#   3. /etc/fleetboot/config.json (an empty {} when absent: every default),
#      never overwritten;
#   4. /usr/local/bin/fleetboot, the CLI (run it as root with
#      --data-dir /var/lib/fleetboot: it reads server.json and api-token there);
#   5. packaging/fleetboot.service as /etc/systemd/system/fleetboot.service,
#      with ExecStart naming the node found on PATH; then
#      `systemctl daemon-reload` and `systemctl enable --now fleetboot`.
#
# Run it again after `git pull && npm run build` to update the program (the
# service is restarted when it ran).
#
# Usage: sudo bash scripts/install-service.sh [--no-start] [--dest-root DIR] [--no-program]
#   --no-start     install and enable, do not start (or restart) now
#   --dest-root D  install under D instead of / (no user, no systemctl): for
#                  packaging and for test/service-unit.test.ts
#   --no-program   do not copy the program (with --dest-root: the unit only)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

die() { printf 'install-service: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'install-service: %s\n' "$*" >&2; }

start=1
dest=/
program=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --dest-root) [ $# -ge 2 ] || die "--dest-root needs a directory"; dest="$2"; shift ;;
    --dest-root=*) dest="${1#--dest-root=}" ;;
    --no-program) program=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown argument '$1': expected --no-start, --dest-root DIR or --no-program" ;;
  esac
  shift
done
[ -d "$dest" ] || die "--dest-root $dest is not a directory"
dest="$(cd "$dest" && pwd)"
system=0
[ "$dest" = / ] && system=1
root() { if [ "$dest" = / ]; then printf '%s' "$1"; else printf '%s%s' "$dest" "$1"; fi; }

if [ "$system" = 1 ] && [ "$(id -u)" != 0 ]; then die "run it as root (it creates a system user and installs a systemd unit)"; fi
node_bin="$(command -v node || true)"
[ -n "$node_bin" ] || die "node is not on PATH: Node.js 20 or newer is needed"
node_bin="$(readlink -f "$node_bin")"
"$node_bin" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node.js 20 or newer is needed (found $("$node_bin" --version))"
if [ "$program" = 1 ]; then
  [ -f dist/src/cli/main.js ] || die "not built: run 'npm run build' (or bash scripts/install-deps.sh) first"
  [ -f build/native/fastudp.node ] || say "warning: build/native/fastudp.node is missing: the server falls back to Node's dgram (slower TFTP)"
  [ -d node_modules ] || die "no node_modules: run 'npm ci' first"
fi

# 1. The user.
if [ "$system" = 1 ]; then
  if getent passwd fleetboot >/dev/null; then
    say "user fleetboot exists"
  else
    useradd --system --user-group --home-dir /var/lib/fleetboot --no-create-home --shell /usr/sbin/nologin --comment "Fleetboot network boot server" fleetboot
    say "created the system user fleetboot"
  fi
fi

# 2. The program: what `serve` and the CLI load (no tests, no data, no git).
opt="$(root /opt/fleetboot)"
if [ "$program" = 1 ]; then
  staging="$(root /opt/.fleetboot.new)"
  rm -rf "$staging"
  mkdir -p "$staging"
  tar -C "$repo" -cf - --exclude=./.git --exclude=./data --exclude=./test --exclude=./bench --exclude='./node_modules/.cache' \
    package.json package-lock.json README.md bin dist build/native node_modules web/dist docs scripts bootenv 2>/dev/null |
    tar -C "$staging" -xf -
  chown -R root:root "$staging" 2>/dev/null || true
  chmod -R u+rwX,go+rX,go-w "$staging"
  rm -rf "$opt.old"
  [ -e "$opt" ] && mv "$opt" "$opt.old"
  mv "$staging" "$opt"
  rm -rf "$opt.old"
  say "program installed in $opt"
fi

# 3. The configuration.
conf="$(root /etc/fleetboot/config.json)"
mkdir -p "$(dirname "$conf")"
if [ ! -e "$conf" ]; then
  printf '{}\n' >"$conf"
  chmod 0644 "$conf"
  say "wrote $conf ({}: every default; see README \"Configuration\")"
fi

# 4. The CLI.
mkdir -p "$(root /usr/local/bin)"
ln -sfn /opt/fleetboot/bin/fleetboot.js "$(root /usr/local/bin/fleetboot)"

# 5. The unit, with this machine's node.
unit="$(root /etc/systemd/system/fleetboot.service)"
mkdir -p "$(dirname "$unit")"
sed "s#^ExecStart=/usr/bin/node #ExecStart=$node_bin #" packaging/fleetboot.service >"$unit.tmp"
chmod 0644 "$unit.tmp"
mv "$unit.tmp" "$unit"
say "unit installed: $unit (ExecStart runs $node_bin)"

if [ "$system" = 1 ]; then
  systemctl daemon-reload
  systemctl enable fleetboot.service
  if [ "$start" = 1 ]; then
    systemctl restart fleetboot.service
    say "started: systemctl status fleetboot; journalctl -u fleetboot -f"
  fi
  say "next: fleetboot user add admin --role admin --data-dir /var/lib/fleetboot (prints a one-time password)"
fi
