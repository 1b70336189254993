#!/usr/bin/env bash
# Builds the Debian package of the endpoint agent, fleetboot-agent (the
# program on installed machines; not the imaging agent of the boot
# environment, fleetboot-imager). It carries its own runtime, so it installs
# on a Debian 12 machine that has no Node:
#
#   /usr/bin/fleetboot-agent                 sh wrapper: exec the node below on the bundle
#   /usr/lib/fleetboot-agent/node            a copy of the Node that runs this script, stripped
#   /usr/lib/fleetboot-agent/agent.mjs       src/endpoint-agent/main.ts bundled by esbuild
#                                            (one ESM file, nothing left to node_modules)
#   /lib/systemd/system/fleetboot-agent.service
#   /usr/share/doc/fleetboot-agent/          copyright, LICENSE.node.gz (Node's), changelog.gz
#   /usr/share/lintian/overrides/fleetboot-agent
#
# The maintainer scripts are those dh_installsystemd (debhelper 13) writes:
# enable the unit on configure, start it (restart on upgrade) when systemd
# runs, stop it on remove; purge also deletes the agent's state,
# /var/lib/fleetboot-agent (its key and enrolment). Depends: is what
# dpkg-shlibdeps reads from the node binary's shared libraries. Everything is
# root:root, directories and executables 0755, the rest 0644.
#
#   bash scripts/build-agent-deb.sh [--out DIR] [--entry FILE] [--node PATH] [--xz-level N]
#
#   --out DIR     where the .deb goes (default build/); it is named
#                 fleetboot-agent_<package.json version>_<dpkg arch>.deb
#   --entry FILE  the agent's entry point (default src/endpoint-agent/main.ts)
#   --xz-level N  xz compression level, 0-9 (default 6, dpkg-deb's: 22 MB in about
#                 a minute of one core; 1 takes a fifth of that for 25 MB)
#   --node PATH   the Node runtime to ship (default: FLEETBOOT_NODE, else the
#                 `node` in PATH); major 20 or later, linked only against
#                 libraries every Debian has (not Debian's own nodejs, which
#                 needs libnode)
#
# Prints the .deb's path, its size and the installed size. Runs as root or
# not. Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev), strip (binutils), ldd,
# gzip and esbuild (node_modules, `npm ci`): scripts/install-deps.sh.
# DEBFULLNAME and DEBEMAIL name the Maintainer (default: a placeholder at
# example.invalid: set them for a package others install).
# SOURCE_DATE_EPOCH (default: the last commit's time) dates the files and the
# changelog, so the same inputs give the same package.
set -euo pipefail
umask 022
repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$repo/scripts/build-agent-deb.sh"

out="$repo/build"
entry="$repo/src/endpoint-agent/main.ts"
node_bin="${FLEETBOOT_NODE:-}"
xz_level=6

usage() { sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$(abspath "${2:?--out needs a directory}")"; shift 2 ;;
    --entry) entry="$(abspath "${2:?--entry needs a file}")"; shift 2 ;;
    --node) node_bin="${2:?--node needs a path}"; shift 2 ;;
    --xz-level) xz_level="${2:?--xz-level needs a number}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-agent-deb: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

case "$xz_level" in [0-9]) ;; *) echo "build-agent-deb: --xz-level must be 0-9: current value is '$xz_level'" >&2; exit 2 ;; esac

log() { printf 'build-agent-deb: %s\n' "$*" >&2; }
die() { printf 'build-agent-deb: error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------ checks ----------
for t in dpkg-deb dpkg dpkg-shlibdeps strip ldd gzip; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is missing (bash scripts/install-deps.sh installs the build's packages)"
done
[ -n "$node_bin" ] || node_bin="$(command -v node || true)"
[ -n "$node_bin" ] && [ -x "$node_bin" ] || die "no Node runtime to ship: '${node_bin}' (give --node PATH or FLEETBOOT_NODE)"
node_bin="$(realpath "$node_bin")"
node_version="$("$node_bin" --version)"
[ "$(echo "$node_version" | sed 's/^v\([0-9]*\).*/\1/')" -ge 20 ] || die "$node_bin is $node_version; the agent needs Node 20 or later"
[ -f "$entry" ] || die "no agent entry point at $entry (give --entry FILE)"
esbuild="$repo/node_modules/.bin/esbuild"
[ -x "$esbuild" ] || die "$esbuild is missing (npm ci)"

# Debian's own nodejs is a small binary over libnode.so (and Debian 12's is
# Node 18): it cannot be copied alone. NodeSource's and nodejs.org's builds
# carry V8, OpenSSL, ICU, libuv and zlib inside and need only libc, libstdc++
# and libgcc_s.
libs="$(ldd "$node_bin")" || die "ldd $node_bin failed: is it a dynamically linked ELF program?"
if grep -q 'not found' <<<"$libs"; then die "$node_bin needs libraries this machine lacks: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')"; fi
if grep -q 'libnode\.so' <<<"$libs"; then die "$node_bin is linked against libnode (Debian's nodejs): ship a self-contained Node (NodeSource or nodejs.org) with --node PATH"; fi

version="$("$node_bin" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version' "$repo/package.json")"
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || die "package.json's version is not a Debian version: '$version'"
arch="$(dpkg --print-architecture)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH
pkg=fleetboot-agent
# Who answers for the package: DEBFULLNAME and DEBEMAIL, as dch reads them.
maintainer="${DEBFULLNAME:-Fleetboot maintainers} <${DEBEMAIL:-fleetboot@example.invalid}>"
deb_name="${pkg}_${version}_${arch}.deb"

work="$(mktemp -d "${TMPDIR:-/tmp}/fleetboot-agent-deb.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants the tree at debian/<package> below a directory with debian/control.
root="$work/debian/$pkg"
lib="$root/usr/lib/$pkg"
doc="$root/usr/share/doc/$pkg"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$lib" "$root/lib/systemd/system" "$doc" "$root/usr/share/lintian/overrides"

# ------------------------------------------------------------ the agent -------
log "bundling $(realpath --relative-to="$repo" "$entry") (esbuild, node20, ESM)"
"$esbuild" "$entry" --bundle --platform=node --format=esm --target=node20 \
  --log-level=warning --legal-comments=eof --metafile="$work/meta.json" --outfile="$work/agent.mjs"
# Only the wrapper is run: a #! line would make lintian call a 0644 file a script that is not executable.
sed '1{/^#!/d}' "$work/agent.mjs" >"$lib/agent.mjs"
npm_inputs="$("$node_bin" -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const pkgs = new Set(Object.keys(m.inputs).map((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean));
  console.log([...pkgs].sort().join(" "));' "$work/meta.json")"
log "agent.mjs: $(stat -c %s "$lib/agent.mjs") bytes"
[ -z "$npm_inputs" ] || log "note: the bundle includes npm packages: $npm_inputs (their licences are in agent.mjs's last comments)"

# ------------------------------------------------------------ the runtime -----
# The NodeSource build carries debug information: strip --strip-all takes
# 99 MB to 86 MB (and, as dh_strip does, drops .comment and .note). Kept only
# when the stripped copy still runs.
cp "$node_bin" "$work/node"
if strip --strip-all --remove-section=.comment --remove-section=.note -o "$work/node.stripped" "$work/node" 2>/dev/null \
  && [ "$("$work/node.stripped" -p '1 + 1' 2>/dev/null)" = 2 ] \
  && [ "$(stat -c %s "$work/node.stripped")" -lt "$(stat -c %s "$work/node")" ]; then
  mv "$work/node.stripped" "$lib/node"
  log "node $node_version from $node_bin: $(stat -c %s "$work/node") bytes, $(stat -c %s "$lib/node") stripped"
else
  rm -f "$work/node.stripped"
  mv "$work/node" "$lib/node"
  log "node $node_version from $node_bin: $(stat -c %s "$lib/node") bytes (strip gave nothing smaller that runs)"
fi
rm -f "$work/node"

cat >"$root/usr/bin/$pkg" <<EOF
#!/bin/sh
# fleetboot-agent: the endpoint agent, on the Node runtime of its own package.
exec /usr/lib/$pkg/node /usr/lib/$pkg/agent.mjs "\$@"
EOF

# ------------------------------------------------------------ the unit --------
# Why each setting: README.md, "The endpoint agent's Debian package".
cat >"$root/lib/systemd/system/$pkg.service" <<'EOF'
[Unit]
Description=Fleetboot endpoint agent
# It talks to the server at start: wait until the network is configured.
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
ExecStart=/usr/bin/fleetboot-agent run --state-dir /var/lib/fleetboot-agent
Restart=on-failure
RestartSec=5
# Root: its jobs reboot, set the host name and install packages.
User=root
# /var/lib/fleetboot-agent (the key, the enrolment) is made 0700 at every start.
StateDirectory=fleetboot-agent
StateDirectoryMode=0700
# Not 0077: the agent's jobs inherit it, and the files installers write for
# everyone (configuration, programs) must stay readable. The agent's own
# files are private through the 0700 state directory.
UMask=0022
# Stopping the agent stops only the agent: a job it started (an apt-get that
# upgrades this very package, whose postinst restarts the unit) must outlive
# it. The agent ends its own children when it exits on SIGTERM.
KillMode=process

[Install]
WantedBy=multi-user.target
EOF

# ------------------------------------------------------------ documentation ---
# Node's LICENSE (its own and that of every library built into it: OpenSSL,
# ICU, V8, libuv, zlib, ...) goes beside the copyright file as it is: beside a
# nodejs.org tarball's bin/, or where the NodeSource package puts it.
node_license=""
for f in "$(dirname "$node_bin")/../LICENSE" "$(dirname "$node_bin")/../share/doc/node/LICENSE" /usr/share/doc/nodejs/LICENSE; do
  if [ -f "$f" ]; then node_license="$f"; break; fi
done
[ -n "$node_license" ] || die "no LICENSE file found for $node_bin (looked beside it and in /usr/share/doc/nodejs): the package must carry Node's licences"
gzip -9n <"$node_license" >"$doc/LICENSE.node.gz"
first_year="$(git -C "$repo" log --reverse --format=%cd --date=format:%Y 2>/dev/null | head -1 || true)"
last_year="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)"
copyright_years="${first_year:-$last_year}"
[ "$copyright_years" = "$last_year" ] || copyright_years="$copyright_years-$last_year"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fleetboot
Comment: Fleetboot's endpoint agent with the Node.js runtime it runs on.
 usr/lib/$pkg/agent.mjs is the agent, bundled with esbuild (the licence
 comments of anything bundled with it are at its end). usr/lib/$pkg/node is
 Node.js $node_version as built by its vendor; the licences of the libraries
 built into it are in /usr/share/doc/$pkg/LICENSE.node.gz, Node's LICENSE file
 as it is.

Files: *
Copyright: $copyright_years Fleetboot contributors
License: MIT

Files: usr/lib/$pkg/node
Copyright: Node.js contributors
 Joyent, Inc. and other Node contributors
License: MIT and others, see /usr/share/doc/$pkg/LICENSE.node.gz

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
EOF

changelog_date="$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
printf '%s (%s) unstable; urgency=medium\n\n  * Built from Fleetboot %s by scripts/build-agent-deb.sh.\n\n -- %s  %s\n' \
  "$pkg" "$version" "$version" "$maintainer" "$changelog_date" | gzip -9n >"$doc/changelog.gz"

# lintian: what is deliberate about this package, with the reason.
cat >"$root/usr/share/lintian/overrides/$pkg" <<EOF
# The Node runtime is NodeSource's/nodejs.org's build, copied as it is: it
# links OpenSSL, ICU, zlib, libuv and others in statically (their licences are
# in the copyright file), and is built as upstream builds it.
$pkg: embedded-library * [usr/lib/$pkg/node]
$pkg: hardening-no-pie [usr/lib/$pkg/node]
$pkg: hardening-no-fortify-functions [usr/lib/$pkg/node]
$pkg: spelling-error-in-binary * [usr/lib/$pkg/node]
# The command documents itself (fleetboot-agent help), the unit in Fleetboot's
# README; there is no manual page to point Documentation= at.
$pkg: no-manual-page [usr/bin/$pkg]
$pkg: systemd-service-file-missing-documentation-key [lib/systemd/system/$pkg.service]
# systemd supervises the agent (restart on failure, state directory); Debian 12
# machines run systemd, and there is no sysvinit script to keep in step.
$pkg: package-supports-alternative-init-but-no-init.d-script [lib/systemd/system/$pkg.service]
# Node's own LICENSE file, as it is (with the full texts of the licences of the
# libraries built into node), referred to by the copyright file.
$pkg: extra-license-file [usr/share/doc/$pkg/LICENSE.node.gz]
# The runtime and the one script it runs stay together in the package's own
# directory; nothing else runs this node.
$pkg: executable-in-usr-lib [usr/lib/$pkg/node]
EOF

# ------------------------------------------------------------ maintainer scripts
unit="$pkg.service"
cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
# As dh_installsystemd (debhelper 13) writes it: enable the unit, then start
# it (restart on upgrade) when systemd runs. In a chroot (debootstrap, image
# builds) only the enable symlinks are made; the unit starts at first boot.
if [ "\$1" = "configure" ] || [ "\$1" = "abort-upgrade" ] || [ "\$1" = "abort-deconfigure" ] || [ "\$1" = "abort-remove" ] ; then
	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled '$unit'; then
		# Enables the unit on first installation, creates new
		# symlinks on upgrades if the unit file has changed.
		deb-systemd-helper enable '$unit' >/dev/null || true
	else
		# Update the statefile to add new symlinks (if any), which need to be
		# cleaned up on purge. Also remove old symlinks.
		deb-systemd-helper update-state '$unit' >/dev/null || true
	fi
fi
if [ "\$1" = "configure" ] || [ "\$1" = "abort-upgrade" ] || [ "\$1" = "abort-deconfigure" ] || [ "\$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "\$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke \$_dh_action '$unit' >/dev/null || true
	fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
# As dh_installsystemd writes it: stop the agent on remove (an upgrade
# restarts it from the new postinst instead).
if [ -z "\${DPKG_ROOT:-}" ] && [ "\$1" = remove ] && [ -d /run/systemd/system ] ; then
	deb-systemd-invoke stop '$unit' >/dev/null || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ] ; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "\$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge '$unit' >/dev/null || true
	fi
	# The agent's key and enrolment: purge forgets the machine's identity.
	rm -rf /var/lib/$pkg
fi
exit 0
EOF

# ------------------------------------------------------------ control ---------
mkdir -p "$work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$work/debian/control"
if ! shlibs="$(cd "$work" && dpkg-shlibdeps -O "-e$lib/node" 2>"$work/shlibdeps.err")"; then
  cat "$work/shlibdeps.err" >&2
  die "dpkg-shlibdeps could not read the node binary's libraries"
fi
depends="${shlibs#shlibs:Depends=}"
[ -n "$depends" ] && [ "$depends" != "$shlibs" ] || die "dpkg-shlibdeps gave no Depends: '$shlibs'"
rm -rf "$work/debian/control"

# Permissions before sizes: directories and programs 0755, everything else 0644.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/$pkg" "$lib/node" "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
installed_kib="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kib
Depends: $depends
Section: admin
Priority: optional
Description: Fleetboot endpoint agent for installed machines
 The agent of Fleetboot's management server on an installed machine: it
 enrols with the server (pinning its CA), keeps an Ed25519 key of its own,
 and runs the jobs the server hands it (signed packages, scripts, reboots,
 host names), reporting their results.
 .
 It runs as the systemd service fleetboot-agent.service on its own copy of
 the Node.js runtime (Node $node_version), so the machine needs no Node.
EOF
chmod 0644 "$root/DEBIAN/control"

mkdir -p "$out"
# --root-owner-group: every file root:root, whoever builds.
dpkg-deb --root-owner-group -Zxz "-z$xz_level" --build "$root" "$out/$deb_name" >/dev/null
deb_bytes="$(stat -c %s "$out/$deb_name")"
log "$deb_name: $deb_bytes bytes ($(( (deb_bytes + 524288) / 1048576 )) MiB), installed $installed_kib KiB ($(( (installed_kib + 512) / 1024 )) MiB), Depends: $depends"
echo "$out/$deb_name"
