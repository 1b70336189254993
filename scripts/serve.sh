#!/usr/bin/env bash
# The README's start command: installs everything, builds the imaging boot
# environment when it is missing, then runs `fleetboot serve` on its embedded
# defaults (data in ./data, proxyDHCP on 67/4011, TFTP on 69, HTTP on 8080).
# Arguments go to `fleetboot serve` (e.g. --data-dir DIR, --interface IFACE);
# run as root, it adds --allow-root (see the end).
#
# On an isolated network (no Debian mirror, no npm registry) it still starts
# when what the server itself needs is here:
#   - Node.js >= 20, the npm packages (node_modules) and the build (dist/);
#   - the iPXE binaries (Debian's `ipxe` package in /usr/lib/ipxe, or copies
#     already in the TFTP root): without them no PXE client can boot.
# A failed install of the other packages (imaging tools, compilers) is a
# warning. A failed boot-environment build is a warning too: the server
# starts, machines network-boot their entries and the menu, and only imaging
# tasks fail (naming the build command) until `fleetboot bootenv build` has
# been run.
#
# There are no default credentials: on a first start (no database yet) this
# script says how to add the first admin, and the server's start summary
# says it again on every start while no user exists.
#
# Environment:
#   FLEETBOOT_BOOTENV_CACHE  the boot-environment build's download cache
#                            (default /var/cache/fleetboot/bootenv-build: the
#                            kernel package, unpacked, and the firmware); the
#                            lab test test/lab/first-start.e2e.test.ts points it
#                            at an empty directory so that no cached kernel
#                            can stand in for the unreachable mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

warn() { printf 'serve: WARNING: %s\n' "$*" >&2; }
die() { printf 'serve: error: %s\n' "$*" >&2; exit 1; }

# Where the server will look: <data-dir>/bootenv, <data-dir>/tftp unless --tftp-root.
data_dir=data
tftp_root=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-dir) data_dir="${args[$((i + 1))]:-data}" ;;
    --data-dir=*) data_dir="${args[$i]#--data-dir=}" ;;
    --tftp-root) tftp_root="${args[$((i + 1))]:-}" ;;
    --tftp-root=*) tftp_root="${args[$i]#--tftp-root=}" ;;
  esac
done
tftp_root="${tftp_root:-$data_dir/tftp}"
fleetboot="npx fleetboot"
data_arg=""
[ "$data_dir" = data ] || data_arg=" --data-dir $data_dir"

node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null ||
  die "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none)); Debian 12: apt-get install nodejs from NodeSource or backports"

if ! bash scripts/install-deps.sh; then
  warn "scripts/install-deps.sh failed (see above; on an isolated network apt cannot reach a Debian mirror); checking whether what the server needs is here"
  [ -f node_modules/.package-lock.json ] ||
    die "the npm packages are not installed (no node_modules): 'npm ci' needs the npm registry or a mirror of it (npm config set registry URL), then run this again"
  if ! npm run --silent build; then
    [ -f dist/src/cli/main.js ] || die "building the TypeScript (npm run build) failed and there is no earlier build in dist/"
    warn "npm run build failed; starting the earlier build in dist/"
  fi
  missing=()
  for f in undionly.kpxe snponly.efi ipxe.efi; do
    [ -s "/usr/lib/ipxe/$f" ] || [ -s "$tftp_root/$f" ] || missing+=("$f")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    die "the iPXE binaries (${missing[*]}) are neither in /usr/lib/ipxe nor in $tftp_root: no PXE client could boot. Install Debian's 'ipxe' package (apt-get install ipxe from a reachable mirror, or dpkg -i ipxe_*.deb copied here), or copy the files into $tftp_root"
  fi
  warn "starting anyway: node_modules, dist/ and the iPXE binaries are here; imaging tools that did not install are reported by the boot-environment build below"
fi

# A data directory created here is private from the start (the server makes it 0700 anyway).
[ -d "$data_dir" ] || mkdir -p -m 0700 "$data_dir"
if [ ! -s "$data_dir/bootenv/initrd.img" ] || [ ! -s "$data_dir/bootenv/vmlinuz" ]; then
  echo "serve: building the imaging boot environment into $data_dir/bootenv (once; about a minute)" >&2
  build_log="$(mktemp)"
  if bash scripts/build-bootenv.sh --out "$data_dir/bootenv" --cache "${FLEETBOOT_BOOTENV_CACHE:-/var/cache/fleetboot/bootenv-build}" 2>&1 | tee "$build_log" >&2; then
    :
  else
    reason="$(grep -m1 '^build-bootenv: error: ' "$build_log" | sed 's/^build-bootenv: error: //' || true)"
    [ -n "$reason" ] || reason="$(tail -n 1 "$build_log")"
    warn "the imaging boot environment could not be built: ${reason:-no reason printed}"
    warn "the server starts anyway: machines network-boot their entries and the menu; an imaging task (capture, deploy, inventory, register) fails when its machine boots, until it is built"
    warn "build it when the Debian mirror is reachable: $fleetboot bootenv build$data_arg (or: bash scripts/build-bootenv.sh --out $data_dir/bootenv)"
  fi
  rm -f "$build_log"
fi
if [ ! -e "$data_dir/fleetboot.db" ] && [ -z "${FLEETBOOT_DATABASE_URL:-}" ]; then
  echo "serve: first start: there are no users and no default password. Once the server runs, add the first admin from another terminal (it prints a one-time password): $fleetboot user add admin --role admin$data_arg" >&2
fi
# `fleetboot serve` refuses to run as root unless told to: this quick start
# runs it as whoever ran the script. A checkout usually lives where only its
# owner can read it (/root), so the script does not switch to an unprivileged
# user itself; the service install does (its own user, CAP_NET_BIND_SERVICE).
allow_root=()
if [ "$(id -u)" = 0 ]; then
  case " $* " in *" --allow-root "*) ;; *) allow_root=(--allow-root) ;; esac
  echo "serve: running the server as root (--allow-root) for this quick start; to run it as a service under its own unprivileged user: bash scripts/install-service.sh (README \"Run as a service\")" >&2
fi
exec node bin/fleetboot.js serve "${allow_root[@]}" "$@"
